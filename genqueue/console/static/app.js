// genqueue console: submit an image, a video or a camera frame to diagnose; follow the task
// live over SSE (position, progress, alerts); show the picture, the video or the findings.
"use strict";

const $ = (id) => document.getElementById(id);
const FINAL = ["succeeded", "failed", "cancelled", "expired"];
let stream = null;
let current = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function describeError(status, body) {
  const fields = (body.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
  return fields || body.message || `error ${status}`;
}

function showImage(url, caption) {
  $("video").hidden = true;
  $("video").removeAttribute("src");
  $("image").hidden = false;
  $("image").src = url;
  $("caption").textContent = caption;
}

function showVideo(url, caption) {
  $("image").hidden = true;
  $("video").hidden = false;
  if ($("video").getAttribute("src") !== url) $("video").src = url;
  $("caption").textContent = caption;
}

function showFindings(findings) {
  const rows = (findings || []).map((f) => {
    const row = document.createElement("tr");
    row.className = f.verdict;
    const score = f.score == null ? "-" : f.score.toFixed(2);
    for (const value of [f.check, score, f.threshold ?? "-", f.verdict, f.detail]) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    return row;
  });
  $("findings").querySelector("tbody").replaceChildren(...rows);
  $("findings").hidden = rows.length === 0;
}

function showResult(task) {
  const r = task.result;
  const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
  if (task.kind === "video.generate") {
    showVideo(r.video_url, `${r.width}×${r.height} · ${r.duration_s}s · ${r.fps} fps · ` +
      `${r.provider} · ${kib(r.file_size)}`);
  } else if (task.kind === "image.diagnose") {
    if (r.annotated_url) showImage(r.annotated_url, "");
    $("caption").textContent = `verdict: ${r.verdict} · ${r.width}×${r.height}` +
      (r.camera_id ? ` · camera ${r.camera_id}` : "");
    showFindings(r.findings);
  } else if (r.image_url) {
    showImage(r.image_url, `${r.width}×${r.height} · ${r.style} · ${kib(r.file_size)} · ` +
      `${r.duration}s`);
  }
}

function render(task) {
  current = task;
  $("job").hidden = false;
  $("task-id").textContent = task.id;
  $("task-kind").textContent = task.kind || "";
  $("status").textContent = task.status;
  $("position-wrap").hidden = task.position == null;
  $("position").textContent = task.position ?? "";
  $("progress").value = task.progress ? task.progress.fraction : 0;
  const note = task.status === "succeeded" ? "done" : task.progress && task.progress.message;
  $("message").textContent = task.error || note || "";
  $("cancel").disabled = FINAL.includes(task.status);
  const done = task.status === "succeeded" && task.result;
  $("result").hidden = !done;
  if (!done) $("findings").hidden = true;
  if (done) showResult(task);
}

async function refresh(id) {
  const response = await fetch(`/v1/tasks/${id}`);
  if (response.ok) render(await response.json());
}

function addAlert(data) {
  const d = data.data || {};
  const item = document.createElement("li");
  item.textContent = `${d.check}: score ${Number(d.score).toFixed(2)}, threshold ` +
    `${d.threshold}${d.detail ? ` (${d.detail})` : ""}`;
  $("alerts").append(item);
  $("alerts").hidden = false;
}

function follow(task) {
  if (stream) stream.close();
  $("alerts").replaceChildren();
  $("alerts").hidden = true;
  render(task);
  stream = new EventSource(`/v1/events?task_id=${task.id}`);
  const onEvent = (e) => {
    const data = JSON.parse(e.data);
    if (e.type === "snapshot") { render(data); return; }
    if (e.type === "diagnosis.alert") { addAlert(data); return; }
    if (e.type === "task.progress") {
      render({ ...current, status: "running", position: null, progress: data.data });
      return;
    }
    refresh(task.id).then(loadHistory);
    if (FINAL.map((s) => `task.${s}`).includes(e.type)) stream.close();
  };
  for (const type of ["snapshot", "task.queued", "task.started", "task.progress", "task.retrying",
                      "task.succeeded", "task.failed", "task.cancelled", "task.expired",
                      "task.cancel_requested", "diagnosis.alert"]) {
    stream.addEventListener(type, onEvent);
  }
}

async function submitTask(kind, payload) {
  const response = await fetch("/v1/tasks", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind, payload, user: "console" }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(describeError(response.status, body));
  follow(body);
  loadHistory();
}

async function upload(file) {
  const response = await fetch("/v1/uploads", { method: "POST", body: file });
  const body = await response.json();
  if (!response.ok) throw new Error(describeError(response.status, body));
  return body.id;
}

function onSubmit(formId, buttonId, build) {
  $(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    $(buttonId).disabled = true;
    try {
      const [kind, payload] = await build();
      await submitTask(kind, payload);
    } catch (err) {
      showError(err instanceof Error ? err.message : String(err));
    } finally {
      $(buttonId).disabled = false;
    }
  });
}

onSubmit("generate", "submit", async () => {
  const payload = {
    prompt: $("prompt").value,
    style: $("style").value,
    width: Number($("width").value),
    height: Number($("height").value),
    steps: Number($("steps").value),
  };
  if ($("seed").value !== "") payload.seed = Number($("seed").value);
  return ["image.generate", payload];
});

onSubmit("video-form", "video-submit", async () => [
  "video.generate",
  {
    prompt: $("video-prompt").value,
    provider: $("video-provider").value,
    duration_s: Number($("video-duration").value),
    resolution: $("video-resolution").value,
  },
]);

onSubmit("diagnose-form", "diag-submit", async () => {
  const file = $("diag-file").files[0];
  if (!file) throw new Error("image: choose a camera image first");
  const payload = { image: { upload: await upload(file) } };
  if ($("diag-camera").value) payload.camera_id = $("diag-camera").value;
  return ["image.diagnose", payload];
});

for (const tab of document.querySelectorAll("#tabs [role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("#tabs [role=tab]")) {
      other.setAttribute("aria-selected", String(other === tab));
      $(other.dataset.form).hidden = other !== tab;
    }
    showError("");
  });
}

$("cancel").addEventListener("click", async () => {
  if (!current) return;
  const response = await fetch(`/v1/tasks/${current.id}/cancel`, { method: "POST" });
  if (response.ok) render(await response.json());
});

async function loadHistory() {
  const response = await fetch("/v1/tasks?user=console&limit=10");
  if (!response.ok) return;
  const page = await response.json();
  const list = $("history");
  list.replaceChildren(...page.items.map((task) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.textContent = task.payload.prompt || task.payload.camera_id || task.kind;
    link.addEventListener("click", () => follow(task));
    item.append(link, ` · ${task.kind} · ${task.status}`);
    return item;
  }));
}

loadHistory();
