// One queue: its counts, pause/resume, and its tasks by state with filters (state, type,
// tag) and a search box that opens a task by id.

import { pauseButton } from "./queue-actions.js";
import { ApiError, api, refusalMessage } from "./session.js";
import { $, announce, duration, el, replaceRows, stateBadge, taskLink, throttled, when } from "./ui.js";

const POLL_MS = 10_000;
const PAGE_SIZE = 50;
// Task ids are ULIDs: 26 characters of Crockford's base 32.
const TASK_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/i;
const COUNTS = ["due", "scheduled", "running", "succeeded", "dead", "cancelled"];

export function createQueuePage(data, context) {
  const name = data.queue;
  const path = `/v1/queues/${encodeURIComponent(name)}`;
  const filters = new URLSearchParams(window.location.search);
  let cursor = null;

  function showFiltersInForm() {
    $("#state").value = filters.get("state") || "";
    $("#type").value = filters.get("type") || "";
    $("#search").value = filters.get("tag") || "";
  }

  async function loadQueue() {
    let queue;
    try {
      queue = await api(path);
    } catch (error) {
      const message =
        error instanceof ApiError && error.status === 404
          ? `Queue ${name} has no tasks yet (a queue appears with its first task).`
          : refusalMessage(error, `read queue ${name}`);
      context.fail(error, message);
      return;
    }
    $("#counts").replaceChildren(
      ...COUNTS.flatMap((state) => [
        el("dt", {}, state),
        el("dd", { "data-count": state }, queue.counts[state]),
      ]),
      el("dt", {}, "oldest due"),
      el("dd", {}, duration(queue.oldest_due_age_seconds)),
    );
    $("#paused-badge").hidden = !queue.paused;
    $("#pause-reason").hidden = !queue.pause_reason;
    $("#pause-reason").textContent = queue.pause_reason ? `Paused: ${queue.pause_reason}` : "";
    const toggle = pauseButton(queue, loadQueue, context);
    toggle.id = "pause-toggle";
    $("#pause-toggle").replaceWith(toggle);
  }

  async function loadTasks() {
    const query = new URLSearchParams({ queue: name, limit: String(PAGE_SIZE) });
    for (const key of ["state", "type", "tag"]) if (filters.get(key)) query.set(key, filters.get(key));
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api(`/v1/tasks?${query}`);
    } catch (error) {
      context.fail(error, refusalMessage(error, `list the tasks of ${name}`));
      return;
    }
    replaceRows(
      $("#tasks tbody"),
      page.tasks.map((task) =>
        el(
          "tr",
          { "data-task": task.id },
          el("th", { scope: "row" }, taskLink(task.id)),
          el("td", {}, task.type),
          el("td", {}, stateBadge(task.state)),
          el("td", { class: "num" }, `${task.attempts}/${task.max_attempts}`),
          el("td", {}, task.tags.join(", ")),
          el("td", {}, when(task.created_at)),
        ),
      ),
    );
    $("#empty").hidden = page.tasks.length > 0;
    const next = $("#next-page");
    next.hidden = !page.next_cursor;
    next.onclick = () => {
      cursor = page.next_cursor;
      loadTasks();
    };
    $("#first-page").hidden = cursor === null;
  }

  async function search(event) {
    event.preventDefault();
    const text = $("#search").value.trim();
    if (TASK_ID.test(text)) {
      // Crockford's base 32 reads the same in either case; ids are stored upper case.
      const id = text.toUpperCase();
      try {
        await api(`/v1/tasks/${encodeURIComponent(id)}`);
        window.location.assign(`/dashboard/tasks/${encodeURIComponent(id)}`);
      } catch (error) {
        announce(
          error instanceof ApiError && error.status === 404
            ? `No task ${id} (or not one your token may see).`
            : refusalMessage(error, `open task ${id}`),
        );
      }
      return;
    }
    for (const key of ["state", "type", "tag"]) filters.delete(key);
    if ($("#state").value) filters.set("state", $("#state").value);
    if ($("#type").value.trim()) filters.set("type", $("#type").value.trim());
    if (text) filters.set("tag", text);
    const query = filters.toString();
    history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
    cursor = null;
    await loadTasks();
  }

  async function load() {
    showFiltersInForm();
    $("#filters").addEventListener("submit", search);
    $("#first-page").addEventListener("click", () => {
      cursor = null;
      loadTasks();
    });
    await Promise.all([loadQueue(), loadTasks()]);
  }

  // Live: the counts always; the list only on its first page, so that it does not shift
  // under someone reading an older page.
  const refresh = throttled(() => Promise.all([loadQueue(), cursor === null ? loadTasks() : null]));
  setInterval(refresh, POLL_MS);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => e.queue === name)) refresh();
    },
  };
}
