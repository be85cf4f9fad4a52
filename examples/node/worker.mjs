// A taskgate pull worker in Node.js 20 with nothing but fetch: the protocol is plain HTTP.
// Usage: TASKGATE_URL=http://127.0.0.1:8000 TASKGATE_TOKEN=… QUEUE=emails node worker.mjs [--once]
// (a token with the tasks:work scope: `taskgate token create --scope tasks:work`)
import { hostname } from "node:os";

const url = process.env.TASKGATE_URL ?? "http://127.0.0.1:8000";
const token = process.env.TASKGATE_TOKEN;
if (!token) throw new Error("set TASKGATE_TOKEN to a token with the tasks:work scope");
const queue = process.env.QUEUE ?? "emails";
const workerId = process.env.WORKER_ID ?? `node-${hostname()}-${process.pid}`;
const once = process.argv.includes("--once");
let stopping = false;
process.on("SIGTERM", () => { stopping = true; });
process.on("SIGINT", () => { stopping = true; });

async function call(path, body) {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    // Every error is application/problem+json: title, detail, request_id.
    throw new Error(`${response.status} ${answer.title}: ${answer.detail}`);
  }
  return answer;
}

// The work itself: here, a handler per task type.
const handlers = {
  "text.upper": async (payload) => ({ text: String(payload.text).toUpperCase() }),
};

async function runOne(task) {
  const handler = handlers[task.type];
  const lease_token = task.lease.token;
  try {
    if (!handler) throw Object.assign(new Error(`no handler for ${task.type}`), { permanent: true });
    const result = await handler(task.payload);
    await call(`/v1/tasks/${task.id}/complete`, { lease_token, result });
  } catch (error) {
    await call(`/v1/tasks/${task.id}/fail`, {
      lease_token,
      error: { type: error.name ?? "Error", message: String(error.message), traceback: error.stack ?? "" },
      retry: !error.permanent,
    });
  }
}

do {
  const { tasks } = await call(`/v1/queues/${queue}/claim`, {
    worker_id: workerId,
    max_tasks: 10,
    wait_seconds: once ? 5 : 20,
    types: Object.keys(handlers),
  });
  await Promise.all(tasks.map(runOne));
  if (once && tasks.length > 0) break;
} while (!stopping && !once);
