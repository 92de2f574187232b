// genqueue console placeholder: submit a prompt, follow it live over SSE, show the picture.
"use strict";

const $ = (id) => document.getElementById(id);
let stream = null;
let current = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function render(task) {
  current = task;
  $("job").hidden = false;
  $("task-id").textContent = task.id;
  $("status").textContent = task.status;
  $("position-wrap").hidden = task.position == null;
  $("position").textContent = task.position ?? "";
  $("progress").value = task.progress ? task.progress.fraction : 0;
  const note = task.status === "succeeded" ? "done" : task.progress && task.progress.message;
  $("message").textContent = task.error || note || "";
  $("cancel").disabled = ["succeeded", "failed", "cancelled"].includes(task.status);
  const done = task.status === "succeeded" && task.result && task.result.image_url;
  $("result").hidden = !done;
  if (done) {
    $("image").src = task.result.image_url;
    $("caption").textContent =
      `${task.result.width}×${task.result.height} · ${task.result.style} · ` +
      `${(task.result.file_size / 1024).toFixed(0)} KiB · ${task.result.duration}s`;
  }
}

async function refresh(id) {
  const response = await fetch(`/v1/tasks/${id}`);
  if (response.ok) render(await response.json());
}

function follow(task) {
  if (stream) stream.close();
  render(task);
  stream = new EventSource(`/v1/events?task_id=${task.id}`);
  const onEvent = (e) => {
    const data = JSON.parse(e.data);
    if (e.type === "snapshot") { render(data); return; }
    if (e.type === "task.progress") {
      render({ ...current, status: "running", position: null, progress: data.data });
      return;
    }
    refresh(task.id).then(loadHistory);
    if (["task.succeeded", "task.failed", "task.cancelled"].includes(e.type)) stream.close();
  };
  for (const type of ["snapshot", "task.queued", "task.started", "task.progress", "task.retrying",
                      "task.succeeded", "task.failed", "task.cancelled", "task.cancel_requested"]) {
    stream.addEventListener(type, onEvent);
  }
}

function payloadFromForm() {
  const payload = {
    prompt: $("prompt").value,
    style: $("style").value,
    width: Number($("width").value),
    height: Number($("height").value),
    steps: Number($("steps").value),
  };
  if ($("seed").value !== "") payload.seed = Number($("seed").value);
  return payload;
}

$("generate").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("submit").disabled = true;
  try {
    const response = await fetch("/v1/tasks", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind: "image.generate", payload: payloadFromForm(), user: "console" }),
    });
    const body = await response.json();
    if (!response.ok) {
      const fields = (body.fields || []).map((f) => `${f.field}: ${f.message}`).join("; ");
      showError(fields || body.message || `error ${response.status}`);
      return;
    }
    follow(body);
    loadHistory();
  } catch (err) {
    showError(String(err));
  } finally {
    $("submit").disabled = false;
  }
});

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
    link.textContent = task.payload.prompt || task.kind;
    link.addEventListener("click", () => follow(task));
    item.append(link, ` · ${task.status}`);
    return item;
  }));
}

loadHistory();
