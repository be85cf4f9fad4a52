#!/usr/bin/env bash
# A pull worker in plain shell: long-poll a claim, "run" the task, complete it (or fail it).
# Usage: TASKGATE_URL=http://127.0.0.1:8000 QUEUE=emails ./worker.sh [--once]
# Needs curl and python3 (only to read JSON fields).
set -euo pipefail
url="${TASKGATE_URL:-http://127.0.0.1:8000}"
queue="${QUEUE:-emails}"
worker="${WORKER_ID:-shell-$(hostname)-$$}"
once="${1:-}"

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

while true; do
  claim=$(curl -sf -X POST "$url/v1/queues/$queue/claim" \
    -H 'Content-Type: application/json' \
    -d "{\"worker_id\": \"$worker\", \"wait_seconds\": 20}")
  if [ "$(field 'len(d["tasks"])' <<<"$claim")" = "0" ]; then
    [ "$once" = "--once" ] && exit 0
    continue
  fi
  id=$(field 'd["tasks"][0]["id"]' <<<"$claim")
  token=$(field 'd["tasks"][0]["lease"]["token"]' <<<"$claim")
  payload=$(field 'json.dumps(d["tasks"][0]["payload"])' <<<"$claim")
  echo "running $id with payload $payload" >&2
  if result=$(printf '{"echo": %s}' "$payload"); then
    curl -sf -X POST "$url/v1/tasks/$id/complete" -H 'Content-Type: application/json' \
      -d "{\"lease_token\": \"$token\", \"result\": $result}" >/dev/null
  else
    curl -sf -X POST "$url/v1/tasks/$id/fail" -H 'Content-Type: application/json' \
      -d "{\"lease_token\": \"$token\", \"error\": {\"type\": \"ShellError\", \"message\": \"failed\"}}" >/dev/null
  fi
  [ "$once" = "--once" ] && exit 0
done
