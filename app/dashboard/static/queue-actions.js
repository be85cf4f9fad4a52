// Pause and resume, shared by the overview and the queue page. The API checks the
// token's scope (queues:admin); a refusal is shown, never hidden.

import { api, refusalMessage } from "./session.js";
import { announce, clearNotice } from "./ui.js";

export function pauseButton(queue, onDone, context) {
  const action = queue.paused ? "resume" : "pause";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = queue.paused ? "Resume" : "Pause";
  button.setAttribute("aria-label", `${button.textContent} queue ${queue.name}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api(`/v1/queues/${encodeURIComponent(queue.name)}/${action}`, { method: "POST" });
      clearNotice();
      announce(`Queue ${queue.name} ${action === "pause" ? "paused" : "resumed"}.`, "ok");
      await onDone();
    } catch (error) {
      context.fail(error, refusalMessage(error, `${action} queue ${queue.name}`));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
