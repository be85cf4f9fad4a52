// One task: its facts, payload, result, attempts with their errors and timing, and a
// timeline built from the task's own timestamps (the API keeps no per-task history
// beyond them and the errors; the event stream only retains an hour).

import { ApiError, api, refusalMessage } from "./session.js";
import {
  $,
  between,
  duration,
  el,
  prettyJson,
  queueLink,
  replaceRows,
  stateBadge,
  throttled,
  when,
} from "./ui.js";

function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}

// The moments the task record proves, oldest first.
function timeline(task) {
  const moments = [{ at: task.created_at, text: "created (queued)" }];
  if (task.run_at !== task.created_at) moments.push({ at: task.run_at, text: "due" });
  for (const error of task.errors) {
    if (error.at) moments.push({ at: error.at, text: `attempt ${error.attempt ?? "?"} failed` });
  }
  if (task.started_at) {
    moments.push({ at: task.started_at, text: `attempt ${task.attempts} started` });
  }
  if (task.finished_at) moments.push({ at: task.finished_at, text: task.state });
  moments.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return moments;
}

export function createTaskPage(data, context) {
  const id = data.task;

  async function load() {
    let task;
    try {
      task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
    } catch (error) {
      const message =
        error instanceof ApiError && error.status === 404
          ? `No task ${id} (or not one your token may see).`
          : refusalMessage(error, `read task ${id}`);
      context.fail(error, message);
      return;
    }
    const link = queueLink(task.queue);
    link.id = "queue-link";
    $("#queue-link").replaceWith(link);
    $("#facts").replaceChildren(
      ...fact("State", stateBadge(task.state)),
      ...fact("Queue", queueLink(task.queue)),
      ...fact("Type", task.type),
      ...fact("Priority", task.priority),
      ...fact("Attempts", `${task.attempts} of ${task.max_attempts}`),
      ...fact("Tags", task.tags.join(", ") || "—"),
      ...fact("Created", when(task.created_at)),
      ...fact("Due", when(task.run_at)),
      ...fact("Worker", task.worker_id || "—"),
      ...fact("Lease expires", when(task.lease_expires_at)),
      ...fact("Ran for", duration(between(task.started_at, task.finished_at))),
      ...fact("Idempotency key", task.idempotency_key || "—"),
    );
    $("#payload").textContent = prettyJson(task.payload);
    $("#result").textContent = prettyJson(task.result);
    replaceRows(
      $("#attempts tbody"),
      task.errors.map((error) =>
        el(
          "tr",
          {},
          el("td", { class: "num" }, error.attempt ?? "?"),
          el("td", {}, when(error.at)),
          el(
            "td",
            {},
            el("strong", {}, error.type ? `${error.type}: ` : ""),
            error.message,
            error.traceback
              ? el("details", {}, el("summary", {}, "traceback"), el("pre", {}, error.traceback))
              : null,
          ),
        ),
      ),
    );
    $("#no-errors").hidden = task.errors.length > 0;
    $("#attempts").hidden = task.errors.length === 0;
    $("#timeline").replaceChildren(
      ...timeline(task).map((moment) =>
        el(
          "li",
          {},
          el("time", { datetime: moment.at }, moment.at),
          ` ${moment.text}`,
          el("span", { class: "hint" }, ` (+${duration(between(task.created_at, moment.at))})`),
        ),
      ),
    );
  }

  const refresh = throttled(load);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => e.task_id === id)) refresh();
    },
  };
}
