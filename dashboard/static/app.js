// The live page: one EventSource ("snapshot" then "delta" events), state kept in plain
// maps, and a render at most RENDER_HZ times a second whatever the event rate, so 1,000
// devices updating every second cost a few renders, not thousands of DOM writes.
"use strict";

const RENDER_HZ = 4;
const ROW_H = 34;

const state = {
  meta: { max_points: 2000, spark: 60 },
  devices: new Map(), // id -> summary + spark (last actual values)
  alerts: new Map(), // "<device>/<type>" -> open alert
  selected: null,
  detail: null, // the selected device's points and episodes
  detailChanged: false,
  connected: false,
  range: 0, // ms of the device chart's x axis before the last forecast; 0: everything kept
};

// ---- rendering, throttled ----

let timer = null;
let lastRender = 0;

function schedule() {
  if (timer !== null) return;
  const wait = Math.max(0, 1000 / RENDER_HZ - (performance.now() - lastRender));
  timer = setTimeout(() => {
    timer = null;
    requestAnimationFrame(render);
  }, wait);
}

function render() {
  lastRender = performance.now();
  renderHeader();
  renderAlerts();
  renderFleet();
  renderDevice();
}

const $ = (id) => document.getElementById(id);
const fmt = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const clock = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text; // never innerHTML: ids come from devices
  return node;
}

function renderHeader() {
  $("n-devices").textContent = state.devices.size;
  $("n-alerts").textContent = state.alerts.size;
  const status = $("status");
  status.className = state.connected ? "up" : "down";
  status.textContent = state.connected ? "live" : "reconnecting…";
}

function renderAlerts() {
  const box = $("alerts");
  const open = [...state.alerts.values()].sort((a, b) => b.start - a.start).slice(0, 40);
  box.replaceChildren(
    ...open.map((a) => {
      const chip = el("span", "alert", `${a.device} · ${a.type} since ${clock(a.start)}`);
      chip.dataset.device = a.device;
      chip.dataset.type = a.type;
      chip.onclick = () => select(a.device);
      return chip;
    }),
  );
}

function sortedDevices() {
  const filter = $("filter").value.trim().toLowerCase();
  const rows = [];
  for (const d of state.devices.values()) {
    if (!filter || d.id.toLowerCase().includes(filter)) rows.push(d);
  }
  // most open alerts first, then the largest recent error, then by id
  rows.sort(
    (a, b) =>
      b.open.length - a.open.length || (b.err ?? -1) - (a.err ?? -1) || (a.id < b.id ? -1 : 1),
  );
  return rows;
}

const rowPool = [];

function renderFleet() {
  const box = $("fleet");
  const rows = sortedDevices();
  $("fleet-spacer").style.height = `${rows.length * ROW_H}px`;
  $("shown").textContent = `${rows.length} of ${state.devices.size}`;
  // only the rows in view exist in the DOM (virtual list)
  const first = Math.max(0, Math.floor(box.scrollTop / ROW_H) - 2);
  const count = Math.min(rows.length - first, Math.ceil(box.clientHeight / ROW_H) + 4);
  while (rowPool.length < count) {
    const row = el("div", "row");
    row.append(el("span", "dev"), el("span"), el("span", "num"), el("span", "num"), el("span", "num"));
    const canvas = el("canvas");
    canvas.width = 120;
    canvas.height = 26;
    row.append(canvas);
    row.onclick = () => select(row.dataset.device);
    box.append(row);
    rowPool.push(row);
  }
  rowPool.forEach((row, i) => {
    const d = rows[first + i];
    if (i >= count || !d) {
      row.hidden = true;
      return;
    }
    row.hidden = false;
    row.style.top = `${(first + i) * ROW_H}px`;
    row.dataset.device = d.id;
    row.classList.toggle("alerting", d.open.length > 0);
    row.classList.toggle("selected", d.id === state.selected);
    const [name, badges, last, fc, err, canvas] = row.children;
    name.textContent = d.id;
    name.title = d.id;
    badges.replaceChildren(...d.open.map((t) => el("span", "badge", t)));
    last.textContent = fmt(d.last);
    fc.textContent = fmt(d.fc);
    err.textContent = fmt(d.err);
    sparkline(canvas, d.spark);
  });
}

function sparkline(canvas, values) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!values || values.length < 2) return;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi - lo || 1;
  const step = canvas.width / (state.meta.spark - 1);
  const x0 = canvas.width - (values.length - 1) * step;
  ctx.beginPath();
  values.forEach((v, i) => {
    const y = canvas.height - 2 - ((v - lo) / span) * (canvas.height - 4);
    if (i === 0) ctx.moveTo(x0, y);
    else ctx.lineTo(x0 + i * step, y);
  });
  ctx.strokeStyle = "#2563eb";
  ctx.lineWidth = 1.2;
  ctx.stroke();
}

// ---- the device view ----

let chart = null;

function chartData(points) {
  // actual at each window's end, forecast at its target time: one x axis for both
  const byTime = new Map();
  for (const [t, actual, target, forecast] of points) {
    (byTime.get(t) || byTime.set(t, [null, null]).get(t))[0] = actual;
    (byTime.get(target) || byTime.set(target, [null, null]).get(target))[1] = forecast;
  }
  const xs = [...byTime.keys()].sort((a, b) => a - b);
  return [xs.map((x) => x / 1000), xs.map((x) => byTime.get(x)[0]), xs.map((x) => byTime.get(x)[1])];
}

function shade(u) {
  const d = state.detail;
  if (!d || !d.points.length) return;
  const { ctx } = u;
  const { top, height, left, width } = u.bbox;
  const xpos = (ms) => Math.min(left + width, Math.max(left, u.valToPos(ms / 1000, "x", true)));
  const lastPoint = d.points[d.points.length - 1];
  ctx.save();
  ctx.fillStyle = "rgba(220, 38, 38, .16)";
  for (const [start, end] of d.episodes) {
    const x0 = xpos(start);
    const x1 = xpos(end ?? lastPoint[2]);
    if (x1 > x0) ctx.fillRect(x0, top, x1 - x0, height);
  }
  // the horizon: from the last actual value to the time of the last forecast
  const now = xpos(lastPoint[0]);
  ctx.fillStyle = "rgba(217, 119, 6, .14)";
  ctx.fillRect(now, top, xpos(lastPoint[2]) - now, height);
  ctx.strokeStyle = "rgba(17, 24, 39, .5)";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(now, top);
  ctx.lineTo(now, top + height);
  ctx.stroke();
  ctx.restore();
}

function makeChart(d) {
  const box = $("chart");
  if (chart) chart.destroy();
  chart = new uPlot(
    {
      width: Math.max(300, box.clientWidth),
      height: 340,
      scales: {
        x: { time: true, range: (u, lo, hi) => [state.range ? Math.max(lo, hi - state.range / 1000) : lo, hi] },
      },
      series: [
        {},
        { label: "actual", stroke: "#2563eb", width: 1.5, spanGaps: true, points: { show: false } },
        { label: "forecast", stroke: "#d97706", width: 1.5, dash: [6, 3], spanGaps: true, points: { show: false } },
      ],
      axes: [{}, { label: d.metric || "value" }],
      hooks: { drawClear: [shade] },
    },
    chartData(d.points),
    box,
  );
}

function fact(dl, name, value) {
  dl.append(el("dt", "", name), el("dd", "", value));
}

function renderDevice() {
  const d = state.detail;
  $("device-empty").hidden = !!d;
  $("device-view").hidden = !d;
  if (!d) return;
  const summary = state.devices.get(d.id) || d;
  $("device-title").textContent = d.id;
  const facts = $("device-facts");
  facts.replaceChildren();
  fact(facts, "model version", summary.mv || "–");
  fact(facts, "live skill vs persistence", summary.skill === null ? "–" : fmt(summary.skill));
  fact(facts, "recent abs. error", fmt(summary.err));
  fact(facts, "horizon", summary.h ? `${summary.h / 1000} s` : "–");
  fact(facts, "last value", `${fmt(summary.last)} at ${clock(summary.t)}`);
  fact(facts, "forecast", `${fmt(summary.fc)} for ${clock(summary.tt)}`);
  fact(facts, "open alerts", summary.open && summary.open.length ? summary.open.join(", ") : "none");
  fact(facts, "points", String(d.points.length));
  if (state.detailChanged) {
    state.detailChanged = false;
    if (!chart || chart.__device !== d.id) {
      makeChart(d);
      chart.__device = d.id;
    } else {
      chart.setData(chartData(d.points));
    }
    const box = $("chart");
    box.dataset.device = d.id;
    box.dataset.points = String(d.points.length);
  }
  $("episodes").replaceChildren(
    ...[...d.episodes]
      .reverse()
      .slice(0, 10)
      .map(([start, end, type]) => el("li", "", `${type}: ${clock(start)} – ${end ? clock(end) : "open"}`)),
  );
}

async function loadDevice(id) {
  const response = await fetch(`api/devices/${encodeURIComponent(id)}`);
  if (state.selected !== id) return;
  state.detail = response.ok ? await response.json() : null;
  state.detailChanged = true;
  schedule();
}

function select(id) {
  if (id) location.hash = `#/device/${encodeURIComponent(id)}`;
}

function onHash() {
  const m = location.hash.match(/^#\/device\/(.+)$/);
  state.selected = m ? decodeURIComponent(m[1]) : null;
  state.detail = null;
  if (state.selected) loadDevice(state.selected);
  schedule();
}

// ---- the event stream ----

function applySnapshot(s) {
  state.meta = s.meta;
  state.devices = new Map(s.devices.map((d) => [d.id, d]));
  state.alerts = new Map(s.alerts.map((a) => [`${a.device}/${a.type}`, a]));
  if (state.selected) loadDevice(state.selected); // the stream may have been down a while
  schedule();
}

function applyDelta(delta) {
  for (const summary of delta.devices) {
    const known = state.devices.get(summary.id);
    summary.spark = known ? known.spark : [];
    state.devices.set(summary.id, summary);
  }
  for (const [id, points] of Object.entries(delta.points)) {
    const d = state.devices.get(id);
    if (d) {
      for (const p of points) d.spark.push(p[1]);
      if (d.spark.length > state.meta.spark) d.spark.splice(0, d.spark.length - state.meta.spark);
    }
    const detail = state.detail;
    if (detail && detail.id === id) {
      const lastT = detail.points.length ? detail.points[detail.points.length - 1][0] : -Infinity;
      for (const p of points) if (p[0] > lastT) detail.points.push(p); // a snapshot may overlap
      const extra = detail.points.length - state.meta.max_points;
      if (extra > 0) detail.points.splice(0, extra);
      state.detailChanged = true;
    }
  }
  for (const a of delta.alerts) {
    const key = `${a.device}/${a.type}`;
    if (a.event === "open") state.alerts.set(key, a);
    else if (state.alerts.get(key)?.id === a.id) state.alerts.delete(key);
    const detail = state.detail;
    if (detail && detail.id === a.device) {
      const ep = detail.episodes.find((e) => e[3] === a.id);
      if (ep) ep[1] = a.event === "cleared" ? a.ts : ep[1];
      else detail.episodes.push([a.start, a.event === "cleared" ? a.ts : null, a.type, a.id]);
      state.detailChanged = true;
    }
  }
  schedule();
}

function connect() {
  const source = new EventSource("events");
  source.addEventListener("snapshot", (e) => applySnapshot(JSON.parse(e.data)));
  source.addEventListener("delta", (e) => applyDelta(JSON.parse(e.data)));
  source.onopen = () => {
    state.connected = true;
    schedule();
  };
  source.onerror = () => {
    state.connected = false; // EventSource reconnects by itself
    schedule();
  };
}

for (const button of document.querySelectorAll("#ranges button")) {
  button.onclick = () => {
    state.range = Number(button.dataset.range);
    for (const b of document.querySelectorAll("#ranges button")) b.classList.toggle("on", b === button);
    state.detailChanged = true;
    schedule();
  };
}
window.addEventListener("hashchange", onHash);
window.addEventListener("resize", () => {
  if (chart) chart.setSize({ width: Math.max(300, $("chart").clientWidth), height: 340 });
  schedule();
});
$("fleet").addEventListener("scroll", schedule, { passive: true });
$("filter").addEventListener("input", schedule);
onHash();
connect();
