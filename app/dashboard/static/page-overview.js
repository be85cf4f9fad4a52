// The overview: every queue's tasks by state, oldest due age, pause flag, and the
// completions per minute of the last hour as seen by this tab.

import { pauseButton } from "./queue-actions.js";
import { api, refusalMessage } from "./session.js";
import { sparkline } from "./throughput.js";
import { $, duration, el, queueLink, replaceRows, throttled } from "./ui.js";

const POLL_MS = 10_000;

export function createOverviewPage(_data, context) {
  let queues = [];

  function drawThroughput() {
    const total = context.throughput.series();
    const box = $("#throughput");
    const sum = total.reduce((a, b) => a + b, 0);
    const since = context.throughput.since.toLocaleTimeString();
    box.replaceChildren(
      sparkline(total, { width: 480, height: 60, label: "All queues" }),
      el("p", { class: "axis", "aria-hidden": "true" }, el("span", {}, "60 min ago"), el("span", {}, "now")),
      el("p", { class: "summary" }, `${sum} completed since ${since} (this tab, last hour at most)`),
    );
  }

  function row(queue) {
    const c = queue.counts;
    const state = queue.paused
      ? el("span", { class: "badge paused", title: queue.pause_reason || "" }, "paused")
      : el("span", { class: "badge alive" }, "active");
    const spark = sparkline(context.throughput.series(queue.name), {
      label: `Completions of ${queue.name}`,
    });
    return el(
      "tr",
      { "data-queue": queue.name },
      el("th", { scope: "row" }, queueLink(queue.name)),
      el("td", {}, state),
      el("td", { class: "num", "data-count": "due" }, c.due),
      el("td", { class: "num", "data-count": "scheduled" }, c.scheduled),
      el("td", { class: "num", "data-count": "running" }, c.running),
      el("td", { class: "num", "data-count": "succeeded" }, c.succeeded),
      el(
        "td",
        { class: "num", "data-count": "dead" },
        c.dead > 0
          ? el("a", { href: `/dashboard/queues/${encodeURIComponent(queue.name)}/dead` }, c.dead)
          : c.dead,
      ),
      el("td", { class: "num", "data-count": "cancelled" }, c.cancelled),
      el("td", {}, duration(queue.oldest_due_age_seconds)),
      el("td", {}, spark),
      el("td", {}, pauseButton(queue, load, context)),
    );
  }

  async function load() {
    try {
      queues = (await api("/v1/queues")).queues;
    } catch (error) {
      context.fail(error, refusalMessage(error, "list the queues"));
      return;
    }
    replaceRows($("#queues tbody"), queues.map(row));
    $("#empty").hidden = queues.length > 0;
    const queued = queues.reduce((sum, q) => sum + q.counts.queued, 0);
    const running = queues.reduce((sum, q) => sum + q.counts.running, 0);
    const dead = queues.reduce((sum, q) => sum + q.counts.dead, 0);
    const noun = queues.length === 1 ? "queue" : "queues";
    $("#summary").textContent =
      `${queues.length} ${noun}: ${queued} queued, ${running} running, ${dead} dead.`;
    drawThroughput();
  }

  const refresh = throttled(load);
  setInterval(refresh, POLL_MS);
  return {
    load,
    onEvents() {
      refresh();
    },
  };
}
