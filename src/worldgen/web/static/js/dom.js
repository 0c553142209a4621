// dom.js — the one helper that builds elements, and small DOM utilities every page shares.
//
// Safety: text goes in through textContent (the `text` prop), never through innerHTML, so user
// data can never become markup. Nothing here parses HTML.

// el("button", {class: "secondary", text: "Go", attrs: {"aria-label": "…"}, type: "button"}, …)
//   class  -> className            text  -> textContent
//   attrs  -> setAttribute each     data  -> dataset entries
//   any other key -> the element's property of that name (type, value, hidden, htmlFor…)
// Children (nodes or strings) are appended in order.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "attrs") for (const [k, v] of Object.entries(value)) node.setAttribute(k, v);
    else if (key === "data") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

export const byId = (id) => document.getElementById(id);

// The JSON a template put in <script type="application/json" id="…"> (null when absent).
export function pageData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// Offer a Blob as a download named `filename`.
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Put `text` on the clipboard; falls back to selecting `input` (if given) so the user can copy
// it by hand where the Clipboard API is unavailable (plain http on another host). Resolves to
// true when the text was copied.
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    return false;
  }
}
