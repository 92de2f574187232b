// The console's shell: a hash router over views (#/create, #/tasks, #/tasks/<id>, #/batches,
// #/batches/<id>, #/search, #/operate). A view is a module under views/ exporting
//   mount(root, params) -> optional unmount()
// which fills `root` and returns what to stop (event streams, timers) when the user leaves.

import { api, onReachability, onUnauthorized, setConsoleUser } from "./api.js";
import { errorBox, h } from "./dom.js";
import { signIn } from "./views/signin.js";

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

// The session (GET /v1/session): null until known, or while a key is needed.
let session = null;

async function show() {
  const mine = ++generation;
  if (session === null) return; // signing in first
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

/** Who is signed in, and a way out, in the header (only where the API asks for keys). */
function showAccount() {
  const account = document.getElementById("account");
  if (!session || !session.auth) { account.replaceChildren(); return; }
  const out = h("button.link", { type: "button", id: "sign-out" }, "Sign out");
  out.addEventListener("click", async () => {
    await api("/v1/session", { method: "DELETE" }).catch(() => null);
    needKey();
  });
  account.replaceChildren(h("span", { id: "signed-in" }, `${session.user || "everyone"} · ${session.role}`), out);
}

function signedIn(found) {
  session = found;
  if (session.auth && session.user) setConsoleUser(session.user);
  showAccount();
  show();
}

/** The API wants a key: the sign-in form, in place of any view. */
function needKey() {
  ++generation;
  session = null;
  showAccount();
  if (unmount) {
    try { unmount(); } catch (err) { console.warn("unmount failed", err); }
    unmount = null;
  }
  markNav(null);
  signIn(root, signedIn);
}

async function start() {
  try {
    signedIn(await api("/v1/session"));
  } catch (err) {
    if (err.status === 401) needKey();
    else signedIn({ auth: false, user: null, role: "operator" }); // the views say what is wrong
  }
}

onUnauthorized(() => { if (session !== null) needKey(); });
window.addEventListener("hashchange", show);
start();
