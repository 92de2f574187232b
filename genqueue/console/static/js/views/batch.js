// #/batches/<id>: a batch as it runs. Its tasks are loaded once (GET /v1/tasks?batch_id=),
// then kept current by the batch's event stream, no polling: counts, "n/total" and the bar
// follow each frame, and a tile shows each task's live preview, then its picture.

import { api } from "../api.js";
import { badge, errorBox, h, isFinal } from "../dom.js";
import { subscribe } from "../events.js";
import { countsList, doneCount, useStyles } from "./batches.js";

async function loadTasks(batchId) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("/v1/tasks", { query: { batch_id: batchId, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items.reverse(); // the API lists newest first; the order of submission reads better
}

function tile(entry) {
  const { task } = entry;
  const label = typeof task.payload.prompt === "string" ? task.payload.prompt : task.kind;
  const src = (task.result && task.result.image_url) || entry.preview;
  return h("li.tile", { dataset: { task: task.id, status: task.status } },
    h("a", { href: `#/tasks/${task.id}`, title: task.error || label },
      // The caption names the picture, so the image itself is decorative.
      h("div.frame", {}, src ? h("img", { src, alt: "" }) : null),
      h("span.caption", {}, label),
      badge(task.status)));
}

export async function mount(root, { id }) {
  useStyles();
  root.append(h("h2", {}, `Batch ${id.slice(0, 8)}…`));

  // Listen before loading, holding frames back, so nothing between the two is missed.
  const held = [];
  let entries = null;
  const close = subscribe({ batch_id: id }, (type, data) => {
    if (entries === null) held.push([type, data]);
    else apply(type, data);
  });

  let batch;
  try {
    const [found, tasks] = await Promise.all([api(`/v1/batches/${id}`), loadTasks(id)]);
    batch = found;
    entries = new Map(tasks.map((task) => [task.id, { task, preview: null }]));
  } catch (err) {
    close();
    const message = err.status === 404 ? `There is no batch ${id}; it may have expired.` : err.message;
    root.append(errorBox(`The batch could not be loaded: ${message}`),
      h("p", {}, h("a", { href: "#/batches" }, "Back to batches")));
    return null;
  }

  const done = h("strong#batch-done", {});
  const bar = h("progress", { max: batch.size, value: 0, "aria-label": "Tasks finished" });
  const counts = h("div");
  const note = h("div", { id: "batch-note" });
  const cancel = h("button.danger", { type: "button", id: "batch-cancel" }, "Cancel the rest");
  const tiles = h("ul.tiles", { "aria-label": "Tasks of the batch" });
  root.append(
    h("section.card", { "aria-labelledby": "batch-progress-title" },
      h("h3#batch-progress-title", {}, "Progress"),
      h("div.done-line", {}, done, h("span.muted", {}, "tasks finished"),
        h("span.muted", {}, `user ${batch.user || "–"} · submitted ${new Date(batch.created_at).toLocaleString()}`)),
      bar, counts, note, h("div.actions", {}, cancel)),
    h("section.card", { "aria-labelledby": "batch-tasks-title" },
      h("h3#batch-tasks-title", {}, "Tasks"), tiles));

  function summarize() {
    const tally = {};
    for (const { task } of entries.values()) tally[task.status] = (tally[task.status] || 0) + 1;
    const finished = doneCount(tally);
    done.textContent = `${finished}/${batch.size}`;
    bar.value = finished;
    counts.replaceChildren(countsList(tally));
    cancel.disabled = finished >= batch.size;
  }

  function redraw(entry) {
    const old = tiles.querySelector(`[data-task="${entry.task.id}"]`);
    if (old) old.replaceWith(tile(entry));
    else tiles.append(tile(entry));
  }

  async function resync() {
    const tasks = await loadTasks(id);
    for (const task of tasks) entries.set(task.id, { task, preview: null });
    tiles.replaceChildren(...[...entries.values()].map(tile));
    summarize();
  }

  async function fetchResult(entry) {
    try {
      entry.task = await api(`/v1/tasks/${entry.task.id}`);
      redraw(entry);
    } catch (err) {
      note.replaceChildren(errorBox(`A finished task could not be loaded: ${err.message}`));
    }
  }

  function apply(type, data) {
    if (type === "lagged") { // frames were dropped: read the tasks afresh once
      resync().catch((err) => note.replaceChildren(errorBox(err.message)));
      return;
    }
    const entry = data && entries.get(data.task_id);
    // A finished task never moves again: a late frame about it is stale.
    if (!entry || isFinal(entry.task.status)) return;
    if (type === "task.preview" && data.data && data.data.data) {
      entry.preview = `data:${data.data.content_type};base64,${data.data.data}`;
    }
    entry.task = { ...entry.task, status: data.status };
    redraw(entry);
    summarize();
    if (type === "task.succeeded") fetchResult(entry); // the frame has no result: read it once
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    note.replaceChildren();
    const open = [...entries.values()].filter((entry) => !isFinal(entry.task.status)).length;
    try {
      await api(`/v1/batches/${id}/cancel`, { method: "POST" });
      note.replaceChildren(h("p.muted", { role: "status" },
        `Cancel requested for ${open} unfinished task${open === 1 ? "" : "s"}.`));
    } catch (err) {
      cancel.disabled = false;
      note.replaceChildren(errorBox(`The batch could not be cancelled: ${err.message}`));
    }
  });

  tiles.append(...[...entries.values()].map(tile));
  summarize();
  for (const [type, data] of held.splice(0)) apply(type, data);
  return close;
}
