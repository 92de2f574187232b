// The console's shell: a hash router over views (#/create, #/tasks, #/tasks/<id>, #/batches,
// #/batches/<id>, #/search, #/operate). A view is a module under views/ exporting
//   mount(root, params) -> optional unmount()
// which fills `root` and returns what to stop (event streams, timers) when the user leaves.

import { onReachability } from "./api.js";
import { errorBox, h } from "./dom.js";

const ROUTES = [
  { pattern: /^\/?$/, view: "create" },
  { pattern: /^\/create$/, view: "create" },
  { pattern: /^\/tasks$/, view: "tasks" },
  { pattern: /^\/tasks\/([0-9a-f]{32})$/, view: "task", params: ["id"] },
  { pattern: /^\/batches$/, view: "batches" },
  { pattern: /^\/batches\/([0-9a-f]{32})$/, view: "batch", params: ["id"] },
  { pattern: /^\/search$/, view: "search" },
  { pattern: /^\/operate$/, view: "operate" },
];

const root = document.getElementById("view");
let unmount = null;
let generation = 0;

function resolve(path) {
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (match) {
      const params = {};
      (route.params || []).forEach((name, i) => { params[name] = match[i + 1]; });
      return { view: route.view, params };
    }
  }
  return null;
}

function markNav(view) {
  const section = view === "task" ? "tasks" : view === "batch" ? "batches" : view;
  for (const link of document.querySelectorAll("nav.main a[data-view]")) {
    if (link.dataset.view === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function show() {
  const mine = ++generation;
  const path = location.hash.replace(/^#/, "").split("?")[0];
  const found = resolve(path);
  if (unmount) {
    try { unmount(); } catch (err) { console.warn("unmount failed", err); }
    unmount = null;
  }
  root.replaceChildren();
  if (!found) {
    root.append(h("h2", {}, "Not found"), errorBox(`There is no page at ${path}.`));
    return;
  }
  markNav(found.view);
  try {
    const module = await import(`./views/${found.view}.js`);
    if (mine !== generation) return; // the user moved on meanwhile
    const stop = await module.mount(root, found.params);
    if (mine !== generation) { if (typeof stop === "function") stop(); return; }
    unmount = typeof stop === "function" ? stop : null;
    const heading = root.querySelector("h2");
    document.title = `${heading ? heading.textContent : found.view} · genqueue`;
  } catch (err) {
    root.replaceChildren(h("h2", {}, "Something went wrong"), errorBox(String(err.message || err)));
  }
}

/** Go to a console path ("/tasks/<id>"). */
export function navigate(path) {
  location.hash = `#${path}`;
}

onReachability((up) => {
  const banner = document.getElementById("banner");
  banner.hidden = up;
  banner.textContent = up ? "" : "The API cannot be reached; retrying. What you see may be out of date.";
});

// The skip link moves focus to the view; followed as a link, its "#view" would be a route.
document.querySelector("a.skip").addEventListener("click", (event) => {
  event.preventDefault();
  root.focus();
});

window.addEventListener("hashchange", show);
show();
