"use strict";
// The Clipper dashboard: polls the admin API, draws tables and live charts, and runs the
// common operations (set version, roll back, scale; a canary rollout's promote, abort,
// pause and resume) through the same API.
//
// Authentication: the admin token comes from the URL fragment (#token=..., as printed by
// `clipper dashboard`; it is moved to sessionStorage and removed from the address bar) or
// from the sign-in form, and is sent as `Authorization: Bearer` on every API call.
// Options in the query string: ?refresh=<seconds between polls> (default 3),
// &window=<seconds shown by the charts> (default: the span of the server's history, 10 min
// unless the server's dashboard_history_s says otherwise).
//
// The charts start full: the first poll also fetches the summaries the server took in the
// last minutes (GET /admin/metrics_history); each poll after adds the live summary.

const TOKEN_KEY = "clipper-admin-token";
const params = new URLSearchParams(location.search);
const REFRESH_S = Math.max(0.5, Number(params.get("refresh")) || 3);
const WINDOW_PARAM_S = Number(params.get("window")) || null;
let WINDOW_S = Math.max(10, WINDOW_PARAM_S || 180);

const state = {
  snapshots: [],       // metrics summaries, oldest first, within the chart window
  models: [],          // get_all_models(verbose)
  rollouts: [],        // running_rollouts: each running rollout's status
  historyLoaded: false, // the server's history is in `snapshots`
  busy: false,         // an operation is running: tables are not redrawn under the cursor
  timer: null,
};

// -- the admin API ----------------------------------------------------------------------

class Unauthorized extends Error {}

function takeTokenFromUrl() {
  const match = location.hash.match(/[#&]token=([^&]*)/);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

async function api(operation, body = {}) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/admin/${operation}`, {
    method: "POST", headers, body: JSON.stringify(body), cache: "no-store",
  });
  const text = await response.text();
  let value = null;
  try { value = text ? JSON.parse(text) : null; } catch { value = text; }
  if (response.status === 401) throw new Unauthorized(errorText(value));
  if (!response.ok) throw new Error(errorText(value) || `HTTP ${response.status}`);
  return value;
}

function errorText(value) {
  if (value && typeof value === "object") return value.cause || value.error || "";
  return String(value || "");
}

// -- polling ----------------------------------------------------------------------------

async function refresh() {
  try {
    const [status, apps, models, replicas, summary, errors, events, rollouts, history] =
      await Promise.all([
      api("status"),
      api("get_all_applications", { verbose: true }),
      api("get_all_models", { verbose: true }),
      api("get_all_containers", { verbose: true }),
      api("metrics_summary"),
      api("recent_errors"),
      api("get_events", { limit: 15 }),
      api("running_rollouts"),
      state.historyLoaded ? null : api("metrics_history"),
    ]);
    setConnection(true);
    state.models = models;
    state.rollouts = rollouts;
    if (history) loadHistory(history);
    addSnapshot(summary);
    renderHeader(status);
    if (!state.busy) {
      renderApps(apps);
      renderModels(models, replicas);
    }
    renderCharts();
    renderErrors(errors, summary);
    renderEvents(events);
  } catch (error) {
    if (error instanceof Unauthorized) {
      showLogin(sessionStorage.getItem(TOKEN_KEY) ? error.message : "");
      return;  // polling resumes after signing in
    }
    setConnection(false, error.message);
  }
  state.timer = setTimeout(refresh, REFRESH_S * 1000);
}

function setConnection(ok, detail = "") {
  const badge = document.getElementById("connection");
  badge.textContent = ok ? "live" : "unreachable";
  badge.title = detail;
  badge.className = `badge ${ok ? "ok" : "bad"}`;
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("main").hidden = true;
  document.getElementById("login-error").textContent = message;
  setConnection(false, "sign in needed");
}

function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("token-input");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  clearTimeout(state.timer);
  refresh();
}

// -- DOM helpers --------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

function fillTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { className: "empty", colSpan: columns },
      "none yet")));
    return;
  }
  body.replaceChildren(...rows);
}

function say(text, isError = false) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

// -- header, apps, models -----------------------------------------------------------------

function renderHeader(status) {
  document.getElementById("cluster").textContent =
    `${status.cluster_name} · ${status.apps} apps · ${status.models} model versions · ` +
    `${status.replicas} replicas · ` +
    (status.cold && status.cold.length ? `${status.cold.length} cold · ` : "") +
    `up ${formatDuration(status.uptime_s)}`;
  document.getElementById("updated").textContent =
    `updated ${new Date().toLocaleTimeString()}`;
}

function renderApps(apps) {
  const shares = trafficShares();
  fillTable("apps", apps.map((app) => el("tr", { dataset: { app: app.name } },
    el("td", {}, el("strong", {}, app.name)),
    el("td", {}, app.input_type),
    el("td", {}, app.policy || "single"),
    el("td", {}, app.linked_models.length ? app.linked_models.map((name) =>
      el("span", { className: "pill" }, name)) : el("span", { className: "muted" }, "none")),
    el("td", {}, `${(app.latency_slo_micros / 1000).toLocaleString()} ms`),
    el("td", {}, el("code", {}, String(app.default_output))),
    el("td", {}, shares[app.name] || el("span", { className: "muted" }, "–")),
  )), 7);
}

// Per app, the share of each model version in the recent queries (apps under a policy).
function trafficShares() {
  const [first, last] = windowEnds(30);
  const shares = {};
  if (!first) return shares;
  for (const [app, entry] of Object.entries(last.apps)) {
    const before = (first.apps[app] || {}).model_queries || {};
    const deltas = Object.entries(entry.model_queries || {}).map(
      ([model, count]) => [model, count - (before[model] || 0)]);
    const total = deltas.reduce((sum, [, delta]) => sum + delta, 0);
    if (total > 0) {
      shares[app] = deltas.map(([model, delta]) =>
        `${model} ${Math.round((100 * delta) / total)}%`).join(", ");
    }
  }
  return shares;
}

function renderModels(models, replicas) {
  const byName = new Map();
  for (const info of models) {
    if (!byName.has(info.model_name)) byName.set(info.model_name, []);
    byName.get(info.model_name).push(info);
  }
  const rows = [...byName.entries()].map(([name, versions]) =>
    modelRow(name, versions, replicas.filter((replica) => replica.model_name === name)));
  fillTable("models", rows, 7);
}

function modelRow(name, versions, replicas) {
  const current = versions.find((info) => info.is_current_version) || versions.at(-1);
  const states = replicas.map((replica) => el("span", {
    className: `pill state-${replica.state}`,
    title: replica.last_error || replica.reason || "",
  }, `${replica.model_version}#${replica.model_replica_id} ${replica.state}`));
  const select = el("select", { ariaLabel: `version of ${name}` },
    versions.map((info) => el("option", {
      value: info.model_version, selected: info === current,
    }, info.model_version)));
  const count = el("input", {
    type: "number", min: 0, max: 64, value: current.num_replicas,
    ariaLabel: `replicas of ${name}:${current.model_version}`,
  });
  return el("tr", { dataset: { model: name } },
    el("td", {}, el("strong", {}, name)),
    el("td", { className: "current-version" }, current.model_version),
    el("td", {}, versions.map((info) => el("span", {
      className: `pill${info === current ? " current" : ""}`,
    }, info.model_version))),
    el("td", { className: "replica-counts" }, replicaCounts(name, versions, current)),
    el("td", {}, states.length ? states : el("span", { className: "muted" }, "none")),
    el("td", { className: "rollout" }, rolloutCell(name)),
    el("td", {}, el("div", { className: "actions" },
      select,
      el("button", { type: "button", className: "set-version",
        onclick: () => setVersion(name, select.value) }, "Set version"),
      el("button", { type: "button", className: "rollback",
        disabled: versions.indexOf(current) <= 0,
        onclick: () => rollBack(name) }, "Roll back"),
      count,
      el("button", { type: "button", className: "scale",
        title: `scale version ${current.model_version}`,
        onclick: () => scale(name, current.model_version, Number(count.value)) }, "Scale"),
    )),
  );
}

// A running rollout of the model: versions, step, share, time left, each check's state
// (its figures in the tooltip), and its buttons; "-" when none runs.
function rolloutCell(name) {
  const rollout = state.rollouts.find((entry) => entry.model_name === name);
  if (!rollout) return el("span", { className: "muted" }, "-");
  const share = rollout.step_kind === "shadow" ? "shadow" : `${rollout.share * 100}%`;
  const left = rollout.time_left_s === undefined ? "" : `, ${rollout.time_left_s.toFixed(0)} s left`;
  const checks = (rollout.checks || []).map((check) => el("span", {
    className: `pill check-${check.state}`, dataset: { check: check.name },
    title: `new ${figure(check.new)} · current ${figure(check.current)} · ` +
      `limit ${figure(check.limit)}` +
      (check.queries_needed ? ` · ${check.queries_needed} more queries` : ""),
  }, `${check.name} ${check.state}`));
  const button = (action, text) => el("button", {
    type: "button", className: `rollout-${action}`,
    onclick: () => rolloutAction(name, action),
  }, text);
  return [
    el("div", { className: "rollout-step" },
      `${rollout.baseline_version} → ${rollout.model_version}: step ${rollout.step} of ` +
      `${rollout.steps} (${share})${left}${rollout.paused ? " · paused" : ""}`),
    rollout.waiting_for ? el("div", { className: "muted" }, `waiting for ${rollout.waiting_for}`)
      : el("div", {}, checks),
    el("div", { className: "actions" },
      button("promote", "Promote"), button("abort", "Abort"),
      rollout.paused ? button("resume", "Resume") : button("pause", "Pause")),
  ];
}

function figure(value) {
  return value === null || value === undefined ? "-" : Number(value).toPrecision(3);
}

function rolloutAction(name, action) {
  const past = { promote: "promoted", abort: "aborted", pause: "paused", resume: "resumed" };
  return operate(`${action} the rollout of ${name}`, async () => {
    const status = await api(`${action}_rollout`, { model_name: name });
    return `${name}: rollout ${past[action]} (${status.state})`;
  });
}

// One line per version that has replicas (wanted or ready) or is cold, the current version
// first, each naming the version it counts: "hello:2 (current) — 1 / 1 ready"; a version
// scaled to zero says so: "hello:2 (current) — 0 / 0 ready · cold (the next query starts
// a replica)".
function replicaCounts(name, versions, current) {
  const counted = versions.filter((info) =>
    info === current || info.num_replicas > 0 || info.ready_replicas > 0 || info.cold);
  counted.sort((a, b) => (b === current) - (a === current));
  return counted.map((info) => el("div", {
    dataset: { version: info.model_version }, className: info.cold ? "cold" : "",
  },
    `${name}:${info.model_version}${info === current ? " (current)" : ""} — ` +
    `${info.ready_replicas} / ${info.num_replicas} ready` +
    (info.cold ? " · cold (the next query starts a replica)" : "")));
}

// -- operations ---------------------------------------------------------------------------

async function operate(description, action) {
  state.busy = true;
  for (const button of document.querySelectorAll("#models button")) button.disabled = true;
  say(`${description}…`);
  try {
    say(await action());
  } catch (error) {
    say(`${description} failed: ${error.message}`, true);
  } finally {
    state.busy = false;
    clearTimeout(state.timer);
    refresh();
  }
}

function setVersion(name, version) {
  return operate(`Setting ${name} to version ${version}`, async () => {
    await api("set_model_version", { model_name: name, model_version: version });
    return `${name}: current version is now ${version}`;
  });
}

// The version registered before the current one (the server lists them in creation order).
function rollBack(name) {
  const versions = state.models.filter((info) => info.model_name === name);
  const index = versions.findIndex((info) => info.is_current_version);
  if (index <= 0) return say(`${name}: no version older than the current one`, true);
  const target = versions[index - 1].model_version;
  return operate(`Rolling ${name} back to version ${target}`, async () => {
    await api("set_model_version", { model_name: name, model_version: target });
    return `${name}: rolled back from version ${versions[index].model_version} to ${target}`;
  });
}

function scale(name, version, replicas) {
  if (!Number.isInteger(replicas) || replicas < 0) {
    return say(`${name}: the number of replicas must be a whole number, 0 or more`, true);
  }
  return operate(`Scaling ${name}:${version} to ${replicas} replicas`, async () => {
    await api("set_num_replicas", {
      model_name: name, model_version: version, num_replicas: replicas,
    });
    return `${name}:${version} runs ${replicas} replica(s)`;
  });
}

// -- metrics: rates between snapshots -------------------------------------------------------

// The server's samples, oldest first; the chart window spans them unless ?window= is given.
function loadHistory(history) {
  if (!WINDOW_PARAM_S && history.samples.length > 1) {
    WINDOW_S = Math.max(10, (history.capacity - 1) * history.interval_s);
  }
  for (const sample of history.samples) addSnapshot(sample);
  state.historyLoaded = true;
}

// Snapshots stay in time order: one not newer than the last is dropped.
function addSnapshot(summary) {
  const last = state.snapshots.at(-1);
  if (last && summary.time <= last.time) return;
  state.snapshots.push(summary);
  const since = summary.time - WINDOW_S - REFRESH_S;
  while (state.snapshots.length > 2 && state.snapshots[0].time < since) state.snapshots.shift();
}

// The oldest snapshot at most `seconds` before the newest, and the newest.
function windowEnds(seconds) {
  const all = state.snapshots;
  const last = all.at(-1);
  if (all.length < 2) return [null, last];
  const first = all.find((s) => s.time >= last.time - seconds - 0.001) || all.at(-2);
  return [first === last ? all.at(-2) : first, last];
}

// One point per pair of consecutive snapshots: value(previousEntry, entry, seconds).
function seriesOf(kind, value) {
  const names = new Set();
  for (const snapshot of state.snapshots) Object.keys(snapshot[kind]).forEach((n) => names.add(n));
  return [...names].sort().map((name) => {
    const points = [];
    for (let i = 1; i < state.snapshots.length; i++) {
      const before = state.snapshots[i - 1];
      const after = state.snapshots[i];
      const previous = before[kind][name];
      const current = after[kind][name];
      const seconds = after.time - before.time;
      const point = current && seconds > 0 ? value(previous || {}, current, seconds) : null;
      points.push([after.time, point]);
    }
    return { name, points };
  });
}

const delta = (before, after, key) => Math.max(0, (after[key] || 0) - (before[key] || 0));

function quantileBetween(before, after, key, quantile) {
  const earlier = new Map((before[key] || []).map(([bound, count]) => [bound, count]));
  const buckets = (after[key] || []).map(([bound, count]) =>
    [bound === null ? Infinity : bound, count - (earlier.get(bound) || 0)]);
  return histogramQuantile(quantile, buckets);
}

// Prometheus' estimate: linear within the bucket holding the rank (see summary.py).
function histogramQuantile(quantile, buckets) {
  const total = buckets.length ? buckets.at(-1)[1] : 0;
  if (!(total > 0)) return null;
  const rank = quantile * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lowerBound;
      const width = count - lowerCount;
      return lowerBound + (bound - lowerBound) * (width > 0 ? (rank - lowerCount) / width : 1);
    }
    [lowerBound, lowerCount] = [bound, count];
  }
  return lowerBound;
}

const ratio = (part, whole) => (whole > 0 ? (100 * part) / whole : null);

const charts = {};

function renderCharts() {
  const snapshots = state.snapshots;
  if (!snapshots.length) return;
  const now = snapshots.at(-1).time;
  document.getElementById("window").textContent =
    `(last ${formatDuration(WINDOW_S)}, every ${REFRESH_S} s)`;
  // Each series its own colour, kept across polls (colorOf in charts.js).
  const colored = (kind) => (series) =>
    series.map((line) => ({ ...line, color: colorOf(`${kind} ${line.name}`) }));
  const appColors = colored("app");
  const modelColors = colored("model");

  const latency = seriesOf("apps", (b, a) => [
    quantileBetween(b, a, "latency_buckets", 0.5), quantileBetween(b, a, "latency_buckets", 0.99),
  ]);
  const latencyLines = latency.flatMap((line) => [
    { name: `${line.name} p50`, color: colorOf(`app ${line.name}`),
      points: line.points.map(([t, v]) => [t, v && v[0] !== null ? 1000 * v[0] : null]) },
    { name: `${line.name} p99`, color: colorOf(`app ${line.name} p99`), dashed: true,
      points: line.points.map(([t, v]) => [t, v && v[1] !== null ? 1000 * v[1] : null]) },
  ]);

  draw("qps", formatNumber, appColors(seriesOf("apps", (b, a, s) =>
    delta(b, a, "requests") / s)));
  draw("latency", formatNumber, latencyLines);
  draw("defaults", formatPercent, appColors(seriesOf("apps", (b, a) =>
    ratio(delta(b, a, "defaults"), delta(b, a, "requests")))));
  draw("traffic", formatNumber, modelColors(seriesOf("models", (b, a, s) =>
    (delta(b, a, "batch_inputs") + delta(b, a, "cache_hits")) / s)));
  draw("batch", formatNumber, modelColors(seriesOf("models", (b, a) => {
    const batches = delta(b, a, "batch_count");
    return batches > 0 ? delta(b, a, "batch_inputs") / batches : null;
  })));
  draw("cache", formatPercent, modelColors(seriesOf("models", (b, a) =>
    ratio(delta(b, a, "cache_hits"), delta(b, a, "cache_hits") + delta(b, a, "cache_misses")))));

  // A ratio's axis runs from 0 to at most 100%.
  function draw(name, format, series) {
    if (!charts[name]) {
      const ceiling = format === formatPercent ? 100 : Infinity;
      charts[name] = new LineChart(document.querySelector(`[data-chart=${name}]`), format,
        { ceiling });
    }
    charts[name].draw(series, now, WINDOW_S);
  }
}

// -- errors and events ------------------------------------------------------------------------

function renderErrors(errors, summary) {
  const parts = [];
  if (errors.replicas.length) {
    parts.push(el("h3", {}, "Replicas"), el("table", {}, el("tbody", {},
      errors.replicas.map((replica) => el("tr", {},
        el("td", {}, `${replica.model_id} #${replica.model_replica_id}`),
        el("td", { className: `state-${replica.state}` }, replica.state),
        el("td", {}, `${replica.restarts} restarts`),
        el("td", {}, replica.last_error || replica.reason
          ? el("pre", {}, replica.last_error || replica.reason) : "–"))))));
  }
  const defaults = Object.entries(summary.apps).flatMap(([app, entry]) =>
    Object.entries(entry.default_reasons).map(([reason, count]) => [app, reason, count]));
  if (defaults.length) {
    parts.push(el("h3", {}, "Default answers since the server started, by explanation"),
      el("table", {}, el("tbody", {}, defaults.map(([app, reason, count]) => el("tr", {},
        el("td", {}, app), el("td", {}, reason), el("td", {}, `${count}×`))))));
  }
  if (errors.log.length) {
    parts.push(el("h3", {}, "Server log: warnings and errors"),
      ...errors.log.slice(-10).reverse().map((line) => el("pre", {}, line)));
  }
  if (!parts.length) parts.push(el("p", { className: "muted" }, "No errors."));
  document.getElementById("errors").replaceChildren(...parts);
}

function renderEvents(events) {
  fillTable("events", events.slice().reverse().map((event) => el("tr", {},
    el("td", {}, new Date(event.ts * 1000).toLocaleTimeString()),
    el("td", {}, event.kind),
    el("td", {}, el("code", {}, JSON.stringify(event.detail))))), 3);
}

// -- formatting -------------------------------------------------------------------------------

function formatNumber(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2).replace(/\.?0+$/, "") || "0";
}

function formatPercent(value) {
  return value === null || value === undefined ? "–" : `${formatNumber(value)}%`;
}

function formatDuration(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

takeTokenFromUrl();
document.getElementById("login").addEventListener("submit", signIn);
refresh();
