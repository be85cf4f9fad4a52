#!/usr/bin/env bash
# A pull worker in plain shell with curl and jq: long-poll a claim, "run" the task,
# complete it (or fail it). Usage:
#   TASKGATE_URL=http://127.0.0.1:8000 TASKGATE_TOKEN=$(taskgate token create --scope tasks:work) \
#   QUEUE=emails ./worker.sh [--once]
set -euo pipefail
url="${TASKGATE_URL:-http://127.0.0.1:8000}"
auth="Authorization: Bearer ${TASKGATE_TOKEN:?set TASKGATE_TOKEN to a token with the tasks:work scope}"
queue="${QUEUE:-emails}"
worker="${WORKER_ID:-shell-$(hostname)-$$}"
once="${1:-}"

while true; do
  claim=$(curl -sf -X POST "$url/v1/queues/$queue/claim" -H "$auth" \
    -H 'Content-Type: application/json' \
    -d "$(jq -nc --arg w "$worker" '{worker_id: $w, wait_seconds: 20}')")
  if [ "$(jq '.tasks | length' <<<"$claim")" = "0" ]; then
    [ "$once" = "--once" ] && exit 0
    continue
  fi
  id=$(jq -r '.tasks[0].id' <<<"$claim")
  token=$(jq -r '.tasks[0].lease.token' <<<"$claim")
  echo "running $id" >&2
  if result=$(jq -c '{echo: .tasks[0].payload}' <<<"$claim"); then
    curl -sf -X POST "$url/v1/tasks/$id/complete" -H "$auth" -H 'Content-Type: application/json' \
      -d "$(jq -nc --arg t "$token" --argjson r "$result" '{lease_token: $t, result: $r}')" >/dev/null
  else
    curl -sf -X POST "$url/v1/tasks/$id/fail" -H "$auth" -H 'Content-Type: application/json' \
      -d "$(jq -nc --arg t "$token" '{lease_token: $t, error: {type: "ShellError", message: "failed"}}')" >/dev/null
  fi
  [ "$once" = "--once" ] && exit 0
done
