// preparing.js — the world page of a world whose uploaded model is still being prepared (its
// patch library is built by a job): the job's progress, polled about once a second, then the
// page reloads with the map. A failed build shows its reason and a "Try again" button.

import { models } from "./api.js";
import { byId as $, pageData } from "./dom.js";

const world = pageData("world-data");
const POLL_MS = 1000;
const bar = $("preparing-progress");
const status = $("preparing-status");
const retry = $("preparing-retry");

function show(prep) {
  bar.value = prep.percent;
  if (prep.state === "failed") {
    status.textContent = `The build failed: ${prep.message || "unknown reason"}`;
    retry.hidden = false;
  } else {
    const waiting = !prep.stage || prep.stage === "queued";
    status.textContent = waiting ? "Waiting for a worker…" : `${prep.percent}% (${prep.stage})`;
    retry.hidden = true;
  }
}

async function poll() {
  try {
    const prep = await models.preparation(world.id);
    if (prep.state === "ready") {
      window.location.reload();
      return;
    }
    show(prep);
    if (prep.state === "failed") return;
  } catch (err) {
    status.textContent = `Could not read the progress (${err.message}); retrying…`;
  }
  setTimeout(poll, POLL_MS);
}

retry.addEventListener("click", async () => {
  retry.hidden = true;
  try {
    show(await models.retry(world.id));
  } catch (err) {
    status.textContent = err.status === 401 ? "Sign in to start the build again." : err.message;
    retry.hidden = false;
    return;
  }
  setTimeout(poll, POLL_MS);
});

poll();
