// home.js — the home page's create form: tileset picker (from GET /api/tilesets), random seed,
// POST /api/worlds, then navigation to the new world's page. Errors are shown inline.

import { getJSON, postJSON } from "./api.js";

const MAX_SEED = 2 ** 53 - 1;

const form = document.getElementById("create-form");
const nameInput = document.getElementById("world-name");
const seedInput = document.getElementById("world-seed");
const options = document.getElementById("tileset-options");
const tilesetStatus = document.getElementById("tilesets-status");
const errorBox = document.getElementById("create-error");
const submit = document.getElementById("create-submit");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

// A uniformly random integer in 0..2**53-1 (two 32-bit draws; 21 + 32 bits).
function randomSeed() {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return (hi & 0x1fffff) * 2 ** 32 + lo;
}

function tilesetOption(tileset, checked) {
  const label = document.createElement("label");
  label.className = "tileset-option";
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "tileset";
  radio.value = tileset.name;
  radio.checked = checked;
  const img = document.createElement("img");
  img.src = tileset.preview;
  img.alt = "";
  img.width = 64;
  img.height = 64;
  const name = document.createElement("span");
  name.className = "tileset-name";
  name.textContent = tileset.name;
  const meta = document.createElement("span");
  meta.className = "hint";
  const count = tileset.tiles ?? tileset.patterns;
  const unit = tileset.kind === "tiled" ? "tiles" : "patterns";
  meta.textContent = count === undefined ? tileset.kind : `${count} ${unit}`;
  label.append(radio, img, name, meta);
  if (tileset.description) label.title = tileset.description;
  return label;
}

async function loadTilesets() {
  try {
    const tilesets = await getJSON("/api/tilesets");
    const preferred = tilesets.findIndex((t) => t.name === "terrain");
    tilesets.forEach((t, i) => options.append(tilesetOption(t, i === Math.max(preferred, 0))));
    tilesetStatus.textContent = tilesets.length ? "" : "No tilesets are available.";
    tilesetStatus.hidden = tilesets.length > 0;
  } catch (err) {
    tilesetStatus.textContent = `Could not load the tilesets: ${err.message}`;
  }
}

function readForm() {
  const name = nameInput.value.trim();
  if (!name) return { error: "Give the world a name." };
  const chosen = form.querySelector('input[name="tileset"]:checked');
  if (!chosen) return { error: "Pick a tileset." };
  const visibility = form.querySelector('input[name="visibility"]:checked');
  const body = { name, tileset: chosen.value, visibility: visibility ? visibility.value : "public" };
  const seedText = seedInput.value.trim();
  if (seedText) {
    const seed = Number(seedText);
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > MAX_SEED) {
      return { error: `The seed must be a whole number from 0 to ${MAX_SEED}.` };
    }
    body.seed = seed;
  }
  return { body };
}

async function onSubmit(event) {
  event.preventDefault();
  const { body, error } = readForm();
  showError(error ?? "");
  if (error) return;
  submit.disabled = true;
  submit.textContent = "Creating…";
  try {
    const world = await postJSON("/api/worlds", body);
    window.location.assign(world.page ?? `/worlds/${encodeURIComponent(world.id)}`);
  } catch (err) {
    showError(err.status === 401 ? "Sign in (top right) to create a world." : err.message);
    submit.disabled = false;
    submit.textContent = "Create world";
  }
}

document.getElementById("random-seed").addEventListener("click", () => {
  seedInput.value = String(randomSeed());
});
form.addEventListener("submit", onSubmit);
loadTilesets();
