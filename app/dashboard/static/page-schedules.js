// Cron schedules: list them with their next and last fire times, pause or resume,
// delete (after a confirm) and create one. Every action is an API call with the user's
// token; queues:admin (on the schedule's queue) is checked there.

import { api, refusalMessage } from "./session.js";
import { $, announce, clearNotice, el, queueLink, replaceRows, taskLink, throttled, when } from "./ui.js";

const POLL_MS = 10_000;
const PAGE_SIZE = 50;
const MISSED = { skip: "skip", run_once: "run once", run_all: "run all" };

export function createSchedulesPage(_data, context) {
  let cursor = null;
  let shownQueues = new Set();

  function schedulePath(id) {
    return `/v1/schedules/${encodeURIComponent(id)}`;
  }

  async function act(what, call, done) {
    try {
      await call();
      clearNotice();
      announce(done, "ok");
    } catch (error) {
      context.fail(error, refusalMessage(error, what));
    }
    await load();
  }

  function pauseToggle(schedule) {
    const verb = schedule.paused ? "Resume" : "Pause";
    return el(
      "button",
      {
        type: "button",
        "aria-label": `${verb} schedule ${schedule.id}`,
        onclick: () =>
          act(
            `${verb.toLowerCase()} schedule ${schedule.id}`,
            () => api(schedulePath(schedule.id), { method: "PATCH", body: { paused: !schedule.paused } }),
            `Schedule ${schedule.id} ${schedule.paused ? "resumed" : "paused"}.`,
          ),
      },
      verb,
    );
  }

  function deleteButton(schedule) {
    return el(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `Delete schedule ${schedule.id}`,
        onclick: () => {
          const question = `Delete schedule ${schedule.id}? Tasks it already submitted stay.`;
          if (!window.confirm(question)) return;
          act(
            `delete schedule ${schedule.id}`,
            () => api(schedulePath(schedule.id), { method: "DELETE" }),
            `Schedule ${schedule.id} deleted.`,
          );
        },
      },
      "Delete",
    );
  }

  function row(schedule) {
    return el(
      "tr",
      { "data-schedule": schedule.id },
      el("th", { scope: "row", class: "mono" }, schedule.id),
      el("td", {}, el("code", {}, schedule.cron), ` (${schedule.timezone})`),
      el("td", {}, queueLink(schedule.queue)),
      el("td", {}, schedule.task.type),
      el("td", {}, MISSED[schedule.missed] || schedule.missed),
      el(
        "td",
        { "data-next": "" },
        schedule.paused ? el("span", { class: "badge paused" }, "paused") : when(schedule.next_run_at),
      ),
      el(
        "td",
        {},
        schedule.last_run_at ? when(schedule.last_run_at) : "never",
        schedule.last_task_id ? [el("br"), taskLink(schedule.last_task_id)] : null,
      ),
      el("td", { class: "row-actions" }, pauseToggle(schedule), " ", deleteButton(schedule)),
    );
  }

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await api(`/v1/schedules?${query}`);
    } catch (error) {
      context.fail(error, refusalMessage(error, "list the schedules"));
      return;
    }
    shownQueues = new Set(page.schedules.map((s) => s.queue));
    replaceRows($("#schedules tbody"), page.schedules.map(row));
    $("#empty").hidden = page.schedules.length > 0;
    const paused = page.schedules.filter((s) => s.paused).length;
    $("#summary").textContent = page.schedules.length
      ? `${page.schedules.length}${page.next_cursor ? "+" : ""} schedules, ${paused} paused.`
      : "";
    const next = $("#next-page");
    next.hidden = !page.next_cursor;
    next.onclick = () => {
      cursor = page.next_cursor;
      load();
    };
    $("#first-page").hidden = cursor === null;
  }

  async function create(event) {
    event.preventDefault();
    const form = event.target;
    const fields = Object.fromEntries(new FormData(form));
    let payload;
    try {
      payload = JSON.parse(fields.payload || "null");
    } catch (error) {
      announce(`The payload is not JSON: ${error.message}.`);
      $("#new-payload").focus();
      return;
    }
    const body = {
      id: fields.id.trim(),
      cron: fields.cron.trim(),
      timezone: fields.timezone.trim(),
      queue: fields.queue.trim(),
      missed: fields.missed,
      task: { type: fields.type.trim(), payload },
    };
    try {
      const created = await api("/v1/schedules", { method: "POST", body });
      clearNotice();
      announce(`Schedule ${created.id} created: it first fires ${created.next_run_at}.`, "ok");
      form.reset();
    } catch (error) {
      context.fail(error, refusalMessage(error, `create schedule ${body.id}`));
      return;
    }
    cursor = null;
    await load();
  }

  $("#create-form").addEventListener("submit", create);
  $("#first-page").addEventListener("click", () => {
    cursor = null;
    load();
  });

  // A schedule's fire shows as a new task on its queue; the next run times move with the
  // clock alone, so this page also polls.
  const refresh = throttled(load);
  setInterval(refresh, POLL_MS);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => shownQueues.has(e.queue))) refresh();
    },
  };
}
