// edit-markers.js — the markers of the Edit section (issue 14): the list (everyone sees it and
// the map's labels) and, for editors, the form that places a marker at a cell chosen on the map
// or saves one being edited (renamed, its note changed, or moved to another cell chosen on the
// map: PATCH /markers/{id}), and a delete button per marker. Labels and notes are other
// people's text: they reach the page as text only (dom.js).

import { edits as api } from "./api.js";
import { el } from "./dom.js";

// world: {id}; map: the map adapter; run(label, call): edit-tools.js's request runner;
// say(text): the Edit section's status line; useMarkerTool(): chooses the Marker tool.
export function createMarkers({ world, map, run, say, useMarkerTool }) {
  const label = el("input", { type: "text", maxLength: 60, placeholder: "Label", id: "marker-label" });
  const note = el("textarea", { maxLength: 500, rows: 2, placeholder: "Note (optional)" });
  const place = el("button", { type: "submit", text: "Place marker" });
  const cancel = el("button", { type: "button", class: "secondary", text: "Cancel", hidden: true });
  const form = el("form", { class: "edit-marker-form", hidden: true }, label, note, place, cancel);
  const list = el("ul", { class: "edit-markers" });
  const markers = new Map();
  let canEdit = false;
  let cell = null; // where the marker goes
  let editing = null; // the id of the marker being edited; null: a new marker

  function showForm() {
    const at = cell ? ` at ${cell.x}, ${cell.y}` : "";
    place.textContent = editing === null ? `Place marker${at}` : `Save marker${at}`;
    cancel.hidden = editing === null;
  }

  function endEdit() {
    editing = null;
    label.value = note.value = "";
    showForm();
  }

  function edit(m) {
    useMarkerTool();
    editing = m.id;
    cell = { x: m.x, y: m.y };
    label.value = m.label;
    note.value = m.text;
    form.hidden = false;
    showForm();
    say("Change the label or note, or click a cell to move the marker.");
    label.focus();
  }

  cancel.addEventListener("click", () => {
    endEdit();
    say("");
  });

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!cell || !label.value.trim()) {
      say("A marker needs a label.");
      return;
    }
    const body = { x: cell.x, y: cell.y, label: label.value, text: note.value };
    const id = editing;
    run(id === null ? "Marker" : "Save marker", async () => {
      put(await (id === null ? api.addMarker(world.id, body) : api.updateMarker(world.id, id, body)));
      endEdit();
      return null;
    });
  });

  function render() {
    const shown = [...markers.values()].sort((a, b) => a.id - b.id);
    map.setMarkers(shown);
    list.replaceChildren(
      ...shown.map((m) => {
        const item = el("li", { class: "edit-marker", data: { marker: String(m.id) } },
          el("strong", { text: m.label }),
          el("span", { class: "hint", text: ` (${m.x}, ${m.y}) ${m.text}` }));
        if (canEdit) {
          const change = el("button", { type: "button", class: "link", text: "edit" });
          change.addEventListener("click", () => edit(m));
          const remove = el("button", { type: "button", class: "link", text: "delete" });
          remove.addEventListener("click", () =>
            run("Delete marker", async () => {
              await api.deleteMarker(world.id, m.id);
              forget(m.id);
              return null;
            }),
          );
          item.append(" ", change, " ", remove);
        }
        return item;
      }),
    );
  }

  function put(marker) {
    markers.set(marker.id, marker);
    render();
  }

  function forget(id) {
    markers.delete(id);
    if (editing === id) endEdit();
    render();
  }

  return {
    form,
    list,
    put,
    forget,
    // Every marker of the world (after a (re)load).
    replace(all) {
      markers.clear();
      for (const m of all) markers.set(m.id, m);
      render();
    },
    setCanEdit(on) {
      canEdit = on;
      render();
    },
    // The Marker tool is chosen (or not): the form shows once a cell is picked.
    showFor(chosen) {
      form.hidden = !chosen || !cell;
    },
    // A cell clicked with the Marker tool: the new marker's place, or the edited one's.
    pick(at) {
      cell = at;
      form.hidden = false;
      showForm();
      label.focus();
    },
  };
}
