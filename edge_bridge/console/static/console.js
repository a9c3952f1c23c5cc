// twinfactory operator console: fills the page shells from the JSON API and the live event
// stream (/api/stream). Every action goes through POST /api/action (CSRF header, fresh nonce).
"use strict";

const STATES = ["off", "standby", "idle", "busy", "failed", "repair", "maintenance"];
const PAGE = document.body.dataset.page;
const content = document.getElementById("content");
const fmt = window.charts.fmt;
const app = {csrf: null, role: null, user: null, lastEvent: 0, health: null, lags: []};
window.__lags = app.lags;          // telemetry sent_at -> DOM update, seconds (bench reads it)

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  if (response.status === 401 && PAGE !== "login") {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("signed out");
  }
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = {detail: text}; }
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function flash(message, kind) {
  let box = document.getElementById("flash");
  if (!box) { box = el("div", {id: "flash"}); content.before(box); }
  box.className = kind || "info";
  box.textContent = message;
}

function nonce() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function act(action, target, question) {
  if (!window.confirm(question)) return;
  const body = Object.assign({action, nonce: nonce(), reason: "from the console"}, target || {});
  try {
    const answer = await api("/api/action", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": app.csrf || ""},
      body: JSON.stringify(body),
    });
    flash(`sent ${answer.action}${answer.target ? " " + answer.target : ""} ` +
          `(request ${answer.request_id}); the bridge acts on it and audits it`, "ok");
  } catch (error) {
    flash(`refused: ${error.message}`, "error");
  }
}

function actionButton(id, label, action, target, question) {
  const button = el("button", {id, class: "action", onclick: () => act(action, target, question)},
                    label);
  if (app.role !== "operator") { button.disabled = true; button.title = "operator role only"; }
  return button;
}

// -- health: never show stale numbers as live ----------------------------------------------
function showHealth(health) {
  app.health = health;
  const box = document.getElementById("health");
  const consoleLost = Date.now() - app.lastEvent > 3000;
  const problems = consoleLost ? ["console connection lost: nothing here is live"] :
    health.problems;
  const live = !consoleLost && health.live;
  box.className = "health " + (live ? "live" : "stale");
  box.textContent = live ? `LIVE · bridge online · last twin report ${fmt(health.twin_age_s)} s ago`
                         : "NOT LIVE · " + (problems.join(" · ") || "waiting for the bridge");
  document.body.classList.toggle("stale", !live);
}

function watchdog() {
  if (app.health) showHealth(app.health);
  else if (Date.now() - app.lastEvent > 3000) showHealth({live: false, problems: []});
}

function openStream(onUpdate) {
  const source = new EventSource("/api/stream");
  source.onmessage = (event) => {
    app.lastEvent = Date.now();
    const data = JSON.parse(event.data);
    showHealth(data.health);
    onUpdate(data);
  };
  source.addEventListener("logout", () => {
    source.close();
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
  });
  source.onerror = () => { /* EventSource reconnects; the watchdog shows the gap */ };
  setInterval(watchdog, 500);
}

// -- overview ------------------------------------------------------------------------------
const COLUMNS = [
  ["name", "machine"], ["station", "station"], ["state", "state"], ["mode", "mode"],
  ["trust", "trust"], ["drift", "drift"], ["temperature", "temp °C"], ["power", "power kW"],
  ["speed", "speed"], ["command", "last command"], ["ack", "ack"], ["age", "data age s"],
];

function overview() {
  const rows = new Map();
  const data = {};                          // name -> values for sorting/filtering
  let commands = {}, status = null, sortKey = "name", sortDir = 1;
  const filter = el("input", {id: "filter", placeholder: "filter: name, station, mode…"});
  const only = el("select", {id: "only"}, el("option", {value: "all"}, "all machines"),
                  el("option", {value: "problems"}, "problems only"),
                  el("option", {value: "candidate"}, "on the candidate"));
  const group = el("input", {id: "group", type: "checkbox", checked: "checked"});
  const summary = el("div", {id: "summary"});
  const head = el("tr", {}, ...COLUMNS.map(([key, label]) =>
    el("th", {"data-sort": key, onclick: () => {
      sortDir = sortKey === key ? -sortDir : 1; sortKey = key; arrange();
    }}, label)));
  const body = el("tbody");
  content.append(el("div", {class: "controls"}, filter, only,
                    el("label", {}, group, " group by station"), summary),
                 el("table", {id: "machines", class: "grid"}, el("thead", {}, head), body));
  filter.addEventListener("input", arrange);
  only.addEventListener("change", arrange);
  group.addEventListener("change", arrange);

  function row(name) {
    let tr = rows.get(name);
    if (tr) return tr;
    tr = el("tr", {"data-machine": name});
    for (const [key] of COLUMNS) tr.append(el("td", {class: "c-" + key}));
    tr.querySelector(".c-name").append(el("a", {href: "/machine/" + name}, name));
    tr.querySelector(".c-station").textContent = name.replace(/-\d+$/, "");
    rows.set(name, tr);
    data[name] = {name, station: name.replace(/-\d+$/, "")};
    return tr;
  }
  function set(tr, key, text, cls) {
    const cell = tr.querySelector(".c-" + key);
    if (cell.textContent !== text) cell.textContent = text;
    if (cls !== undefined) cell.className = "c-" + key + (cls ? " " + cls : "");
  }
  function update(machine) {
    const tr = row(machine.name), d = data[machine.name];
    const t = machine.telemetry;
    if (t) {
      const s = t.signals;
      d.state = STATES[s.state] || String(s.state);
      d.temperature = s.temperature; d.power = s.power; d.speed = t.setpoints.speed_factor;
      d.sent_at = t.sent_at;   // data age counts from when the equipment sent it
      set(tr, "state", d.state, "state-" + d.state);
      set(tr, "temperature", fmt(s.temperature));
      set(tr, "power", fmt(s.power));
      set(tr, "speed", fmt(t.setpoints.speed_factor) + (t.setpoints.standby ? " sb" : ""));
      if (tr.dataset.seq !== String(t.seq)) {       // a new sample is on screen now
        app.lags.push(Date.now() / 1000 - t.sent_at);
        if (app.lags.length > 20000) app.lags.splice(0, 10000);
        tr.dataset.seq = t.seq;
      }
    }
    if (machine.twin) { d.twin = machine.twin; d.drift = machine.twin.drift; }
    decorate(machine.name);
  }
  function decorate(name) {
    const tr = row(name), d = data[name];
    const mode = (status && status.modes && status.modes[name]) || (d.twin && d.twin.assignment);
    d.mode = mode || "–";
    const trust = status && status.trust ? status.trust[name] : undefined;
    d.trust = trust;
    set(tr, "mode", d.mode + (status ? " · " + status.stage : ""), "mode-" + d.mode);
    set(tr, "trust", trust === undefined || trust === null ? "–" : fmt(trust),
        trust !== undefined && trust !== null && trust < 0.5 ? "low" : "");
    const drift = d.drift || [];
    set(tr, "drift", drift.length ? drift.join(", ") : "–", drift.length ? "alarm" : "");
    const c = commands[name];
    d.command = c ? c.decision_index : -1;
    set(tr, "command", c ? `#${c.decision_index} ${c.applied ? "speed " +
        fmt(c.applied.speed_factor) : "none sent"} (${c.assignment})` : "–");
    d.ack = c ? c.ack_status || (c.command_id ? "pending" : "–") : "–";
    set(tr, "ack", d.ack, d.ack === "confirmed" ? "ok" : d.ack === "pending" ? "" :
        d.ack === "–" ? "" : "alarm");
    d.problem = drift.length > 0 || (trust !== undefined && trust !== null && trust < 0.5) ||
      ["failed", "repair"].includes(d.state) || ["fallback", "local"].includes(d.mode) ||
      !["confirmed", "pending", "–"].includes(d.ack);
  }
  function ages(now) {
    for (const [name, tr] of rows) {
      const d = data[name];
      const age = d.sent_at ? now - d.sent_at : null;
      d.age = age;
      set(tr, "age", age === null ? "–" : fmt(Math.max(0, age)), age === null || age > 10 ?
          "alarm" : "");
    }
  }
  function arrange() {
    const text = filter.value.trim().toLowerCase();
    const names = [...rows.keys()].filter((name) => {
      const d = data[name];
      if (only.value === "problems" && !d.problem) return false;
      if (only.value === "candidate" && d.mode !== "candidate") return false;
      return !text || [d.name, d.station, d.mode, d.state].some((v) =>
        String(v || "").toLowerCase().includes(text));
    });
    const value = (name) => data[name][sortKey];
    names.sort((a, b) => {
      if (group.checked && data[a].station !== data[b].station)
        return data[a].station < data[b].station ? -1 : 1;
      const va = value(a), vb = value(b);
      if (va === vb) return a.localeCompare(b, undefined, {numeric: true});
      if (va === undefined || va === null) return 1;
      if (vb === undefined || vb === null) return -1;
      return (va < vb ? -1 : 1) * sortDir;
    });
    body.replaceChildren();
    let station = null;
    for (const name of names) {
      if (group.checked && data[name].station !== station) {
        station = data[name].station;
        const count = names.filter((n) => data[n].station === station).length;
        body.append(el("tr", {class: "station"}, el("td", {colspan: COLUMNS.length},
                                                     `${station} (${count})`)));
      }
      body.append(rows.get(name));
    }
    summary.textContent = `${names.length} of ${rows.size} machines shown`;
    for (const th of head.children) {
      th.className = th.dataset.sort === sortKey ? (sortDir > 0 ? "asc" : "desc") : "";
    }
  }
  function apply(payload) {
    if (payload.status) status = payload.status;
    if (payload.commands) commands = payload.commands;
    const before = rows.size;
    for (const machine of payload.machines) update(machine);
    if (payload.status || payload.commands) for (const name of rows.keys()) decorate(name);
    ages(payload.health.now);
    if (rows.size !== before || payload.commands) arrange();
  }
  async function poll() {
    try { apply(await api("/api/overview")); } catch (error) { flash(error.message, "error"); }
  }
  poll().then(() => openStream(apply));
  setInterval(poll, 3000);
}

// -- machine view --------------------------------------------------------------------------
function machineView() {
  const name = document.body.dataset.machine;
  document.querySelector("h1").textContent = "Machine " + name;
  const info = el("div", {id: "machine-info", class: "cards"});
  const charts = {};
  const boxes = ["temperature", "wear", "power", "trust", "setpoints"].map((key) => {
    charts[key] = el("div", {class: "chart-box", id: "chart-" + key});
    return el("section", {}, el("h2", {}, {temperature: "Temperature °C: measured vs twin",
      wear: "Wear (0–1): measured vs twin", power: "Power kW: measured vs twin",
      trust: "Trust (0–1)", setpoints: "Speed factor: incumbent, candidate, applied, envelope"}
      [key]), charts[key]);
  });
  const actions = el("div", {class: "actions"},
    actionButton("local-control", "Hand to local control", "local_control", {machine: name},
                 `Hand ${name} to local control? The bridge will send it nothing.`),
    actionButton("resume", "Resume bridge control", "resume", {machine: name},
                 `Return ${name} from local control to the bridge?`));
  const audit = el("table", {id: "machine-audit", class: "grid"});
  content.append(info, actions, el("div", {class: "chart-grid"}, ...boxes),
                 el("h2", {}, "Recent decisions (audit log)"), audit);
  let pending = false;

  function draw(d) {
    const t = d.telemetry, last = d.reports[d.reports.length - 1];
    info.replaceChildren(
      el("div", {}, el("b", {}, "state "), t ? STATES[t.signals.state] : "–"),
      el("div", {}, el("b", {}, "mode "), last ? `${last.assignment} · ${last.stage}` : "–"),
      el("div", {}, el("b", {}, "trust "), last ? fmt(last.trust) : "–"),
      el("div", {}, el("b", {}, "drift "), last && last.drift.length ? last.drift.join(", ") : "none"),
      el("div", {}, el("b", {}, "plant time "), t ? (t.time_s / 3600).toFixed(2) + " h" : "–"),
      el("div", {}, el("b", {}, "reason "), last ? last.reason : "–"));
    const index = {temperature: 2, wear: 3, power: 4};
    for (const key of ["temperature", "wear", "power"]) {
      window.charts.lineChart(charts[key], {xlabel: "plant time h", series: [
        {name: "measured (live)", color: "#8aa", points: d.trace.map((p) => [p[1] / 3600, p[index[key]]])},
        {name: "measured (interval end)", color: "#1f6fb2", dots: true,
         points: d.reports.map((r) => [r.time_s / 3600, r.measured[key]])},
        {name: "twin prediction", color: "#d9480f", dots: true, dash: "4 3",
         points: d.reports.map((r) => [r.time_s / 3600, r.predicted[key]])},
      ]});
    }
    window.charts.lineChart(charts.trust, {xlabel: "plant time h", yrange: [0, 1.05],
      hlines: [{y: 0.5, label: "gate threshold"}],
      series: [{name: "trust", color: "#2b8a3e", dots: true,
                points: d.reports.map((r) => [r.time_s / 3600, r.trust])}]});
    const limits = last ? last.limits : {};
    const speed = (key) => d.reports.map((r) => [r.time_s / 3600,
      r[key] && r[key].speed_factor !== undefined ? Number(r[key].speed_factor) : null]);
    window.charts.lineChart(charts.setpoints, {xlabel: "plant time h", hlines: [
      {y: limits.low, label: "envelope low"}, {y: limits.high, label: "envelope high"}],
      series: [{name: "incumbent", color: "#868e96", step: true, points: speed("incumbent")},
               {name: "candidate", color: "#ae3ec9", step: true, dash: "5 3", points: speed("candidate")},
               {name: "applied", color: "#1f6fb2", step: true, dots: true, points: speed("applied")}]});
    audit.replaceChildren(el("tr", {}, ...["decision", "plant h", "stage", "assignment",
      "applied speed", "trust", "ack", "reason"].map((h) => el("th", {}, h))),
      ...d.audit.slice().reverse().slice(0, 20).map((r) => el("tr", {},
        el("td", {}, r.decision_index), el("td", {}, (r.time_s / 3600).toFixed(2)),
        el("td", {}, r.stage), el("td", {}, r.assignment),
        el("td", {}, r.applied ? fmt(r.applied.speed_factor) : "–"), el("td", {}, fmt(r.trust)),
        el("td", {}, r.ack_status || "–"), el("td", {}, r.reason))));
  }
  async function load() {
    if (pending) return;
    pending = true;
    try { draw(await api("/api/machine/" + encodeURIComponent(name))); }
    catch (error) { flash(error.message, "error"); }
    finally { pending = false; }
  }
  let lastDraw = 0;
  load();
  openStream((payload) => {
    if (payload.machines.some((m) => m.name === name) && Date.now() - lastDraw > 1000) {
      lastDraw = Date.now();
      load();
    }
  });
}

// -- rollout view --------------------------------------------------------------------------
function rolloutView() {
  const stage = el("div", {id: "stage", class: "cards"});
  const approval = el("div", {id: "approval", "data-pending": "?"});
  const rollbacks = el("div", {id: "rollbacks", class: "actions"});
  const kpi = el("div", {class: "chart-box", id: "chart-kpi"});
  const timeline = el("table", {id: "timeline", class: "grid"});
  content.append(stage, el("h2", {}, "Pending approval"), approval, el("h2", {}, "Roll back"),
                 rollbacks, el("h2", {}, "KPI evidence: objective Z per interval, candidate vs incumbent (lower is better)"),
                 kpi, el("h2", {}, "Gate timeline (newest first)"), timeline);
  let cohortsShown = null;
  function draw(d) {
    const g = d.gate, s = d.status;
    stage.replaceChildren(
      el("div", {}, el("b", {}, "stage "), el("span", {id: "stage-label"}, s ? s.stage : g ? g.stage : "–")),
      el("div", {}, el("b", {}, "policy "), s ? s.policy_version : "–"),
      el("div", {}, el("b", {}, "on the candidate "), s ? `${s.cohort.length} machines` : "–"),
      el("div", {}, el("b", {}, "intervals in stage "), g ? g.intervals_in_stage : "–"),
      el("div", {}, el("b", {}, "excluded cohorts "), g && g.excluded_cohorts.length ? g.excluded_cohorts.join(", ") : "none"),
      el("div", {}, el("b", {}, "local control "), g && Object.keys(g.local).length ? Object.keys(g.local).join(", ") : "none"),
      el("div", {}, el("b", {}, "fallback "), g && Object.keys(g.fallback).length ? Object.keys(g.fallback).join(", ") : "none"),
      ...(g && g.rollback_reason ? [el("div", {class: "alarm"}, el("b", {}, "rolled back: "),
                                        g.rollback_reason)] : []));
    const p = g && g.pending;
    const label = p ? (p.to_stage === "canary" ? `canary[${p.to_step}]` : p.to_stage) : null;
    if ((approval.dataset.pending || "") !== (label || "")) {
      approval.dataset.pending = label || "";
      approval.replaceChildren(...(p ? [
        el("p", {id: "pending-text"}, `Promotion to ${label} is waiting (decision ${p.decision_index}, ` +
           `plant ${(p.time_s / 3600).toFixed(2)} h).`),
        actionButton("approve", "Approve promotion", "approve", null, `Approve the promotion to ${label}?`),
        actionButton("reject", "Reject", "reject", null, `Reject the promotion to ${label}?`),
      ] : [el("p", {id: "pending-text"}, "No promotion is waiting for an approval.")]));
    }
    const cohorts = JSON.stringify(d.cohorts);
    if (cohortsShown !== cohorts) {
      cohortsShown = cohorts;
      rollbacks.replaceChildren(
        actionButton("rollback-all", "Roll back everything", "rollback", null,
                     "Roll back the whole rollout? Every machine returns to the incumbent."),
        ...d.cohorts.map((c) => actionButton("rollback-" + c, `Roll back cohort ${c}`, "rollback",
                                             {cohort: c}, `Roll back cohort ${c} to the incumbent?`)));
    }
    const window_ = g ? g.kpi_series : [];
    window.charts.lineChart(kpi, {xlabel: "interval in the window", series: [
      {name: "candidate Z", color: "#ae3ec9", dots: true, points: window_.map((w, k) => [k, w.candidate_z])},
      {name: "incumbent Z", color: "#868e96", dots: true, points: window_.map((w, k) => [k, w.incumbent_z])}]});
    timeline.replaceChildren(el("tr", {}, ...["plant h", "decision", "event", "reason", "operator",
      "stages"].map((h) => el("th", {}, h))), ...d.timeline.map((e) => el("tr", {class: "ev-" + e.kind},
        el("td", {}, e.time_s === null ? "–" : (e.time_s / 3600).toFixed(2)),
        el("td", {}, e.decision_index === null ? "–" : e.decision_index), el("td", {}, e.kind),
        el("td", {}, e.reason), el("td", {}, e.operator || ""),
        el("td", {}, e.detail.from_stage ? `${e.detail.from_stage} → ${e.detail.to_stage}` : ""))));
  }
  async function load() {
    try { draw(await api("/api/rollout")); } catch (error) { flash(error.message, "error"); }
  }
  load();
  setInterval(load, 1500);
  openStream(() => {});
}

// -- audit log -----------------------------------------------------------------------------
function auditView() {
  const fields = ["machine", "stage", "reason", "since", "until", "limit"];
  const inputs = Object.fromEntries(fields.map((f) => [f, el("input", {name: f, id: "f-" + f,
    placeholder: {since: "from plant s", until: "to plant s", limit: "500"}[f] || f})]));
  const params = new URLSearchParams(location.search);
  for (const f of fields) if (params.get(f)) inputs[f].value = params.get(f);
  const csv = el("a", {id: "csv", class: "button"}, "Export CSV");
  const table = el("table", {id: "audit", class: "grid"});
  const form = el("form", {class: "controls", onsubmit: (e) => { e.preventDefault(); load(); }},
                  ...Object.values(inputs), el("button", {type: "submit"}, "Filter"), csv);
  content.append(form, table);
  async function load() {
    const query = new URLSearchParams();
    for (const f of fields) if (inputs[f].value.trim()) query.set(f, inputs[f].value.trim());
    csv.href = "/api/audit.csv?" + query;
    history.replaceState(null, "", "/audit?" + query);
    try {
      const d = await api("/api/audit?" + query);
      const cols = ["time_s", "decision_index", "machine", "stage", "assignment", "applied",
                    "trust", "drift", "reason", "ack_status", "operator"];
      table.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", {}, c))),
        ...d.rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", {},
          r[c] === null ? "–" : typeof r[c] === "object" ? JSON.stringify(r[c]) :
          typeof r[c] === "number" && !Number.isInteger(r[c]) ? fmt(r[c]) : r[c])))));
      flash(`${d.rows.length} rows`, "info");
    } catch (error) { flash(error.message, "error"); }
  }
  load();
  openStream(() => {});
}

// -- runs ----------------------------------------------------------------------------------
function runsView() {
  const list = el("ul", {id: "run-files"});
  const shown = el("div", {id: "run-shown"});
  content.append(el("div", {class: "runs"}, list, shown));
  const tooltip = document.getElementById("tooltip");
  function hover(point, event) {
    if (!point) { tooltip.hidden = true; return; }
    tooltip.hidden = false;
    tooltip.style.left = event.pageX + 12 + "px";
    tooltip.style.top = event.pageY + 12 + "px";
    tooltip.replaceChildren(el("b", {}, `plan ${point.id}`),
      el("pre", {}, Object.entries(point.plan.x).map(([k, v]) =>
        `${k} = ${typeof v === "number" ? fmt(v) : JSON.stringify(v)}`).join("\n")),
      el("pre", {}, Object.entries(point.plan.F).map(([k, v]) => `${k}: ${fmt(v)}`).join("\n")));
  }
  function render(file) {
    const d = file.data;
    shown.replaceChildren(el("h2", {}, file.path));
    if (file.kind === "error") { shown.append(el("p", {class: "alarm"}, file.message)); return; }
    if (file.kind === "image") shown.append(el("img", {src: d.url, alt: file.path}));
    else if (file.kind === "pareto") {
      const objectives = d.objectives;
      const box = el("div", {class: "chart-box", id: "pareto"});
      const xs = el("select", {}, ...objectives.map((o) => el("option", {}, o)));
      const ys = el("select", {}, ...objectives.map((o) => el("option", {}, o)));
      if (objectives.length > 1) ys.selectedIndex = 1;
      const drawFront = () => window.charts.scatter(box, {xlabel: xs.value, ylabel: ys.value,
        height: 320, onHover: hover, points: d.points.map((p, k) => ({x: p.F[xs.value],
          y: p.F[ys.value], id: p.evaluation ?? k, chosen: k === d.chosen, plan: p}))});
      xs.onchange = ys.onchange = drawFront;
      shown.append(el("p", {}, `${d.points.length} plans (${d.algorithm || "?"}); hover a plan ` +
                   "for its decision vector. x: ", xs, " y: ", ys), box);
      drawFront();
    } else if (file.kind === "training") {
      for (const [tag, points] of Object.entries(d.scalars)) {
        const box = el("div", {class: "chart-box"});
        shown.append(el("h3", {}, tag), box);
        window.charts.lineChart(box, {xlabel: "step", series: [{name: tag, color: "#1f6fb2", points}]});
      }
      if (!Object.keys(d.scalars).length) shown.append(el("p", {}, "no scalars in this file"));
    } else if (file.kind === "table") {
      const numeric = d.numeric.filter((c) => c !== d.header[0]);
      if (numeric.length && d.numeric.includes(d.header[0]) && d.rows.length > 1) {
        const box = el("div", {class: "chart-box"});
        shown.append(box);
        const x = d.header.indexOf(d.header[0]);
        window.charts.lineChart(box, {xlabel: d.header[0], series: numeric.slice(0, 4).map((c, k) => ({
          name: c, color: ["#1f6fb2", "#d9480f", "#2b8a3e", "#ae3ec9"][k],
          points: d.rows.map((r) => [Number(r[x]), r[d.header.indexOf(c)] === "" ? null :
                                     Number(r[d.header.indexOf(c)])])}))});
      }
      shown.append(el("table", {class: "grid"}, el("tr", {}, ...d.header.map((h) => el("th", {}, h))),
        ...d.rows.slice(0, 200).map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))));
    } else shown.append(el("pre", {class: "json"}, JSON.stringify(d, null, 1).slice(0, 200000)));
  }
  async function show(path) {
    try { render(await api("/api/runs/file?path=" + encodeURIComponent(path))); }
    catch (error) { flash(error.message, "error"); }
  }
  api("/api/runs").then((d) => {
    if (!d.files.length) list.append(el("li", {}, `nothing under ${d.root}/ yet`));
    for (const f of d.files) list.append(el("li", {"data-path": f.path}, el("a", {href: "#",
      onclick: (e) => { e.preventDefault(); show(f.path); }}, f.path), el("small", {}, " " + f.kind)));
  }).catch((error) => flash(error.message, "error"));
  openStream(() => {});
}

// -- login ---------------------------------------------------------------------------------
function loginView() {
  document.getElementById("health").hidden = true;
  const user = el("input", {id: "user", name: "user", autocomplete: "username", placeholder: "user"});
  const password = el("input", {id: "password", name: "password", type: "password",
                                autocomplete: "current-password", placeholder: "password"});
  const form = el("form", {id: "login", class: "login", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify({user: user.value, password: password.value})});
      const next = new URLSearchParams(location.search).get("next") || "/";
      location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/";
    } catch (error) { flash(error.message, "error"); }
  }}, user, password, el("button", {type: "submit", id: "sign-in"}, "Sign in"));
  content.append(form);
}

async function main() {
  if (PAGE === "login") return loginView();
  const session = await api("/api/session");
  Object.assign(app, session);
  document.body.classList.add("role-" + session.role);
  document.getElementById("who").textContent = `${session.user} (${session.role})`;
  const logout = document.getElementById("logout");
  logout.hidden = false;
  logout.onclick = async () => { await api("/api/logout", {method: "POST"}); location.href = "/login"; };
  ({overview, machine: machineView, rollout: rolloutView, audit: auditView, runs: runsView})[PAGE]();
}

main();
