// world-state.js — the world this page shows (from the page data), one object shared by the
// page's modules, and the one place changes to it are applied: ours (the People section's
// PATCH answers) and others' (the chat connection's world events). A change older than what
// the page shows (a lower version) is ignored; listeners hear of every applied change.

import { pageData } from "./dom.js";

export const world = pageData("world-data");
const listeners = [];

// Apply {name?, visibility?, version?} (undefined fields are left alone).
export function updateWorld(change) {
  const stale = change.version != null && world.version != null && change.version < world.version;
  if (stale) return;
  for (const [key, value] of Object.entries(change)) {
    if (value !== undefined) world[key] = value;
  }
  for (const fn of listeners) fn(world);
}

export function onWorldChange(fn) {
  listeners.push(fn);
}
