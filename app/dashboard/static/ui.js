// Small DOM and formatting helpers. Data from the API is only ever set as text
// (textContent, attributes): task payloads and names are never parsed as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector) {
  return document.querySelector(selector);
}

export function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

export function taskLink(id) {
  return el("a", { href: `/dashboard/tasks/${encodeURIComponent(id)}`, class: "mono" }, id);
}

export function queueLink(name) {
  return el("a", { href: `/dashboard/queues/${encodeURIComponent(name)}` }, name);
}

export function stateBadge(state) {
  return el("span", { class: `badge state-${state}` }, state);
}

// "4.2 s", "3 min", "2 h 5 min": how long, for people.
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function ago(timestamp) {
  if (!timestamp) return "—";
  const seconds = (Date.now() - Date.parse(timestamp)) / 1000;
  return seconds >= 0 ? `${duration(seconds)} ago` : `in ${duration(-seconds)}`;
}

// A time element: relative text, the exact UTC timestamp as its title and datetime.
export function when(timestamp) {
  if (!timestamp) return "—";
  return el("time", { datetime: timestamp, title: timestamp }, ago(timestamp));
}

export function between(start, end) {
  if (!start || !end) return null;
  return (Date.parse(end) - Date.parse(start)) / 1000;
}

export function prettyJson(value) {
  return value === null || value === undefined ? "null" : JSON.stringify(value, null, 2);
}

// Runs `refresh` at most once per `ms`, and once more if asked while it was running.
export function throttled(refresh, ms = 300) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await refresh();
    } finally {
      running = false;
      if (again) {
        again = false;
        timer = setTimeout(run, ms);
      }
    }
  };
  return () => {
    if (timer === null) timer = setTimeout(run, ms);
  };
}

const notice = () => document.getElementById("notice");

// Shows a message in the page's alert region (read out by screen readers).
export function announce(message, kind = "error") {
  const box = notice();
  box.className = `notice ${kind}`;
  box.textContent = message;
  box.hidden = false;
}

export function clearNotice() {
  const box = notice();
  box.hidden = true;
  box.textContent = "";
}
