// The SVG views: the agents filled by framework, the dominant-share chart and the offer
// chart. Colours come from style.css (classes u0.., o0.., s0..), so the theme switch needs
// no redraw.

import { BUCKET_MS, frameworkName, model, shortAgent } from "./data.js";
import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
export const COLOURS = 6; // style.css defines fw0..fw5

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function colourOf(frameworkId) {
  const fw = model.frameworks.get(frameworkId);
  return fw ? fw.colour % COLOURS : 0;
}

// The hatching that marks offered (not yet used) resources, one pattern per colour, in an
// SVG of its own that the other SVGs refer to.
export function installPatterns() {
  const svg = el("svg", { width: 0, height: 0, "aria-hidden": "true", class: "defs" });
  const defs = el("defs");
  for (let i = 0; i < COLOURS; i++) {
    const pattern = el("pattern", {
      id: `hatch-${i}`, width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)",
    });
    pattern.append(el("rect", { width: 6, height: 6, class: `o${i}` }));
    pattern.append(el("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: `h${i}` }));
    defs.append(pattern);
  }
  svg.append(defs);
  document.body.append(svg);
}

function format(value, resource) {
  if (resource === "mem") {
    return value >= 1024 ? `${(value / 1024).toFixed(value % 1024 ? 1 : 0)} GB` : `${Math.round(value)} MB`;
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

const BOX_W = 300;
const BAR_X = 12;
const BAR_W = BOX_W - 2 * BAR_X;

function bar(svg, y, resource, agent) {
  const total = agent.total[resource] || 0;
  const byFw = model.allocation.get(agent.id) || new Map();
  let x = BAR_X;
  let used = 0;
  const parts = [...byFw.entries()].sort((a, b) => colourOf(a[0]) - colourOf(b[0]));
  for (const [fwId, alloc] of parts) {
    const c = colourOf(fwId);
    for (const [kind, amount] of [["used", alloc.used[resource]], ["offered", alloc.offered[resource]]]) {
      if (!amount || !total) continue;
      const w = Math.min(BAR_W - (x - BAR_X), (amount / total) * BAR_W);
      const rect = el("rect", {
        x, y, width: Math.max(w, 0), height: 22, rx: 3,
        class: kind === "used" ? `u${c}` : `o${c} offered`,
      });
      if (kind === "offered") rect.setAttribute("fill", `url(#hatch-${c})`);
      const name = frameworkName(fwId);
      rect.append(el("title", {}, `${name}: ${format(amount, resource)} ${kind === "used" ? "" : "(offer)"}`));
      svg.append(rect);
      x += w;
      used += amount;
    }
  }
  if (x < BAR_X + BAR_W - 0.5) {
    svg.append(el("rect", { x, y, width: BAR_X + BAR_W - x, height: 22, rx: 3, class: "free" }));
  }
  const label = resource === "cpus" ? t("cpus") : t("mem");
  svg.append(el("text", { x: BAR_X, y: y - 5, class: "small" },
    `${label}: ${format(used, resource)} / ${format(total, resource)}`));
}

export function drawAgents(container) {
  const ids = [...model.agents.keys()].sort();
  const wanted = new Set(ids);
  for (const node of [...container.querySelectorAll("[data-agent-id]")]) {
    if (!wanted.has(node.dataset.agentId)) node.remove();
  }
  container.querySelector(".empty")?.remove();
  if (!ids.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = t("noAgents");
    container.append(p);
    return;
  }
  for (const id of ids) {
    const agent = model.agents.get(id);
    let box = container.querySelector(`[data-agent-id="${CSS.escape(id)}"]`);
    if (!box) {
      box = document.createElement("div");
      box.className = "agent";
      box.dataset.agentId = id;
      container.append(box);
    }
    box.dataset.status = agent.status;
    const svg = el("svg", { viewBox: `0 0 ${BOX_W} 128`, role: "img", class: "agent-svg" });
    svg.append(el("rect", { x: 1, y: 1, width: BOX_W - 2, height: 126, rx: 8, class: "node" }));
    const title = el("text", { x: BAR_X, y: 22, class: "bold" }, shortAgent(id));
    svg.append(title);
    svg.append(el("text", { x: BAR_X + 40, y: 22, class: "muted small mono" },
      `${agent.hostname}:${agent.port}`));
    if (agent.status === "gone") {
      svg.append(el("text", { x: BOX_W - BAR_X, y: 22, class: "gone-label", "text-anchor": "end" },
        t("gone")));
    }
    bar(svg, 50, "cpus", agent);
    bar(svg, 96, "mem", agent);
    svg.setAttribute("aria-label", `${shortAgent(id)} ${agent.hostname}`);
    box.replaceChildren(svg);
  }
}

// -- the dominant-share chart --------------------------------------------------------------

// The charts are drawn as wide as their card, so that their text keeps its size on a phone.
const CHART = { w: 600, h: 230, left: 44, right: 110, top: 12, bottom: 28 };

function fit(container) {
  CHART.w = Math.max(300, Math.round(container.clientWidth || 600));
  CHART.right = CHART.w < 480 ? 104 : 110;
}

// The time axis spans what the page has seen, from one minute up to `longest`: a page opened
// a minute ago is not squeezed against the right edge.
function span(firstTime, longest) {
  const seen = firstTime === undefined ? 0 : Date.now() - firstTime;
  return Math.min(longest, Math.max(60000, Math.ceil(seen / 60000) * 60000));
}
const WINDOW_MS = 5 * 60 * 1000;

function axes(svg, maxLabel, unit) {
  const { w, h, left, right, top, bottom } = CHART;
  const plotH = h - top - bottom;
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const y = top + plotH * (1 - f);
    svg.append(el("line", { x1: left, x2: w - right, y1: y, y2: y, class: f ? "grid" : "axis" }));
    if (f === 0 || f === 0.5 || f === 1) {
      svg.append(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "small muted" },
        unit === "%" ? `${Math.round(f * maxLabel * 100)}%` : String(Math.round(f * maxLabel))));
    }
  }
}

function timeLabels(svg, windowMs) {
  const { w, h, left, right } = CHART;
  svg.append(el("text", { x: left, y: h - 8, class: "small muted" }, t("minutesAgo", Math.round(windowMs / 60000))));
  svg.append(el("text", { x: w - right, y: h - 8, class: "small muted", "text-anchor": "end" }, t("now")));
}

export function drawShares(container) {
  fit(container);
  const { w, h, left, right, top, bottom } = CHART;
  const plotW = w - left - right;
  const plotH = h - top - bottom;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": t("shares") });
  axes(svg, 1, "%");
  const windowMs = span(model.shareHistory[0]?.t, WINDOW_MS);
  timeLabels(svg, windowMs);
  const now = Date.now();
  const x = (time) => left + plotW * (1 - (now - time) / windowMs);
  const y = (share) => top + plotH * (1 - Math.min(share, 1));
  const labels = [];
  for (const fw of model.frameworks.values()) {
    let points = [];
    const flush = () => {
      if (points.length) {
        svg.append(el("polyline", { points: points.join(" "), class: `line s${fw.colour % COLOURS}` }));
      }
      points = [];
    };
    for (const sample of model.shareHistory) {
      if (!(fw.id in sample.shares)) {
        flush();
        continue;
      }
      points.push(`${x(sample.t).toFixed(1)},${y(sample.shares[fw.id]).toFixed(1)}`);
    }
    flush();
    if (fw.active) labels.push(fw);
  }
  // The names at the right end, pushed apart so that equal shares stay readable.
  labels.sort((a, b) => b.share - a.share);
  let lastY = -Infinity;
  for (const fw of labels) {
    const ly = Math.max(y(fw.share) + 4, lastY + 14);
    lastY = ly;
    svg.append(el("text", { x: w - right + 6, y: ly, class: `small t${fw.colour % COLOURS}` },
      `${frameworkName(fw.id)} ${(fw.share * 100).toFixed(0)}%`));
  }
  container.replaceChildren(svg);
}

// -- the offer chart -----------------------------------------------------------------------

const KINDS = ["sent", "accepted", "declined"];

export function drawOffers(container) {
  fit(container);
  const { w, h, left, right, top, bottom } = CHART;
  const plotW = w - left - right;
  const plotH = h - top - bottom;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": t("offers") });
  const max = Math.max(4, ...model.offerBuckets.flatMap((b) => KINDS.map((k) => b[k])));
  axes(svg, max, "n");
  const windowMs = span(model.offerBuckets[0]?.t, 36 * BUCKET_MS);
  timeLabels(svg, windowMs);
  const now = Date.now();
  const slot = (plotW * BUCKET_MS) / windowMs;
  for (const bucket of model.offerBuckets) {
    const x0 = left + plotW * (1 - (now - bucket.t) / windowMs) - slot;
    KINDS.forEach((kind, i) => {
      const value = bucket[kind];
      if (!value) return;
      const bh = (value / max) * plotH;
      svg.append(el("rect", {
        x: x0 + (i * slot) / 3.4, y: top + plotH - bh, width: slot / 3.6, height: bh, class: `bar-${kind}`,
      }));
    });
  }
  KINDS.forEach((kind, i) => {
    const ly = top + 14 + i * 18;
    svg.append(el("rect", { x: w - right + 8, y: ly - 10, width: 12, height: 12, class: `bar-${kind}` }));
    svg.append(el("text", { x: w - right + 26, y: ly, class: "small" }, t(kind)));
  });
  const table = document.createElement("table");
  table.className = "totals";
  const head = table.createTHead().insertRow();
  const columns = [t("totals"), t("sent"), t("accepted"), t("declined"), t("rescinded"), t("held")];
  for (const text of columns) {
    const th = document.createElement("th");
    th.textContent = text;
    head.append(th);
  }
  const body = table.createTBody();
  const sum = { sent: 0, accepted: 0, declined: 0, rescinded: 0 };
  for (const [id, totals] of model.offerTotals) {
    const row = body.insertRow();
    const name = row.insertCell();
    const swatch = document.createElement("span");
    swatch.className = `swatch sw${colourOf(id)}`;
    name.append(swatch, model.frameworks.has(id) ? frameworkName(id) : totals.name);
    for (const kind of ["sent", "accepted", "declined", "rescinded"]) {
      row.insertCell().textContent = String(totals[kind]);
      sum[kind] += totals[kind];
    }
    // Offers held now, from /master/state (the metrics count them only in total).
    row.insertCell().textContent = String(model.frameworks.get(id)?.outstanding || 0);
  }
  const all = body.insertRow();
  all.className = "sum";
  all.insertCell().textContent = "Σ";
  for (const kind of ["sent", "accepted", "declined", "rescinded"]) {
    all.insertCell().textContent = String(sum[kind]);
  }
  all.insertCell().textContent = String(model.outstandingOffers);
  const wrap = document.createElement("div");
  wrap.className = "table-wrap";
  wrap.append(table);
  container.replaceChildren(svg, wrap);
}
