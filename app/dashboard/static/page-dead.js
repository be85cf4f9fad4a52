// A queue's dead letters: list them, redrive one, the selected ones or all, purge all
// (after a confirm). Each action is an API call with the user's token; queues:admin is
// checked there.

import { api, refusalMessage } from "./session.js";
import { $, announce, el, replaceRows, taskLink, throttled, when } from "./ui.js";

const PAGE_SIZE = 50;

export function createDeadPage(data, context) {
  const name = data.queue;
  const path = `/v1/queues/${encodeURIComponent(name)}/dead`;
  let cursor = null;
  // Ids ticked on the page shown; live reloads keep the ticks of rows still listed.
  let selected = new Set();
  let shownIds = [];

  function showSelection() {
    const button = $("#redrive-selected");
    button.disabled = selected.size === 0;
    button.textContent = selected.size ? `Redrive selected (${selected.size})` : "Redrive selected";
    const all = $("#select-page");
    all.checked = shownIds.length > 0 && selected.size === shownIds.length;
    all.indeterminate = selected.size > 0 && selected.size < shownIds.length;
  }

  function pick(id, on) {
    if (on) selected.add(id);
    else selected.delete(id);
    showSelection();
  }

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
    shownIds = page.tasks.map((task) => task.id);
    selected = new Set(shownIds.filter((id) => selected.has(id)));
    replaceRows(
      $("#dead tbody"),
      page.tasks.map((task) =>
        el(
          "tr",
          { "data-task": task.id },
          el(
            "td",
            { class: "pick" },
            el("input", {
              type: "checkbox",
              "aria-label": `Select task ${task.id}`,
              checked: selected.has(task.id),
              onchange: (event) => pick(task.id, event.target.checked),
            }),
          ),
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
    showSelection();
    $("#empty").hidden = page.tasks.length > 0;
    $("#summary").textContent = page.tasks.length
      ? `${page.tasks.length}${page.next_cursor ? "+" : ""} dead tasks on this page.`
      : "";
    const next = $("#next-page");
    next.hidden = !page.next_cursor;
    next.onclick = () => {
      cursor = page.next_cursor;
      selected = new Set();
      load();
    };
  }

  $("#select-page").addEventListener("change", (event) => {
    selected = event.target.checked ? new Set(shownIds) : new Set();
    for (const box of document.querySelectorAll("#dead tbody .pick input")) box.checked = event.target.checked;
    showSelection();
  });
  $("#redrive-selected").addEventListener("click", () => {
    const ids = [...selected];
    selected = new Set();
    act(
      `redrive ${ids.length} dead tasks of ${name}`,
      () => api(`${path}/redrive`, { method: "POST", body: { task_ids: ids } }),
      (answer) => `Redrove ${answer.redriven} of the ${ids.length} selected tasks: they are queued again.`,
    );
  });

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
