// #/operate: the operator's view of the cluster: queues, workers, shared limits, and charts
// of the last hour (throughput, queue depth, wait and run time) drawn with the vendored uPlot.
//
// Everything here is an aggregate, refreshed every REFRESH_MS rather than on SSE: worker
// liveness (a missed heartbeat) and limit recovery happen without any task event, so a timer
// is needed anyway, and an unfiltered event stream would cost this page a frame (previews
// included) per task event at full load where five small requests per refresh do not. The
// refresh waits for the previous one and pauses while the tab is hidden.

import { api } from "../api.js";
import { ago, badge, clock, duration, emptyState, errorBox, h, useStylesheet } from "../dom.js";

const REFRESH_MS = 5000;
const HOUR_S = 3600;
const MIN_SPAN_S = 300; // a young history is drawn over five minutes, not squeezed to a dot
const WORKER_ORDER = ["online", "degraded", "offline", "stopped"];

let assets = null;

/** Load uPlot and this view's styles once per page. */
function loadAssets() {
  assets ??= new Promise((resolve, reject) => {
    useStylesheet("/static/vendor/uplot/uPlot.min.css");
    useStylesheet("/static/css/operate.css");
    const script = h("script", { src: "/static/vendor/uplot/uPlot.iife.min.js" });
    script.addEventListener("load", () => resolve(window.uPlot));
    script.addEventListener("error", () => {
      assets = null;
      reject(new Error("the chart library could not be loaded"));
    });
    document.head.append(script);
  });
  return assets;
}

export async function mount(root) {
  const uPlot = await loadAssets();
  const summary = h("p.muted.summary", { role: "status" }, "Loading…");
  const slots = {
    charts: h("div.charts.grid"),
    queues: h("div", {}, "Loading…"),
    workers: h("div", {}, "Loading…"),
    limits: h("div", {}, "Loading…"),
  };
  const section = (id, title, body, hint) =>
    h(`section.card#${id}`, { "aria-labelledby": `${id}-title` },
      h(`h3#${id}-title`, {}, title), hint ? h("p.muted.hint", {}, hint) : null,
      // Refreshed every few seconds: not read out each time (main is a live region).
      h("div", { "aria-live": "off" }, body));
  root.append(
    h("h2", {}, "Operate"),
    summary,
    section("charts", "Last hour", slots.charts,
      "Kept by this API process since it started."),
    section("queues", "Queues", slots.queues),
    section("workers", "Workers", slots.workers),
    section("limits", "Shared limits", slots.limits,
      "Concurrency of each upstream resource, shared by every worker (AIMD: cut on a limit " +
      "error, grown back while it is quiet)."),
  );

  const charts = new Charts(uPlot, slots.charts);
  let timer = null;
  let stopped = false;

  async function refresh() {
    if (!document.hidden) {
      const [queues, broker, workers, limits, history] = await Promise.allSettled([
        api("/v1/queues"), api("/v1/broker"), api("/v1/workers"), api("/v1/limits"),
        api("/v1/stats/history", { query: { minutes: 60 } }),
      ]);
      if (stopped) return;
      show(slots.queues, queues, (q) => queueTable(q, broker));
      show(slots.workers, workers, workerTable);
      show(slots.limits, limits, limitList);
      if (history.status === "fulfilled") charts.update(history.value);
      else if (history.reason.status !== 0) charts.fail(history.reason.message);
      if (workers.status === "fulfilled") setText(summary, workerSummary(workers.value));
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  const onVisible = () => {
    if (!document.hidden) { clearTimeout(timer); refresh(); }
  };
  document.addEventListener("visibilitychange", onVisible);
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
    charts.destroy();
  };
}

/** Put a section's new content in place; an unreachable API keeps the last one (the banner
 * says it may be out of date), any other failure says what went wrong. */
function show(slot, result, render) {
  if (result.status === "fulfilled") slot.replaceChildren(render(result.value));
  else if (result.reason.status !== 0) slot.replaceChildren(errorBox(result.reason.message));
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function workerSummary(workers) {
  const count = (status) => workers.filter((w) => w.status === status).length;
  const parts = [`${count("online")} online`];
  for (const status of ["degraded", "offline"]) {
    if (count(status)) parts.push(`${count(status)} ${status}`);
  }
  return `Workers: ${parts.join(", ")}. Refreshed every ${REFRESH_MS / 1000} s.`;
}

/** A table whose rows stack into labelled blocks at phone width (operate.css). */
function table(headings, rows) {
  return h("div.table-wrap", {},
    h("table.stack", {},
      h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) =>
        h("td", { dataset: { label: headings[i] } }, cell)))))));
}

const perMinute = (perSecond) => (perSecond == null ? "–" : `${(perSecond * 60).toFixed(1)}/min`);

function queueTable(queues, broker) {
  if (!queues.length) return emptyState("No queues yet: they appear with the first kind or task.");
  const rates = new Map(
    broker.status === "fulfilled" ? broker.value.queues.map((q) => [q.name, q]) : []);
  return table(
    ["Queue", "Waiting", "Running", "In broker", "Submitted", "Finished", "Succeeded", "Failed"],
    queues.map((q) => [
      h("strong", {}, q.name),
      String(q.counts.queued ?? 0),
      String(q.counts.running ?? 0),
      String(q.depth),
      perMinute(rates.get(q.name)?.submitted_per_s),
      perMinute(rates.get(q.name)?.finished_per_s),
      String(q.counts.succeeded ?? 0),
      String(q.counts.failed ?? 0),
    ]));
}

function workerTable(workers) {
  if (!workers.length) {
    return emptyState("No worker has registered. Start one with `genqueue worker`, or " +
      "`genqueue up` for an API and workers on this machine.");
  }
  const rank = (w) => WORKER_ORDER.indexOf(w.status);
  const sorted = [...workers].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  return table(
    ["Worker", "Status", "Tasks", "Warm models", "Heartbeat", "Done"],
    sorted.map((w) => [
      h("div", {}, h("strong", {}, w.name), h("div.muted", {}, `${w.host} · pid ${w.pid}`)),
      h("div", {}, badge(w.status), w.reason ? h("div.reason", {}, w.reason) : null),
      h("div", {}, `${w.running.length} of ${w.concurrency}`,
        h("ul.running", {}, w.running.map((id) => h("li", {}, taskLink(id))))),
      w.models.length ? w.models.join(", ") : h("span.muted", {}, "none"),
      `${duration(ago(w.last_seen))} ago`,
      `${w.succeeded} ok, ${w.failed} failed`,
    ]));
}

function taskLink(id) {
  return h("a", { href: `#/tasks/${id}`, title: `task ${id}` }, id.slice(0, 8));
}

function limitList(limits) {
  if (!limits.length) {
    return emptyState("No shared limits: a resource appears here once a worker serving a " +
      "kind that declares one has started.");
  }
  return h("div.limits", {}, limits.map((l) => {
    const blocked = l.blocked_until && new Date(l.blocked_until) > new Date();
    return h("article.limit", { "aria-label": `limit of ${l.resource}` },
      h("h4", {}, l.resource),
      h("dl.figures", {},
        fact("Permits", l.permits),
        fact("Limit", `${+l.limit.toFixed(2)} (${l.min} to ${l.max})`),
        fact("In flight", l.in_flight), fact("Waiting", l.waiting),
        fact("Cuts", `${l.cuts} (${l.throttles} limit errors)`),
        fact("Last cut", l.last_cut_at ? clock(l.last_cut_at) : "never"),
        blocked ? fact("Blocked until", clock(l.blocked_until)) : null),
      h("details", {},
        h("summary", {}, `Recent changes (${l.history.length})`),
        h("ol.changes", { reversed: true }, [...l.history].reverse().map((c) =>
          h("li", {}, `${clock(c.at)}: ${c.reason} → ${+c.limit.toFixed(2)}`)))));
  }));
}

function fact(term, value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, String(value)));
}

const sum = (values) => values.reduce((a, b) => a + b, 0);
const seconds = (value) => (value == null ? "–" : value < 1 ? `${Math.round(value * 1000)} ms`
  : value < 10 ? `${value.toFixed(1)} s` : duration(value));

const CHART_HEIGHT = 160;
// Points always: an interval between two empty ones has no line to be seen by.
const POINTS = { show: true, size: 5 };
const total = (queued) => (queued ? sum(Object.values(queued)) : null);
const latest = (points, key) => seconds(points.findLast((p) => p[key] != null)?.[key]);

/** What each chart draws from the history's points, and says of them in words. */
function chartSpecs(bucket) {
  return [
    {
      id: "throughput",
      title: `Tasks finished per ${bucket} s`,
      series: [
        { label: "succeeded", stroke: "#1f7a3a", fill: "rgba(31,122,58,.12)" },
        { label: "failed", stroke: "#b42318" },
      ],
      data: (p) => [p.map((x) => x.succeeded), p.map((x) => x.failed)],
      caption: (p) => `${sum(p.map((x) => x.succeeded))} succeeded, ` +
        `${sum(p.map((x) => x.failed))} failed, ` +
        `${sum(p.map((x) => x.cancelled))} cancelled or expired.`,
    },
    {
      id: "depth",
      title: "Queue depth",
      series: [{ label: "waiting", stroke: "#3451c6" }, { label: "running", stroke: "#9a4b00" }],
      data: (p) => [p.map((x) => total(x.queued)), p.map((x) => x.running)],
      caption: (p) => {
        const last = p.findLast((x) => x.queued);
        return last
          ? `At the last sample: ${total(last.queued)} waiting, ${last.running} running.`
          : "Not sampled yet.";
      },
    },
    {
      id: "wait",
      title: "Wait time, median",
      durations: true,
      series: [{ label: "queued to started", stroke: "#3451c6" }],
      data: (p) => [p.map((x) => x.wait_p50_s)],
      caption: (p) => `Latest: ${latest(p, "wait_p50_s")}.`,
    },
    {
      id: "run",
      title: "Run time, median",
      durations: true,
      series: [{ label: "started to finished", stroke: "#5b3fa8" }],
      data: (p) => [p.map((x) => x.run_p50_s)],
      caption: (p) => `Latest: ${latest(p, "run_p50_s")}.`,
    },
  ];
}

/** The four charts: built with the first history, then given new data each refresh. */
class Charts {
  constructor(uPlot, slot) {
    this.uPlot = uPlot;
    this.slot = slot;
    this.plots = [];
    this.range = [0, 1];
    // Resizing inside the observer's callback could resize what it observes again.
    this.resize = new ResizeObserver(() => requestAnimationFrame(() => this.fit()));
  }

  update(history) {
    const points = history.points;
    const now = Date.now() / 1000;
    const age = now - Date.parse(history.started_at) / 1000;
    this.range = [now - Math.min(HOUR_S, Math.max(MIN_SPAN_S, age)), now];
    if (!this.plots.length) this.build(history.bucket_s);
    const x = points.map((p) => p.at);
    for (const { spec, plot, caption, area } of this.plots) {
      const text = spec.caption(points);
      plot.setData([x, ...spec.data(points)]);
      setText(caption, text);
      area.setAttribute("aria-label", `${spec.title}: ${text}`);
    }
  }

  build(bucket) {
    this.slot.replaceChildren();
    for (const spec of chartSpecs(bucket)) {
      const caption = h("figcaption.muted");
      const area = h("div.chart", { role: "img", "aria-label": spec.title });
      this.slot.append(
        h(`figure.chart-card#chart-${spec.id}`, {}, h("h4", {}, spec.title), area, caption));
      const format = spec.durations ? seconds : String;
      const options = {
        width: Math.max(200, area.clientWidth),
        height: CHART_HEIGHT,
        scales: { x: { time: true, range: () => this.range } },
        axes: [{}, { size: 64, values: (_, ticks) => ticks.map((t) => format(t)) }],
        series: [{}, ...spec.series.map((s) => ({ ...s, width: 2, points: POINTS }))],
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
      };
      const plot = new this.uPlot(options, [[], ...spec.series.map(() => [])], area);
      this.plots.push({ spec, plot, caption, area });
      this.resize.observe(area);
    }
  }

  /** Say what went wrong in place of the charts; the next history builds them again. */
  fail(message) {
    this.destroy();
    this.slot.replaceChildren(errorBox(message));
  }

  fit() {
    for (const { plot, area } of this.plots) {
      const width = Math.max(200, area.clientWidth);
      if (plot.width !== width) plot.setSize({ width, height: CHART_HEIGHT });
    }
  }

  destroy() {
    this.resize.disconnect();
    for (const { plot } of this.plots) plot.destroy();
    this.plots = [];
  }
}
