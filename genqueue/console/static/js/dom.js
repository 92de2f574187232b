// Small DOM helpers shared by every view: build elements, format times and sizes, show empty
// states. No framework: views build their own nodes with h() and replace them when data moves.

/** h("tag.class#id", {attr: value, onclick: fn}, ...children): an element. */
export function h(spec, attrs = {}, ...children) {
  const [tagAndClasses, id] = spec.split("#");
  const [tag, ...classes] = tagAndClasses.split(".");
  const node = document.createElement(tag || "div");
  if (id) node.id = id;
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key in node && typeof value !== "string") {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}

/** A friendly "nothing here yet" block with an optional action link. */
export function emptyState(text, action = null) {
  return h("div.empty", { role: "status" }, h("p", {}, text), action);
}

/** An error block naming what went wrong. */
export function errorBox(message) {
  return h("div.error-box", { role: "alert" }, message);
}

export const FINAL = ["succeeded", "failed", "cancelled", "expired"];

export function isFinal(status) {
  return FINAL.includes(status);
}

/** "3 s", "2 min 5 s", "1 h 4 min" from seconds. */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
}

/** A local clock time for an ISO timestamp ("14:03:21"), or "–". */
export function clock(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "–" : date.toLocaleTimeString();
}

/** Seconds from an ISO timestamp to now (positive: in the past). */
export function ago(iso) {
  return iso ? (Date.now() - new Date(iso).getTime()) / 1000 : null;
}

export function bytes(n) {
  if (n == null) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A status badge: text plus a class per status, readable without colour. */
export function badge(status) {
  return h(`span.badge.status-${status}`, {}, status);
}

/** Load a view's stylesheet once (views bring their own CSS next to app.css). */
export function useStylesheet(href) {
  if (!document.querySelector(`link[rel="stylesheet"][href="${href}"]`)) {
    document.head.append(h("link", { rel: "stylesheet", href }));
  }
}

/**
 * Show (or clear, with an empty message) the problem of a form field: a `.field` holding a
 * control, an optional `.hint` and a `.problem` (both with ids). The control is marked
 * invalid and described by the problem, so screen readers say it with the field.
 */
export function setFieldProblem(field, message) {
  const problem = field.querySelector(".problem");
  const control = field.querySelector("input, select, textarea");
  problem.textContent = message || "";
  problem.hidden = !message;
  const hint = field.querySelector(".hint");
  const described = [hint && hint.id, message && problem.id].filter(Boolean).join(" ");
  if (described) control.setAttribute("aria-describedby", described);
  else control.removeAttribute("aria-describedby");
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}
