// A queue's dead letters: list them, redrive one or all, purge all (after a confirm).
// Each action is an API call with the user's token; queues:admin is checked there.

import { api, refusalMessage } from "./session.js";
import { $, announce, el, replaceRows, taskLink, throttled, when } from "./ui.js";

const PAGE_SIZE = 50;

export function createDeadPage(data, context) {
  const name = data.queue;
  const path = `/v1/queues/${encodeURIComponent(name)}/dead`;
  let cursor = null;

  async function act(what, call, done) {
    try {
      const answer = await call();
      announce(done(answer), "ok");
    } catch (error) {
      context.fail(error, refusalMessage(error, what));
    }
    await load();
  }

  function redriveOne(id) {
    return act(
      `redrive task ${id}`,
      () => api(`${path}/redrive`, { method: "POST", body: { task_ids: [id] } }),
      (answer) => `Redrove ${answer.redriven} task: ${id} is queued again.`,
    );
  }

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api(`${path}?${query}`);
    } catch (error) {
      context.fail(error, refusalMessage(error, `list the dead letters of ${name}`));
      return;
    }
    replaceRows(
      $("#dead tbody"),
      page.tasks.map((task) =>
        el(
          "tr",
          { "data-task": task.id },
          el("th", { scope: "row" }, taskLink(task.id)),
          el("td", {}, task.type),
          el("td", { class: "num" }, task.attempts),
          el("td", {}, task.last_error ? task.last_error.message : "—"),
          el("td", {}, when(task.finished_at)),
          el(
            "td",
            {},
            el(
              "button",
              { type: "button", "aria-label": `Redrive task ${task.id}`, onclick: () => redriveOne(task.id) },
              "Redrive",
            ),
          ),
        ),
      ),
    );
    $("#empty").hidden = page.tasks.length > 0;
    $("#summary").textContent = page.tasks.length
      ? `${page.tasks.length}${page.next_cursor ? "+" : ""} dead tasks on this page.`
      : "";
    const next = $("#next-page");
    next.hidden = !page.next_cursor;
    next.onclick = () => {
      cursor = page.next_cursor;
      load();
    };
  }

  $("#redrive-all").addEventListener("click", () =>
    act(
      `redrive the dead letters of ${name}`,
      () => api(`${path}/redrive`, { method: "POST" }),
      (answer) => `Redrove ${answer.redriven} tasks: they are queued again.`,
    ),
  );
  $("#purge").addEventListener("click", () => {
    if (!window.confirm(`Delete every dead task of ${name}? This cannot be undone.`)) return;
    act(
      `purge the dead letters of ${name}`,
      () => api(path, { method: "DELETE" }),
      (answer) => `Purged ${answer.purged} dead tasks.`,
    );
  });

  const refresh = throttled(load);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => e.queue === name)) refresh();
    },
  };
}
