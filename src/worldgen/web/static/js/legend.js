// legend.js — reading the map: the world's legend (GET /api/worlds/{id}/legend: its tile
// families or sample colours, with pictures) drawn in the side panel, and the name of the cell
// under the cursor, read from a 1x1 region (GET /api/worlds/{id}/region) and named by the legend.

import { getJSON, paths } from "./api.js";
import { el } from "./dom.js";

const NAMES_KEPT = 2000; // cells whose names are remembered (a region request each, once)

// The legend key of a region label: the tile name of "<tile> <k>", or the "#rrggbb" colour.
const keyOf = (label) => (label.startsWith("#") ? label : label.replace(/ \d+$/, ""));

// Draw the legend into `list` (an <ul>): entries grouped under their class when the model has
// several classes. Returns a function that marks the entry of a key as current (or none).
export function renderLegend(list, legend) {
  const items = new Map(); // member key -> its <li>
  const groups = new Map(); // class -> <ul>
  list.replaceChildren();
  for (const entry of legend.entries) {
    const share = Math.round(entry.share * 100);
    const li = el(
      "li",
      { class: "legend-entry" },
      el("img", { src: entry.picture, alt: "", width: 24, height: 24, class: "legend-picture" }),
      el("span", { class: "legend-label", text: entry.label }),
      el("span", { class: "legend-share hint", text: share >= 1 ? `${share}%` : "<1%" }),
    );
    let target = list;
    if (entry.class) {
      if (!groups.has(entry.class)) {
        const inner = el("ul", { class: "legend-group-list" });
        list.append(el("li", { class: "legend-group" }, el("h3", { text: entry.class }), inner));
        groups.set(entry.class, inner);
      }
      target = groups.get(entry.class);
    }
    target.append(li);
    for (const key of entry.members) items.set(key, li);
  }
  let current = null;
  return (key) => {
    const li = key ? items.get(key) : null;
    if (li === current) return;
    current?.classList.remove("legend-current");
    li?.classList.add("legend-current");
    current = li ?? null;
  };
}

// A function cell -> Promise<{key, name}|null>: what the world holds at a cell and its name
// (the legend's, else the raw label). Remembers answers; asks the server at most once a cell.
export function cellNamer(worldId, legend) {
  const known = new Map();
  const base = `${paths.world(worldId)}/region`;
  return async ({ x, y }) => {
    const id = `${x},${y}`;
    if (!known.has(id)) {
      const answer = getJSON(`${base}?${new URLSearchParams({ x, y, w: 1, h: 1 })}`).then(
        (region) => {
          const label = (region.tiles ?? region.colors)[region.cells[0]];
          const key = keyOf(label);
          return { key, name: legend?.names[key] ?? key };
        },
        () => null,
      );
      known.set(id, answer);
      if (known.size > NAMES_KEPT) known.delete(known.keys().next().value);
    }
    const found = await known.get(id);
    if (found === null) known.delete(id); // not remembered: a later hover asks again
    return found;
  };
}

export function loadLegend(worldId) {
  return getJSON(`${paths.world(worldId)}/legend`);
}

// The class a legend key belongs to ("" when the model has one class).
export function classOf(legend, key) {
  const entry = legend?.entries.find((e) => e.members.includes(key));
  return entry?.class ?? "";
}
