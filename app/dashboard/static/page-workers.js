// Workers with liveness, last contact, in-flight leases and the queues they claim from.
// Liveness changes with time alone, so this page also polls.

import { api, refusalMessage } from "./session.js";
import { $, el, queueLink, replaceRows, taskLink, throttled, when } from "./ui.js";

const POLL_MS = 5_000;

function infoText(info) {
  if (!info) return "—";
  return Object.entries(info)
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}

export function createWorkersPage(_data, context) {
  async function load() {
    let workers;
    try {
      workers = (await api("/v1/workers")).workers;
    } catch (error) {
      context.fail(error, refusalMessage(error, "list the workers"));
      return;
    }
    replaceRows(
      $("#workers tbody"),
      workers.map((worker) =>
        el(
          "tr",
          { "data-worker": worker.id },
          el("th", { scope: "row", class: "mono" }, worker.id),
          el(
            "td",
            {},
            el("span", { class: `badge ${worker.alive ? "alive" : "gone"}` }, worker.alive ? "alive" : "not seen lately"),
          ),
          el("td", {}, when(worker.last_seen_at)),
          el(
            "td",
            { class: "num" },
            worker.in_flight,
            worker.leases.length
              ? el(
                  "details",
                  {},
                  el("summary", {}, "leases"),
                  el("ul", {}, worker.leases.map((lease) => el("li", {}, taskLink(lease.task_id), " until ", when(lease.expires_at)))),
                )
              : null,
          ),
          el("td", {}, worker.queues.flatMap((q, i) => (i ? [", ", queueLink(q)] : [queueLink(q)]))),
          el("td", {}, infoText(worker.info)),
        ),
      ),
    );
    $("#empty").hidden = workers.length > 0;
    const alive = workers.filter((w) => w.alive).length;
    $("#summary").textContent = `${workers.length} workers, ${alive} alive.`;
  }

  const refresh = throttled(load);
  setInterval(refresh, POLL_MS);
  return {
    load,
    onEvents(events) {
      if (events.length === 0 || events.some((e) => e.state === "running")) refresh();
    },
  };
}
