// preparing.js — the world page of a world whose uploaded model is still being prepared (its
// patch library is built by a job): the job's progress, then the page reloads with the map. A
// failed build shows its reason and a "Try again" button.
//
// A signed-in viewer opens the world's socket (chat-socket.js): the library job's `job` frames
// reach the user who started the build (frames go to a job's owner only), so their page follows
// it live and reads the preparation only every SAFETY_POLL_MS; anyone else (and everyone while
// no socket is connected) reads it about once a second.

import { currentUser } from "./account.js";
import { models } from "./api.js";
import { jobsLive, openChatSocket, watchJobs } from "./chat-socket.js";
import { byId as $, pageData } from "./dom.js";

const world = pageData("world-data");
const POLL_MS = 1000;
const SAFETY_POLL_MS = 10_000;
const bar = $("preparing-progress");
const status = $("preparing-status");
const retry = $("preparing-retry");
let heard = false; // a frame of this world's library job came: this user's socket carries them
let timer = null;

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

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(poll, heard && jobsLive() ? SAFETY_POLL_MS : POLL_MS);
}

async function poll() {
  clearTimeout(timer);
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
  schedule();
}

function onJob(frame) {
  if (frame.type === "resync") {
    poll(); // frames sent while no socket was connected are lost
    return;
  }
  if (frame.world_id !== world.id || frame.kind !== "library") return;
  heard = true;
  if (frame.state === "done" || frame.state === "failed") {
    // the preparation says what it means: ready (the page reloads), or failed with the reason
    // (a job that lost the race to build the same library fails too, while the winner runs)
    poll();
  } else {
    show(frame);
    schedule();
  }
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
  schedule();
});

currentUser().then((user) => {
  if (user === null) return; // a guest owns no job: polling it is
  watchJobs(onJob);
  openChatSocket(world.id, {});
});

poll();
