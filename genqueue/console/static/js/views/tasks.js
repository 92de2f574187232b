// My tasks: the console user's tasks, newest first, kept live by one event stream for the user
// (no polling). Progress and previews update their row in place; any change of status reads
// the shown page again (one request per burst of events), so positions, ETAs, new tasks and
// the filters stay right. Filters live in the hash query and in localStorage.

import { api, consoleUser } from "../api.js";
import { ago, badge, clock, duration, emptyState, errorBox, h, isFinal } from "../dom.js";
import { subscribe } from "../events.js";
import {
  canCancel, cancelTask, previewSrc, progressBar, resultPicture, retryTask, setProgress, title,
  useStyles, whenText,
} from "../render.js";

const PAGE = 20;
const MAX_PAGE = 500; // the API's largest page: a refresh reads at most this many
const SETTLE_MS = 150; // events come in bursts (a batch, a retry): one refresh per burst
const SAVED = "genqueue.tasks.filters";
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "expired"];

function readFilters() {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(SAVED) || "{}"); } catch { /* a broken entry: start afresh */ }
  const pick = (key, fallback) => (query.has(key) ? query.get(key) : saved[key] ?? fallback);
  return { status: pick("status", ""), kind: pick("kind", ""), user: pick("user", consoleUser()) };
}

function keepFilters(filters) {
  localStorage.setItem(SAVED, JSON.stringify(filters));
  // replaceState: the address shows the filters without the router mounting the view again.
  history.replaceState(null, "", `#/tasks?${new URLSearchParams(filters)}`);
}

/** One task's row; update() takes a newer record of it, preview() a live picture. */
function taskRow(task, onAction) {
  const pic = h("div.task-pic");
  const status = h("span");
  const link = h("a.task-title", { href: `#/tasks/${task.id}` });
  const kind = h("span.muted");
  const when = h("div.task-when.muted");
  const progress = progressBar(`Progress of task ${task.id.slice(0, 8)}`);
  const error = h("p.task-error");
  const cancel = h("button.secondary", { type: "button", onclick: () => onAction("cancel", row) }, "Cancel");
  const retry = h("button.secondary", { type: "button", onclick: () => onAction("retry", row) }, "Retry");
  const node = h("li.task-item", { dataset: { id: task.id } }, pic,
    h("div.task-main", {}, h("div.task-head", {}, status, link, kind), when, progress, error),
    h("div.actions", {}, cancel, retry));
  let preview = null;

  const showPicture = () => {
    const src = resultPicture(row.task) || (row.task.status === "running" ? preview : null);
    const img = pic.querySelector("img");
    if (!src) { pic.replaceChildren(h("span.no-pic", { "aria-hidden": "true" }, row.task.kind.split(".")[0])); return; }
    const alt = src === preview ? "Live preview" : "Result";
    if (img) { img.src = src; img.alt = alt; } else pic.replaceChildren(h("img.thumb", { src, alt }));
  };
  const row = {
    node,
    task,
    update(next) {
      row.task = next;
      if (isFinal(next.status)) preview = null;
      status.replaceChildren(badge(next.status));
      link.textContent = title(next);
      kind.textContent = ` ${next.kind}`;
      const ran = next.started_at && next.finished_at
        ? ` · ran ${duration((new Date(next.finished_at) - new Date(next.started_at)) / 1000)}` : "";
      when.textContent = whenText(next) || `created ${clock(next.created_at)}${ran}`;
      when.title = `created ${duration(ago(next.created_at))} ago`;
      setProgress(progress, next.progress, next.status);
      error.textContent = next.status === "failed" || next.status === "expired" ? next.error || next.status : "";
      error.hidden = !error.textContent;
      cancel.hidden = !canCancel(next);
      cancel.setAttribute("aria-label", `Cancel ${title(next)}`);
      retry.hidden = !isFinal(next.status);
      retry.setAttribute("aria-label", `Retry ${title(next)}`);
      showPicture();
    },
    progress(data) {
      row.update({ ...row.task, status: "running", position: null, progress: data });
    },
    preview(src) {
      preview = src;
      showPicture();
    },
  };
  row.update(task);
  return row;
}

export async function mount(root) {
  useStyles();
  let filters = readFilters();
  const rows = new Map();
  let cursor = null;
  let close = null;
  let timer = null;

  const notice = h("div.list-notice", { "aria-live": "polite" });
  const list = h("ul.task-list", { "aria-label": "Tasks" });
  const more = h("button.secondary", { type: "button", hidden: true }, "Load more");
  const kinds = h("select#filter-kind", { name: "kind" }, h("option", { value: "" }, "All kinds"));
  const statuses = h("select#filter-status", { name: "status" }, h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s)));
  const user = h("input#filter-user", { name: "user", type: "text", autocomplete: "off", placeholder: "all users" });
  const form = h("form.card.filters", { role: "search", "aria-label": "Filter tasks" },
    h("div.row", {},
      h("div.field", {}, h("label", { for: "filter-status" }, "Status"), statuses),
      h("div.field", {}, h("label", { for: "filter-kind" }, "Kind"), kinds),
      h("div.field", {}, h("label", { for: "filter-user" }, "User"), user)));
  root.append(h("h2", {}, "My tasks"), form, notice, list, h("div.actions.more", {}, more));

  const query = (limit, cursor) => ({ ...filters, limit, cursor });

  /** Show `items` in this order, reusing rows (and so focus) where the task is already shown. */
  const reconcile = (items, append) => {
    const wanted = items.map((task) => {
      const known = rows.get(task.id);
      if (known) { known.update(task); return known; }
      const made = taskRow(task, act);
      rows.set(task.id, made);
      return made;
    });
    if (append) {
      list.append(...wanted.map((r) => r.node));
    } else {
      let at = list.firstChild;
      for (const r of wanted) {
        if (r.node === at) at = at.nextSibling;
        else list.insertBefore(r.node, at);
      }
      const keep = new Set(wanted);
      for (const [id, r] of rows) if (!keep.has(r)) { r.node.remove(); rows.delete(id); }
    }
    const empty = rows.size === 0;
    list.hidden = empty;
    notice.replaceChildren(empty ? emptyState(
      filters.status || filters.kind
        ? "No tasks match these filters." : `No tasks yet${filters.user ? ` for ${filters.user}` : ""}.`,
      h("a.button", { href: "#/create" }, "Create a task")) : "");
  };

  const refresh = async () => {
    try {
      const page = await api("/v1/tasks", { query: query(Math.min(MAX_PAGE, Math.max(PAGE, rows.size))) });
      cursor = page.next_cursor;
      more.hidden = !cursor;
      reconcile(page.items, false);
    } catch (err) {
      notice.replaceChildren(errorBox(`The tasks could not be loaded: ${err.message}`));
    }
  };
  const soon = () => { clearTimeout(timer); timer = setTimeout(refresh, SETTLE_MS); };

  async function act(action, row) {
    try {
      if (action === "cancel") row.update(await cancelTask(row.task));
      else await retryTask(row.task);
      soon();
    } catch (err) {
      notice.replaceChildren(errorBox(`Could not ${action} the task: ${err.message}`));
    }
  }

  const follow = () => {
    if (close) close();
    close = subscribe({ user: filters.user }, (type, data) => {
      const row = data && rows.get(data.task_id);
      if (type === "task.progress") { if (row) row.progress(data.data); } else if (type === "task.preview") {
        if (row) row.preview(previewSrc(data.data));
      } else if (type.startsWith("task.") || type === "lagged") soon();
    });
  };

  const apply = () => {
    filters = { status: statuses.value, kind: kinds.value, user: user.value.trim() };
    keepFilters(filters);
    for (const r of rows.values()) r.node.remove();
    rows.clear();
    follow();
    refresh();
  };

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api("/v1/tasks", { query: query(PAGE, cursor) });
      cursor = page.next_cursor;
      more.hidden = !cursor;
      reconcile(page.items, true);
    } catch (err) {
      notice.replaceChildren(errorBox(`More tasks could not be loaded: ${err.message}`));
    } finally {
      more.disabled = false;
    }
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  for (const control of [statuses, kinds, user]) control.addEventListener("change", apply);

  try {
    for (const k of await api("/v1/kinds")) kinds.append(h("option", { value: k.name }, k.name));
  } catch {
    // Without the kinds the filter offers "All kinds" only; the list below says what failed.
  }
  statuses.value = filters.status;
  kinds.value = filters.kind;
  user.value = filters.user;
  follow();
  await refresh();
  return () => { clearTimeout(timer); if (close) close(); };
}
