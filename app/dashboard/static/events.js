// GET /v1/events read with fetch(): EventSource cannot send the bearer token. Parses
// text/event-stream, reconnects with Last-Event-ID, and keeps the last id in this tab's
// session so that moving between pages resumes the stream instead of skipping changes.

import { ApiError, authHeaders } from "./session.js";

const CURSOR_KEY = "taskgate.events.cursor";
// Past this, replaying what was missed costs more than re-reading the page's data.
const RESUME_WITHIN_MS = 60_000;
const MAX_BACKOFF_MS = 15_000;

// Feeds chunks of text in; calls onFrame({event, data, id}) per dispatched event and
// onRetry(ms) for a `retry:` field, as the HTML standard's parsing rules say.
export class EventStreamParser {
  constructor(onFrame, onRetry) {
    this.onFrame = onFrame;
    this.onRetry = onRetry;
    this.pending = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(text) {
    let input = this.pending + text;
    // A trailing "\r" may be the first half of "\r\n": hold it until the next chunk.
    const held = input.endsWith("\r") ? "\r" : "";
    if (held) input = input.slice(0, -1);
    const lines = input.split(/\r\n|\r|\n/);
    this.pending = lines.pop() + held;
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length > 0) {
        this.onFrame({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id" && !value.includes("\0")) this.id = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }
}

function savedCursor() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CURSOR_KEY) || "null");
    return saved && Date.now() - saved.savedAt < RESUME_WITHIN_MS ? saved.id : null;
  } catch {
    return null;
  }
}

function saveCursor(id) {
  sessionStorage.setItem(CURSOR_KEY, JSON.stringify({ id, savedAt: Date.now() }));
}

// Follows the task events until stop(). Callbacks: onEvents(list of task events),
// onReset() (changes were missed: re-read everything), onState("live" | "reconnecting"
// | "refused", error).
export class TaskEvents {
  constructor({ queue = null, onEvents, onReset, onState }) {
    this.queue = queue;
    this.onEvents = onEvents;
    this.onReset = onReset;
    this.onState = onState;
    this.retryMs = 1000;
    this.lastId = savedCursor();
    this.controller = new AbortController();
    this.stopped = false;
  }

  stop() {
    this.stopped = true;
    this.controller.abort();
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.readOnce();
        failures = 0;
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          this.onState("refused", error);
          return;
        }
        failures += 1;
        this.onState("reconnecting", error);
      }
      const wait = failures ? Math.min(this.retryMs * 2 ** failures, MAX_BACKOFF_MS) : this.retryMs;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async readOnce() {
    const headers = { ...authHeaders(), Accept: "text/event-stream" };
    if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
    const query = this.queue ? `?queue=${encodeURIComponent(this.queue)}` : "";
    const response = await fetch(`/v1/events${query}`, {
      headers,
      cache: "no-store",
      signal: this.controller.signal,
    });
    if (!response.ok) {
      let problem = {};
      try {
        problem = await response.json();
      } catch {
        // The status is enough.
      }
      throw new ApiError(response.status, problem.title, problem.detail);
    }
    this.onState("live");
    let batch = [];
    const parser = new EventStreamParser(
      (frame) => {
        if (frame.event === "reset") this.onReset();
        else if (frame.event === "task") batch.push(JSON.parse(frame.data));
        if (frame.id !== null) this.lastId = frame.id;
      },
      (ms) => {
        this.retryMs = ms;
      },
    );
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(value);
      if (batch.length > 0) {
        // The cursor is saved with the events handed on, so a new page neither repeats
        // nor skips them.
        const events = batch;
        batch = [];
        this.onEvents(events);
        saveCursor(this.lastId);
      }
    }
  }
}
