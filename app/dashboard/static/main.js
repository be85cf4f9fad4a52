// The dashboard's entry point: the sign-in gate, the session bar, the live event stream,
// and the page controller named by <body data-page>.

import { TaskEvents } from "./events.js";
import { createDeadPage } from "./page-dead.js";
import { createOverviewPage } from "./page-overview.js";
import { createQueuePage } from "./page-queue.js";
import { createSchedulesPage } from "./page-schedules.js";
import { createTaskPage } from "./page-task.js";
import { createWorkersPage } from "./page-workers.js";
import { ApiError, api, currentToken, forgetSession, keepToken, tokenClaims } from "./session.js";
import { Throughput } from "./throughput.js";
import { $, announce, clearNotice } from "./ui.js";

const PAGES = {
  overview: createOverviewPage,
  queue: createQueuePage,
  task: createTaskPage,
  dead: createDeadPage,
  workers: createWorkersPage,
  schedules: createSchedulesPage,
};

// What every page controller gets: where to report, and the shared throughput counts.
const context = {
  throughput: null,
  // A refused or failed call: 401 sends the user back to sign-in, others are shown.
  fail(error, message) {
    if (!currentToken()) return; // already back at sign-in: nothing more to say
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem("taskgate.token");
      showSignIn(message);
      return;
    }
    announce(message);
  },
};

let events = null;
let pageShown = false;

function showSignIn(message = "") {
  if (events) events.stop();
  $("#main").hidden = true;
  $("#session").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message;
  $("#token").focus();
}

async function showApp(token) {
  const claims = tokenClaims(token);
  const scopes = (claims.scope || "").split(" ").filter(Boolean).join(", ") || "no scopes";
  $("#who").textContent = `Signed in as ${claims.sub || "unknown"} (${scopes})`;
  $("#sign-in").hidden = true;
  $("#session").hidden = false;
  $("#main").hidden = false;
  pageShown = true;
  context.throughput = new Throughput();
  const create = PAGES[document.body.dataset.page];
  const page = create(document.body.dataset, context);
  await page.load();
  let liveState = "connecting";
  events = new TaskEvents({
    onEvents(batch) {
      context.throughput.record(batch);
      page.onEvents(batch);
    },
    onReset() {
      page.onEvents([]);
    },
    onState(state, error) {
      // The stream starts at the next change after it opens: re-read once it is open, so
      // a change made between the first read and the stream's start is not missed.
      if (state === "live" && liveState !== "live") page.onEvents([]);
      liveState = state;
      $("#live-state").textContent =
        state === "live" ? "live" : state === "refused" ? "not live" : "reconnecting…";
      if (state === "refused") context.fail(error, `Live updates are off: ${error.message}`);
    },
  });
  events.run();
}

async function signIn(event) {
  event.preventDefault();
  const token = $("#token").value.trim();
  try {
    await api("/v1/queues", { token });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401) {
      const why = error instanceof ApiError ? error.detail || error.title : error.message;
      $("#sign-in-error").textContent = `The API did not accept this token: ${why}`;
      return;
    }
    // 403 and the like: the token is real; the pages will say what it may not see.
  }
  keepToken(token);
  if (pageShown) {
    // Back after an expired token: start clean rather than beside the old page's timers.
    window.location.reload();
    return;
  }
  $("#token").value = "";
  clearNotice();
  await showApp(token);
  $("#main").focus();
}

function signOut() {
  if (events) events.stop();
  forgetSession();
  // A fresh load drops every piece of data the page was showing.
  window.location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  const token = currentToken();
  if (token) showApp(token);
  else showSignIn();
});
