// Live task events over Server-Sent Events (/v1/events), no polling: views subscribe with a
// filter (task_id, batch_id or user) and get each frame's type and data. EventSource
// reconnects by itself and resumes after the last event id it saw; while it is down the
// "API unreachable" banner shows.

import { setReachable } from "./api.js";

export const EVENT_TYPES = [
  "snapshot", "lagged", "task.queued", "task.started", "task.progress", "task.preview",
  "task.retrying", "task.succeeded", "task.failed", "task.cancelled", "task.expired",
  "task.cancel_requested", "diagnosis.alert",
];

/** subscribe({task_id}, (type, data) => ...) -> close(). */
export function subscribe(filter, onEvent) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter || {})) {
    if (value) params.set(key, value);
  }
  const source = new EventSource(`/v1/events${params.toString() ? `?${params}` : ""}`);
  const handle = (event) => {
    let data = null;
    try {
      data = JSON.parse(event.data);
    } catch {
      data = event.data;
    }
    onEvent(event.type, data);
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, handle);
  source.addEventListener("open", () => setReachable(true));
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.OPEN) setReachable(false);
  });
  return () => source.close();
}
