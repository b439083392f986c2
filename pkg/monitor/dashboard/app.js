// berth monitor dashboard: polls the monitor's JSON API and draws each
// container's CPU and memory history on <canvas>. No dependencies.
"use strict";

const WINDOW_MS = 5 * 60 * 1000; // what the charts show
const LOG_LINES = 60;

const state = {
  interval: 1500,   // poll period (ms), set from /api/summary
  since: 0,         // newest sample time received (Unix ms)
  history: {},      // id -> [sample], oldest first
  containers: [],
  cards: {},        // id -> {root, fields..., cpu canvas, mem canvas}
  selected: null,   // id whose logs are shown
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtBytes(n) {
  if (!isFinite(n) || n <= 0) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function fmtRate(n) { return fmtBytes(n) + "/s"; }
function fmtPct(n) { return (isFinite(n) ? n : 0).toFixed(1) + "%"; }

function fmtPorts(ports) {
  if (!ports || ports.length === 0) return "no published ports";
  return ports.map((p) => (p.host_ip && p.host_ip !== "0.0.0.0" ? p.host_ip + ":" : "") +
    p.host_port + "→" + p.container_port + "/" + p.proto).join(", ");
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(url + ": " + msg);
  }
  return r.json();
}

// drawChart plots series (arrays of {t, v}) over the last WINDOW_MS on
// canvas and records how many points it drew in data-points.
function drawChart(canvas, series, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 90;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);

  // Time runs on the server's clock: the newest sample is "now". The
  // window grows from one minute to WINDOW_MS as history accumulates.
  const now = state.since || Date.now();
  let first = now;
  for (const s of series) {
    if (s.points.length > 0 && s.points[0].t < first) first = s.points[0].t;
  }
  const span = Math.min(WINDOW_MS, Math.max(60000, now - first));
  const t0 = now - span;
  let top = opts.min || 1;
  let points = 0;
  for (const s of series) {
    for (const p of s.points) {
      if (p.t >= t0 && p.v > top) top = p.v;
    }
  }
  if (opts.max && top < opts.max) top = Math.max(top, opts.max);
  top *= 1.1;

  const padL = 44, padB = 4, padT = 4;
  const pw = w - padL, ph = h - padB - padT;
  const x = (t) => padL + ((t - t0) / span) * pw;
  const y = (v) => padT + ph - (v / top) * ph;

  // Grid and axis labels.
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#687085";
  ctx.strokeStyle = "#eceef2";
  ctx.lineWidth = 1;
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 2; i++) {
    const v = (top / 1.1) * (i / 2);
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(padL, yy);
    ctx.lineTo(w, yy);
    ctx.stroke();
    ctx.fillText(opts.fmt(v), 2, Math.min(Math.max(yy, 6), h - 6));
  }

  for (const s of series) {
    const pts = s.points.filter((p) => p.t >= t0);
    if (pts.length === 0) continue;
    points += pts.length;
    ctx.beginPath();
    pts.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.t), y(p.v)) : ctx.lineTo(x(p.t), y(p.v))));
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    if (s.fill) {
      ctx.lineTo(x(pts[pts.length - 1].t), y(0));
      ctx.lineTo(x(pts[0].t), y(0));
      ctx.closePath();
      ctx.globalAlpha = 0.12;
      ctx.fillStyle = s.color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
    if (pts.length === 1) { // a lone point: draw a dot
      ctx.fillStyle = s.color;
      ctx.fillRect(x(pts[0].t) - 1.5, y(pts[0].v) - 1.5, 3, 3);
    }
  }
  canvas.dataset.points = String(points);
}

function figure(label) {
  const d = el("div");
  d.append(el("span", "", label));
  const v = el("span", "", "–");
  d.append(v);
  return [d, v];
}

function makeCard(c) {
  const root = el("article", "card");
  root.dataset.id = c.id;
  const head = el("div", "card-head");
  const name = el("h3", "name", c.name);
  const stateBadge = el("span", "badge");
  const healthBadge = el("span", "badge");
  head.append(name, stateBadge, healthBadge);
  const meta = el("div", "meta");
  const error = el("div", "read-error");
  error.hidden = true;
  const figs = el("div", "figures");
  const [fc, cpu] = figure("CPU");
  const [fm, mem] = figure("Memory");
  const [fr, rx] = figure("Net in");
  const [ft, tx] = figure("Net out");
  figs.append(fc, fm, fr, ft);
  const charts = el("div", "charts");
  const cpuBox = el("div");
  cpuBox.append(el("p", "chart-title", "CPU %"));
  const cpuCanvas = el("canvas", "chart cpu-chart");
  cpuCanvas.dataset.points = "0";
  cpuBox.append(cpuCanvas);
  const memBox = el("div");
  memBox.append(el("p", "chart-title", "Memory"));
  const memCanvas = el("canvas", "chart mem-chart");
  memCanvas.dataset.points = "0";
  memBox.append(memCanvas);
  const netBox = el("div");
  const netTitle = el("p", "chart-title", "Network ");
  netTitle.append(el("span", "rx", "in"), document.createTextNode(" / "), el("span", "tx", "out"));
  netBox.append(netTitle);
  const netCanvas = el("canvas", "chart net-chart");
  netCanvas.dataset.points = "0";
  netBox.append(netCanvas);
  charts.append(cpuBox, memBox, netBox);
  root.append(head, meta, error, figs, charts);
  root.addEventListener("click", () => select(c.id));
  return { root, name, stateBadge, healthBadge, meta, error, cpu, mem, rx, tx, cpuCanvas, memCanvas, netCanvas };
}

function updateCard(card, c) {
  card.name.textContent = c.name;
  card.name.title = c.id;
  card.stateBadge.textContent = c.state;
  card.stateBadge.className = "badge " + c.state;
  card.healthBadge.hidden = c.health === "none";
  card.healthBadge.textContent = c.health;
  card.healthBadge.className = "badge " + c.health;
  card.meta.textContent = c.image + " · " + c.id.slice(0, 12) + " · " + fmtPorts(c.ports);
  card.error.hidden = !c.error;
  card.error.textContent = c.error ? "cannot read: " + c.error : "";
  const live = c.state === "running" || c.state === "paused";
  card.root.classList.toggle("stopped", !live);
  card.root.classList.toggle("selected", state.selected === c.id);
  const l = live ? c.latest : null;
  card.cpu.textContent = l ? fmtPct(l.cpu) : "–";
  card.mem.textContent = l ? fmtBytes(l.mem) + (l.mem_limit ? " / " + fmtBytes(l.mem_limit) : "") : "–";
  card.rx.textContent = l ? fmtRate(l.rx_bps) : "–";
  card.tx.textContent = l ? fmtRate(l.tx_bps) : "–";

  const h = state.history[c.id] || [];
  drawChart(card.cpuCanvas, [
    { points: h.map((s) => ({ t: s.t, v: s.cpu })), color: "#2f6fde", fill: true },
  ], { min: 5, fmt: (v) => v.toFixed(0) + "%" });
  drawChart(card.memCanvas, [
    { points: h.map((s) => ({ t: s.t, v: s.mem })), color: "#1f9d6b", fill: true },
  ], { min: 1 << 20, fmt: (v) => fmtBytes(v) });
  drawChart(card.netCanvas, [
    { points: h.map((s) => ({ t: s.t, v: s.rx_bps })), color: "#8a5cd6" },
    { points: h.map((s) => ({ t: s.t, v: s.tx_bps })), color: "#d9822b" },
  ], { min: 1024, fmt: (v) => fmtBytes(v) });
}

function render() {
  const grid = $("containers");
  const seen = new Set();
  for (const c of state.containers) {
    seen.add(c.id);
    let card = state.cards[c.id];
    if (!card) {
      card = makeCard(c);
      state.cards[c.id] = card;
    }
    grid.append(card.root); // in state.containers' order
    updateCard(card, c);
  }
  for (const id of Object.keys(state.cards)) {
    if (!seen.has(id)) {
      state.cards[id].root.remove();
      delete state.cards[id];
      delete state.history[id];
    }
  }
  $("empty").hidden = state.containers.length > 0;
  if (state.selected && !seen.has(state.selected)) state.selected = null;
  if (!state.selected) {
    const first = state.containers.find((c) => c.state === "running") || state.containers[0];
    if (first) state.selected = first.id;
  }
}

function renderSummary(s) {
  $("sum-running").textContent = s.running + " / " + s.containers;
  $("sum-cpu").textContent = fmtPct(s.cpu);
  $("sum-mem").textContent = fmtBytes(s.mem);
  $("sum-rx").textContent = fmtRate(s.rx_bps);
  $("sum-tx").textContent = fmtRate(s.tx_bps);
}

function select(id) {
  state.selected = id;
  for (const [cid, card] of Object.entries(state.cards)) {
    card.root.classList.toggle("selected", cid === id);
  }
  pollLogs();
}

async function pollLogs() {
  const id = state.selected;
  const body = $("logs-body");
  if (!id) return;
  const c = state.containers.find((x) => x.id === id);
  $("logs-name").textContent = c ? "— " + c.name : "";
  try {
    const r = await getJSON("api/containers/" + encodeURIComponent(id) + "/logs?tail=" + LOG_LINES);
    if (state.selected !== id) return;
    const atBottom = body.scrollTop + body.clientHeight >= body.scrollHeight - 4;
    body.textContent = "";
    if (r.lines.length === 0) body.textContent = "(no output)";
    for (const l of r.lines) {
      const line = el("div", l.stream === "stderr" ? "stderr" : "");
      line.append(el("span", "ts", l.time.slice(11, 19) + " "), document.createTextNode(l.line));
      body.append(line);
    }
    if (atBottom) body.scrollTop = body.scrollHeight;
  } catch (e) {
    body.textContent = String(e.message || e);
  }
}

function mergeHistory(h) {
  for (const [id, samples] of Object.entries(h)) {
    const arr = state.history[id] || (state.history[id] = []);
    for (const s of samples) {
      if (arr.length === 0 || s.t > arr[arr.length - 1].t) arr.push(s);
      if (s.t > state.since) state.since = s.t;
    }
    const cut = state.since - WINDOW_MS - 60000;
    let drop = 0;
    while (drop < arr.length && arr[drop].t < cut) drop++;
    if (drop) arr.splice(0, drop);
  }
}

async function poll() {
  const status = $("status");
  try {
    const [containers, summary, history] = await Promise.all([
      getJSON("api/containers"),
      getJSON("api/summary"),
      // A little overlap: a round's samples are added one container
      // at a time, so one may land just before the newest seen;
      // mergeHistory drops what it already has.
      getJSON("api/history?since=" + Math.max(0, state.since - 2 * state.interval)),
    ]);
    // Running containers first, each group newest first (the API's order).
    const live = (c) => (c.state === "running" || c.state === "paused" || c.state === "restarting" ? 0 : 1);
    state.containers = containers.map((c, i) => [c, i])
      .sort((a, b) => live(a[0]) - live(b[0]) || a[1] - b[1])
      .map((x) => x[0]);
    state.interval = Math.min(Math.max(summary.interval_ms || 1500, 1000), 2000);
    mergeHistory(history);
    render();
    renderSummary(summary);
    await pollLogs();
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.classList.remove("error");
  } catch (e) {
    status.textContent = "monitor unreachable: " + (e.message || e);
    status.classList.add("error");
  }
  setTimeout(poll, state.interval);
}

window.addEventListener("resize", render);
poll();
