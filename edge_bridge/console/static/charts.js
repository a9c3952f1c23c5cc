// Small charts for the twinfactory console, drawn into SVG (no library, no network).
// lineChart(el, {series: [{name, points: [[x, y], ...], color, dash, step}], hlines: [{y, label}],
//            xlabel, ylabel, height})
// scatter(el, {points: [{x, y, id, chosen}], xlabel, ylabel, onHover(point|null, event)})
(function () {
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, parent) {
  const node = document.createElementNS(SVGNS, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function frame(el, opts, xs, ys) {
  el.innerHTML = "";
  const width = el.clientWidth || 600, height = opts.height || 180;
  const m = {l: 52, r: 10, t: 10, b: 30};
  const svg = svgEl("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "chart"}, el);
  const [x0, x1] = opts.xrange || extent(xs);
  const [y0, y1] = opts.yrange || extent(ys);
  const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const sy = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  svgEl("rect", {x: m.l, y: m.t, width: width - m.l - m.r, height: height - m.t - m.b,
                 class: "plot"}, svg);
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4, xv = x0 + ((x1 - x0) * k) / 4;
    svgEl("line", {x1: m.l, x2: width - m.r, y1: sy(yv), y2: sy(yv), class: "grid"}, svg);
    svgEl("text", {x: m.l - 4, y: sy(yv) + 4, "text-anchor": "end", class: "tick"}, svg)
      .textContent = fmt(yv);
    svgEl("text", {x: sx(xv), y: height - m.b + 14, "text-anchor": "middle", class: "tick"}, svg)
      .textContent = fmt(xv);
  }
  if (opts.xlabel) svgEl("text", {x: width - m.r, y: height - 2, "text-anchor": "end",
                                  class: "label"}, svg).textContent = opts.xlabel;
  if (opts.ylabel) svgEl("text", {x: m.l + 4, y: m.t + 12, class: "label"}, svg)
    .textContent = opts.ylabel;
  return {svg, sx, sy, width, height, m};
}

function lineChart(el, opts) {
  const xs = [], ys = [];
  for (const s of opts.series) for (const [x, y] of s.points) { xs.push(x); ys.push(y); }
  for (const h of opts.hlines || []) ys.push(h.y);
  const f = frame(el, opts, xs, ys);
  for (const h of opts.hlines || []) {
    if (h.y === null || h.y === undefined) continue;
    svgEl("line", {x1: f.m.l, x2: f.width - f.m.r, y1: f.sy(h.y), y2: f.sy(h.y),
                   class: "limit"}, f.svg);
    svgEl("text", {x: f.width - f.m.r - 2, y: f.sy(h.y) - 3, "text-anchor": "end",
                   class: "limit-label"}, f.svg).textContent = h.label;
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of opts.series) {
    let d = "", pen = false, last = null;
    for (const [x, y] of s.points) {
      if (y === null || y === undefined || !isFinite(y)) { pen = false; continue; }
      if (s.step && pen && last !== null) d += `L${f.sx(x)},${f.sy(last)}`;
      d += `${pen ? "L" : "M"}${f.sx(x)},${f.sy(y)}`;
      pen = true; last = y;
    }
    svgEl("path", {d, class: "series", stroke: s.color, "stroke-dasharray": s.dash || ""}, f.svg);
    if (s.dots) for (const [x, y] of s.points) {
      if (y !== null && isFinite(y)) svgEl("circle", {cx: f.sx(x), cy: f.sy(y), r: 2.5,
                                                      fill: s.color}, f.svg);
    }
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${s.color}"></i>${s.name}`;
    legend.appendChild(item);
  }
  el.appendChild(legend);
}

function scatter(el, opts) {
  const f = frame(el, opts, opts.points.map((p) => p.x), opts.points.map((p) => p.y));
  for (const p of opts.points) {
    const dot = svgEl("circle", {cx: f.sx(p.x), cy: f.sy(p.y), r: p.chosen ? 6 : 4.5,
                                 class: p.chosen ? "dot chosen" : "dot", "data-id": p.id}, f.svg);
    dot.addEventListener("mouseenter", (event) => opts.onHover && opts.onHover(p, event));
    dot.addEventListener("mouseleave", () => opts.onHover && opts.onHover(null));
  }
}

window.charts = {lineChart, scatter, fmt};
})();
