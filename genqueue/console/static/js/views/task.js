// The task page (#/tasks/<id>): one task followed live over its event stream. The stream's
// first frame (snapshot) is the task as it stands, and a new one comes whenever a queued
// task's place in line moves; progress and previews update in place; every change of status
// reads the task again (its result, error, timings). The timeline starts from the task's kept
// events (GET /v1/tasks/<id>/events, read once the stream is open, so nothing falls between
// the two), then lists each new one; frames the history already had are dropped by event id.

import { api } from "../api.js";
import { badge, clock, duration, errorBox, h, isFinal } from "../dom.js";
import { subscribe } from "../events.js";
import { navigate } from "../main.js";
import {
  canCancel, cancelTask, previewSrc, progressBar, resultView, retryTask, setProgress, title,
  useStyles, whenText,
} from "../render.js";

const seconds = (from, to) => (from && to ? (new Date(to) - new Date(from)) / 1000 : null);

function describe(type, data) {
  const d = (data && data.data) || {};
  switch (type) {
    case "task.queued": return "queued";
    case "task.started":
      return `started${d.worker_id ? ` on ${d.worker_id}` : ""}${d.attempt ? ` (attempt ${d.attempt})` : ""}`;
    case "task.progress":
      return `progress ${Math.round((d.fraction || 0) * 100)} %${d.message ? ` · ${d.message}` : ""}`;
    case "task.retrying":
      return `will retry${d.delay_s != null ? ` in ${duration(d.delay_s)}` : ""}: ${d.error || "the run failed"}`;
    case "task.failed": return `failed: ${d.error || "no reason given"}`;
    case "task.cancel_requested": return "cancel requested";
    case "task.expired": return "expired: not started in time";
    case "diagnosis.alert": return `alert: ${d.check} (score ${Number(d.score).toFixed(2)}, threshold ${d.threshold})`;
    case "lagged": return "some events were missed; the task was read again";
    default: return type.replace(/^task\./, "");
  }
}

function timings(task) {
  const rows = [
    ["Created", clock(task.created_at)], ["Started", clock(task.started_at)], ["Finished", clock(task.finished_at)],
    ["Waited", duration(seconds(task.created_at, task.started_at))],
    ["Ran", duration(seconds(task.started_at, task.finished_at))],
  ];
  return rows.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value)));
}

export async function mount(root, { id }) {
  useStyles();
  let task;
  try {
    task = await api(`/v1/tasks/${id}`);
  } catch (err) {
    const missing = err.status === 404;
    root.append(h("h2", {}, missing ? "Task not found" : "Task"),
      errorBox(missing
        ? `There is no task ${id} (it may have been removed after its retention period).`
        : `The task could not be loaded: ${err.message}`),
      h("p", {}, h("a", { href: "#/tasks" }, "Back to my tasks")));
    return;
  }

  const heading = h("h2");
  const status = h("span#task-status");
  const when = h("p.task-when.muted#task-when");
  const progress = progressBar("Progress");
  const previewImg = h("img.preview", { alt: "Live preview of the run" });
  const previewNote = h("figcaption.muted");
  const preview = h("figure.live-preview#live-preview", { hidden: true }, previewImg, previewNote);
  const problem = h("div#task-error");
  const cancel = h("button.danger#cancel", { type: "button" }, "Cancel");
  const retry = h("button.secondary#retry", { type: "button" }, "Retry");
  const actionError = h("div");
  const facts = h("dl.meta");
  const times = h("dl.meta.timings");
  const result = h("section.card#result", { hidden: true, "aria-labelledby": "result-title" },
    h("h3#result-title", {}, "Result"));
  const timeline = h("ol.timeline#timeline");
  root.append(heading,
    h("section.card.summary", { "aria-label": "Status" },
      h("div.task-head", {}, status, h("span.muted", {}, ` ${task.kind}`)), when, progress, problem, preview,
      h("div.actions", {}, cancel, retry, h("a", { href: "#/tasks" }, "All my tasks")), actionError),
    result,
    h("div.grid", {},
      h("section.card", { "aria-labelledby": "details-title" }, h("h3#details-title", {}, "Details"), facts, times),
      h("section.card", { "aria-labelledby": "timeline-title" }, h("h3#timeline-title", {}, "Events"), timeline)));

  let hasPreview = false;
  let reading = 0;
  let lastProgress = null;

  const showPreview = (src, caption) => {
    hasPreview = true;
    previewImg.src = src;
    previewNote.textContent = caption;
    preview.hidden = task.status !== "running" && task.status !== "queued";
  };
  const note = (text, at) => {
    const item = h("li", {}, h("time", { datetime: at || "" }, clock(at || new Date().toISOString())), " ", text);
    timeline.append(item);
    return item;
  };
  const render = (next) => {
    task = next;
    heading.textContent = title(task);
    status.replaceChildren(badge(task.status));
    when.textContent = whenText(task);
    when.hidden = !when.textContent;
    setProgress(progress, task.progress, task.status);
    // A cancellation with a reason (a deadline, cancel_after_s) is shown like a failure.
    const why = task.error && task.error !== "cancelled" ? task.error : null;
    const failed = ["failed", "expired"].includes(task.status) || (task.status === "cancelled" && why);
    problem.replaceChildren(failed ? errorBox(`${task.status}: ${task.error || "no reason given"}`) : "");
    // A read of a running task carries its latest preview: shown at once, mid-run.
    if (task.preview && task.status === "running") showPreview(task.preview, "Live preview · the latest");
    preview.hidden = task.status !== "running" || !hasPreview;
    cancel.hidden = !canCancel(task);
    retry.hidden = !isFinal(task.status);
    facts.replaceChildren(...[
      ["Task", task.id], ["User", task.user || "–"], ["Queue", task.queue], ["Priority", task.priority],
      ["Attempts", `${task.attempts} of ${task.max_attempts}`], ["Worker", task.worker_id || "–"],
      ["Batch", task.batch_id ? h("a", { href: `#/batches/${task.batch_id}` }, task.batch_id.slice(0, 8)) : "–"],
    ].map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value))));
    times.replaceChildren(...timings(task));
    if (task.status === "succeeded" && result.childElementCount === 1) result.append(resultView(task));
    result.hidden = task.status !== "succeeded";
  };
  const reread = async () => {
    const mine = ++reading;
    try {
      const fresh = await api(`/v1/tasks/${id}`);
      if (mine === reading) render(fresh);
    } catch (err) {
      if (mine === reading) actionError.replaceChildren(errorBox(`The task could not be read again: ${err.message}`));
    }
  };

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      render(await cancelTask(task));
    } catch (err) {
      actionError.replaceChildren(errorBox(`Not cancelled: ${err.message}`));
    }
    cancel.disabled = false;
  });
  retry.addEventListener("click", async () => {
    retry.disabled = true;
    try { navigate(`/tasks/${(await retryTask(task)).id}`); } catch (err) {
      actionError.replaceChildren(errorBox(`Not submitted again: ${err.message}`));
      retry.disabled = false;
    }
  });

  // One event on the timeline; live ones also move the page (history only draws).
  const seen = new Set();
  const apply = (type, data, live) => {
    if (data && data.id) {
      if (seen.has(data.id)) return;
      seen.add(data.id);
    }
    if (type === "task.preview") {
      if (live) showPreview(previewSrc(data.data), `Live preview · #${data.data.seq}`);
      return;
    }
    if (type === "task.progress") {
      // preview: null, so the last read's picture does not replace a newer live one.
      if (live) render({ ...task, status: "running", position: null, progress: data.data, preview: null });
      // Progress comes in runs: one line that moves, not a line per step.
      if (lastProgress && lastProgress === timeline.lastElementChild) lastProgress.remove();
      lastProgress = note(describe(type, data), data.at);
      return;
    }
    note(describe(type, data), data && data.at);
    if (live && (type.startsWith("task.") || type === "lagged")) reread();
  };
  // The record's times stand in for events no longer kept (the store keeps minutes of them).
  const seedFromRecord = (events) => {
    if (events.length && events[0].type === "task.queued") return;
    note("queued", task.created_at);
    if (events.length) {
      note("some later events are no longer kept", events[0].at).classList.add("muted");
      return;
    }
    if (task.started_at) note("started", task.started_at);
    if (task.finished_at) note(task.status, task.finished_at);
  };

  render(task);
  let held = null; // frames that come while the history loads; null: not loading yet
  const loadHistory = async () => {
    held = [];
    let events = [];
    try {
      events = await api(`/v1/tasks/${id}/events`);
    } catch (err) {
      timeline.before(errorBox(`The earlier events could not be loaded: ${err.message}`));
    }
    seedFromRecord(events);
    for (const event of events) apply(event.type, event, false);
    const waiting = held;
    held = false;
    for (const [type, data] of waiting) apply(type, data, true);
  };
  const close = subscribe({ task_id: id }, (type, data) => {
    if (type === "snapshot") { // the task as it stands; the first one: the stream is open
      render(data);
      if (held === null) loadHistory();
      return;
    }
    if (held) held.push([type, data]);
    else apply(type, data, true);
  });
  return close;
}
