// How a task looks wherever the console shows it (My tasks, the task page, and any other view
// that imports this read-only): its title, place in line and ETA, progress, live preview, the
// result by kind, and the two actions every task has (cancel, retry).

import { api } from "./api.js";
import { bytes, duration, h, useStylesheet } from "./dom.js";

/** Load the task views' stylesheet once, whichever view comes first. */
export function useStyles() {
  useStylesheet("/static/css/tasks.css");
}

/** What the user asked for, in a few words: the prompt, the camera, or the kind. */
export function title(task) {
  const p = task.payload || {};
  const text = p.prompt || p.camera_id || p.id || (p.caption && p.caption.text) || task.kind;
  return String(text).length > 80 ? `${String(text).slice(0, 79)}…` : String(text);
}

/** The image of a task.preview frame's data, as a URL an <img> takes. */
export function previewSrc(frame) {
  return `data:${frame.content_type};base64,${frame.data}`;
}

function secondsUntil(iso) {
  return iso ? (new Date(iso).getTime() - Date.now()) / 1000 : null;
}

/** "2nd in line · starts in ~5 s · done in ~12 s" for a queued or running task, else "". */
export function whenText(task) {
  const parts = [];
  if (task.status === "queued" && task.position != null) parts.push(`#${task.position} in line`);
  if (task.waiting_for) parts.push(`waiting for ${task.waiting_for}`);
  const eta = task.eta || {};
  if (task.status === "queued") {
    const start = eta.start_in_s ?? secondsUntil(eta.starts_at);
    if (start != null) parts.push(`starts in ~${duration(start)}`);
    // No estimate: no live worker serves the queue, or no run of this kind was measured yet.
    else if (!task.eta) parts.push("no estimate yet");
  }
  if (task.status === "queued" || task.status === "running") {
    const finish = eta.finish_in_s ?? secondsUntil(eta.finishes_at);
    if (finish != null) parts.push(`done in ~${duration(finish)}`);
  }
  if (task.cancel_requested && task.status === "running") parts.push("cancelling…");
  return parts.join(" · ");
}

/** A labelled progress bar with its message; update it with setProgress. */
export function progressBar(label) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": label });
  const note = h("span.progress-note.muted");
  return h("div.progress", {}, bar, note);
}

export function setProgress(node, progress, status) {
  const fraction = (progress && progress.fraction) || 0;
  node.querySelector("progress").value = fraction;
  const message = progress && progress.message;
  node.querySelector(".progress-note").textContent =
    `${Math.round(fraction * 100)} %${message && status === "running" ? ` · ${message}` : ""}`;
  node.hidden = status !== "running";
}

/** The URL of a picture standing for a finished task's result, if it has one. */
export function resultPicture(task) {
  const r = task.status === "succeeded" ? task.result || {} : {};
  return r.image_url || r.annotated_url || null;
}

export function canCancel(task) {
  return (task.status === "queued" || task.status === "running") && !task.cancel_requested;
}

export function cancelTask(task) {
  return api(`/v1/tasks/${task.id}/cancel`, { method: "POST" });
}

/** Submit the same kind and payload again, for the same user and priority: the new task. */
export function retryTask(task) {
  const json = { kind: task.kind, payload: task.payload, priority: task.priority };
  if (task.user) json.user = task.user;
  return api("/v1/tasks", { method: "POST", json });
}

// The result, by what it holds: a video, a diagnosis, feature labels, a picture; anything else
// as JSON. Always followed by the raw result (long strings such as embeddings shortened).

/** The result of a succeeded task, for the task page. */
export function resultView(task) {
  const r = task.result || {};
  let body;
  if (r.video_url) body = videoResult(r);
  else if (Array.isArray(r.findings)) body = diagnosisResult(r);
  else if (Array.isArray(r.items) && r.dim) body = featureResult(r);
  else if (r.image_url) body = pictureResult(r);
  else body = null;
  const raw = h("details.raw", {}, h("summary", {}, "Result as JSON"),
    h("pre", {}, JSON.stringify(shorten(r), null, 2)));
  return h("div.result", {}, body, raw);
}

function meta(pairs) {
  const list = h("dl.meta");
  for (const [name, value] of pairs) {
    if (value == null || value === "") continue;
    list.append(h("div", {}, h("dt", {}, name), h("dd", {}, String(value))));
  }
  return list;
}

function pictureResult(r) {
  const classes = (r.classes || []).map((c) => `${c.name} (${Math.round(c.weight * 100)} %)`);
  return h("figure.picture", {},
    h("img.result-media#result-image",
      { src: r.image_url, alt: "The result picture", width: r.width, height: r.height }),
    h("figcaption", {},
      meta([
        ["Size", `${r.width}×${r.height}`], ["Style", r.style], ["Engine", r.engine],
        ["Seed", r.seed], ["File", r.file_size != null ? bytes(r.file_size) : null],
        ["Took", r.duration != null ? `${r.duration} s` : null], ["Cut-out", r.cutout],
        ["Matched", classes.join(", ")],
      ]),
      r.mask_url ? h("a", { href: r.mask_url }, "The cut-out mask") : null));
}

function videoResult(r) {
  return h("figure.picture", {},
    h("video.result-media#result-video",
      { src: r.video_url, controls: true, preload: "metadata", width: r.width, height: r.height }),
    h("figcaption", {}, meta([
      ["Size", `${r.width}×${r.height}`], ["Length", `${r.duration_s} s`], ["Frame rate", `${r.fps} fps`],
      ["Provider", r.provider], ["Model", r.model], ["File", bytes(r.file_size)],
    ])));
}

function diagnosisResult(r) {
  const rows = r.findings.map((f) =>
    h(`tr.finding-${f.verdict}`, {},
      h("th", { scope: "row" }, f.check),
      h("td", {}, h(`span.badge.verdict-${f.verdict}`, {}, f.verdict)),
      h("td", {}, f.score == null ? "–" : f.score.toFixed(2)),
      h("td", {}, f.threshold == null ? "–" : String(f.threshold)),
      h("td.detail", {}, f.detail || "")));
  const table = h("div.table-wrap", {}, h("table#findings", {},
    h("caption", {}, "Findings"),
    h("thead", {}, h("tr", {},
      ["Check", "Verdict", "Score", "Threshold", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)));
  return h("div.diagnosis", {},
    h("p.verdict", {}, "Verdict: ", h(`span.badge.verdict-${r.verdict}`, {}, r.verdict),
      r.alerts.length ? ` (${r.alerts.join(", ")})` : ""),
    meta([["Camera", r.camera_id], ["Frame", `${r.width}×${r.height}`],
      ["Faces", r.counts.faces], ["People", r.counts.people], ["Took", `${r.elapsed_s} s`]]),
    r.annotated_url ? h("img.result-media#result-image",
      { src: r.annotated_url, alt: "The frame with what the checks found drawn on it" }) : null,
    table);
}

function featureResult(r) {
  const items = r.items.map((item) =>
    h("li", {}, h("strong", {}, item.id),
      h("ol.labels", {}, item.labels.map((l) =>
        h("li", {}, `${l.name} `, h("span.muted", {}, `${(l.score * 100).toFixed(1)} %`))))));
  return h("div.features", {},
    meta([["Model", r.model], ["Dimensions", r.dim], ["Collection", r.collection], ["Took", `${r.elapsed_s} s`]]),
    h("ul.feature-items", {}, items));
}

function shorten(value) {
  if (typeof value === "string") {
    return value.length > 200 ? `${value.slice(0, 60)}… (${value.length} characters)` : value;
  }
  if (Array.isArray(value)) return value.map(shorten);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shorten(v)]));
  }
  return value;
}
