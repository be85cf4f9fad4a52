// Completions per minute, counted from the `succeeded` events this tab has seen (kept in
// its session for up to an hour), and drawn as a small SVG sparkline. The server keeps
// no throughput history, so this starts empty at sign-in and says so.

const KEY = "taskgate.throughput";
const MINUTES = 60;
const SVG_NS = "http://www.w3.org/2000/svg";

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null") || { since: null, perQueue: {} };
  } catch {
    return { since: null, perQueue: {} };
  }
}

function minuteOf(ms) {
  return Math.floor(ms / 60_000);
}

export class Throughput {
  constructor() {
    this.state = load();
    if (this.state.since === null) this.state.since = Date.now();
  }

  // Counts the succeeded events of a batch and drops minutes older than an hour.
  record(events) {
    const oldest = minuteOf(Date.now()) - MINUTES + 1;
    for (const event of events) {
      if (event.state !== "succeeded") continue;
      const minute = minuteOf(Date.parse(event.at));
      if (minute < oldest) continue;
      const counts = (this.state.perQueue[event.queue] ??= {});
      counts[minute] = (counts[minute] || 0) + 1;
    }
    for (const counts of Object.values(this.state.perQueue)) {
      for (const minute of Object.keys(counts)) if (Number(minute) < oldest) delete counts[minute];
    }
    sessionStorage.setItem(KEY, JSON.stringify(this.state));
  }

  // The last hour, oldest minute first: one queue's counts, or every queue's together.
  series(queue = null) {
    const now = minuteOf(Date.now());
    const sources = queue ? [this.state.perQueue[queue] || {}] : Object.values(this.state.perQueue);
    const values = [];
    for (let minute = now - MINUTES + 1; minute <= now; minute += 1) {
      values.push(sources.reduce((sum, counts) => sum + (counts[minute] || 0), 0));
    }
    return values;
  }

  get since() {
    return new Date(this.state.since);
  }
}

// A sparkline of `values` with a text alternative; width and height in CSS pixels.
export function sparkline(values, { width = 120, height = 24, label }) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "spark");
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = `${label}: ${total} in the last hour, at most ${peak} a minute`;
  svg.append(title);
  const step = width / Math.max(1, values.length - 1);
  const scale = peak > 0 ? (height - 2) / peak : 0;
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - v * scale).toFixed(1)}`)
    .join(" ");
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}
