// home.js — the home page's create form: tileset picker (from GET /api/tilesets, plus your own
// and shared models from GET /api/models), the upload of a model (a sample PNG or a tileset zip:
// its pattern count and a 48x48 preview before any world is made), random seed,
// POST /api/worlds, then navigation to the new world's page. Errors are shown inline.

import { currentUser } from "./account.js";
import { getJSON, models, paths, postJSON } from "./api.js";
import { byId, el } from "./dom.js";

const MAX_SEED = 2 ** 53 - 1;

const form = byId("create-form");
const nameInput = byId("world-name");
const seedInput = byId("world-seed");
const options = byId("tileset-options");
const tilesetStatus = byId("tilesets-status");
const errorBox = byId("create-error");
const submit = byId("create-submit");

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
  const count = tileset.tiles ?? tileset.patterns;
  const unit = tileset.kind === "tiled" ? "tiles" : "patterns";
  const label = el(
    "label",
    { class: "tileset-option", title: tileset.description || undefined },
    el("input", { type: "radio", name: "tileset", value: tileset.name, checked }),
    el("img", { src: tileset.preview, alt: "", width: 64, height: 64 }),
    el("span", { class: "tileset-name", text: tileset.name }),
    el("span", { class: "hint", text: count === undefined ? tileset.kind : `${count} ${unit}` }),
  );
  return label;
}

async function loadTilesets() {
  try {
    const tilesets = await getJSON(paths.tilesets);
    const preferred = tilesets.findIndex((t) => t.name === "terrain");
    tilesets.forEach((t, i) => options.append(tilesetOption(t, i === Math.max(preferred, 0))));
    tilesetStatus.textContent = tilesets.length ? "" : "No tilesets are available.";
    tilesetStatus.hidden = tilesets.length > 0;
  } catch (err) {
    tilesetStatus.textContent = `Could not load the tilesets: ${err.message}`;
  }
}

// --- your own models: one more option per model (value "model:<id>") ---

function modelOption(model, checked) {
  const unit = model.kind === "tileset" ? "tiles" : "patterns";
  return el(
    "label",
    { class: "tileset-option", title: model.mine ? "your model" : "a shared model" },
    el("input", { type: "radio", name: "tileset", value: `model:${model.id}`, checked }),
    el("img", { src: model.preview, alt: "", width: 64, height: 64, class: "model-preview" }),
    el("span", { class: "tileset-name", text: model.name }),
    el("span", { class: "hint", text: `${model.patterns} ${unit}` }),
  );
}

async function loadModels() {
  if (!(await currentUser())) return; // signed out: no models to list (and no 401 to log)
  try {
    const { models: found } = await models.list();
    found.forEach((m) => options.append(modelOption(m, false)));
  } catch {
    // Unavailable: the bundled tilesets are enough.
  }
}

const modelStatus = byId("model-status");
const modelPreviewBox = byId("model-preview-box");
const modelKind = byId("model-kind");

modelKind.addEventListener("change", () => {
  byId("model-sample-options").hidden = modelKind.value !== "sample";
});

async function onUpload() {
  const file = byId("model-file").files[0];
  if (!file) {
    modelStatus.textContent = "Choose a file first.";
    return;
  }
  const data = new FormData();
  data.append("file", file);
  data.append("kind", modelKind.value);
  data.append("name", (file.name.replace(/\.[^.]*$/, "") || "my model").slice(0, 80));
  if (modelKind.value === "sample") {
    data.append("N", byId("model-n").value);
    data.append("symmetry", byId("model-symmetry").value);
    data.append("periodic", byId("model-periodic").checked ? "true" : "false");
    data.append("ground", byId("model-ground").checked ? "true" : "false");
  }
  const button = byId("model-upload");
  button.disabled = true;
  modelStatus.textContent = "Uploading and reading the patterns…";
  try {
    const model = await models.upload(data);
    const unit = model.kind === "tileset" ? "tiles" : "patterns";
    modelStatus.textContent = `${model.patterns} ${unit} found. Below: a 48×48 solve with it.`;
    modelPreviewBox.replaceChildren(
      el("img", {
        id: "model-preview",
        class: "model-preview",
        src: model.preview,
        alt: "A 48×48 solve with the model",
        width: 192,
        height: 192,
      }),
    );
    const existing = form.querySelector(`input[value="model:${model.id}"]`);
    if (existing) existing.checked = true;
    else options.append(modelOption(model, true));
  } catch (err) {
    modelStatus.textContent =
      err.status === 401 ? "Sign in (top right) to upload a model." : err.message;
  } finally {
    button.disabled = false;
  }
}

byId("model-upload").addEventListener("click", onUpload);

function readForm() {
  const name = nameInput.value.trim();
  if (!name) return { error: "Give the world a name." };
  const chosen = form.querySelector('input[name="tileset"]:checked');
  if (!chosen) return { error: "Pick a tileset." };
  const visibility = form.querySelector('input[name="visibility"]:checked');
  const body = { name, visibility: visibility ? visibility.value : "public" };
  if (chosen.value.startsWith("model:")) body.model = chosen.value.slice("model:".length);
  else body.tileset = chosen.value;
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
    const world = await postJSON(paths.worlds, body);
    window.location.assign(world.page ?? `/worlds/${encodeURIComponent(world.id)}`);
  } catch (err) {
    showError(err.status === 401 ? "Sign in (top right) to create a world." : err.message);
    submit.disabled = false;
    submit.textContent = "Create world";
  }
}

byId("random-seed").addEventListener("click", () => {
  seedInput.value = String(randomSeed());
});
form.addEventListener("submit", onSubmit);
loadTilesets().then(loadModels);
