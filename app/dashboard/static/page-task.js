// One task: its facts, payload, result, attempts with their errors and timing, a
// timeline built from the task's own timestamps (the API keeps no per-task history
// beyond them and the errors; the event stream only retains an hour), and cancel.

import { ApiError, api, refusalMessage } from "./session.js";
import {
  $,
  announce,
  between,
  clearNotice,
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

// What the cancel button offers: a queued task is cancelled at once, a running one is
// asked to stop (its worker sees the request in its next heartbeat).
function cancelOffer(task) {
  if (task.state === "queued") return { label: "Cancel task", question: "Cancel this task?" };
  if (task.state === "running" && !task.cancel_requested) {
    return {
      label: "Request cancel",
      question: "Ask the worker running this task to stop? It sees the request at its next heartbeat.",
    };
  }
  return null;
}

export function createTaskPage(data, context) {
  const id = data.task;
  let offer = null;

  async function cancel() {
    if (!offer || !window.confirm(offer.question)) return;
    const button = $("#cancel");
    button.disabled = true;
    try {
      const task = await api(`/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      clearNotice();
      announce(
        task.state === "cancelled"
          ? `Task ${id} is cancelled.`
          : `Cancel requested: the worker of task ${id} is asked to stop.`,
        "ok",
      );
    } catch (error) {
      context.fail(error, refusalMessage(error, `cancel task ${id}`));
    } finally {
      button.disabled = false;
    }
    await load();
  }

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
      ...(task.cancel_requested && task.state === "running" ? fact("Cancel", "requested") : []),
    );
    offer = cancelOffer(task);
    $("#cancel").hidden = offer === null;
    if (offer) $("#cancel").textContent = offer.label;
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

  $("#cancel").addEventListener("click", cancel);
  const refresh = throttled(load);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => e.task_id === id)) refresh();
    },
  };
}
