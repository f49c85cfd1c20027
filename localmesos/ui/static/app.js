// The live page: starts the event stream and the polls (data.js), and keeps the views up to
// date: agents and charts (draw.js), tasks, the event log, the sandbox (sandbox.js).

import {
  NotLeader, Refused, applyEvent, applyMetrics, applyState, findTask, frameworkName, isTerminal,
  hitTasksOn, model, takeChangedTasks, readMetrics, readState, shortAgent, subscribe,
} from "./data.js";
import { COLOURS, colourOf, drawAgents, drawOffers, drawShares, installPatterns } from "./draw.js";
import { currentLang, eventText, reasonName, setLang, stateName, t } from "./i18n.js";
import { closeSandbox, openSandbox } from "./sandbox.js";

const STATE_POLL_MS = 1000;
const METRICS_POLL_MS = 2000;
const LOG_MAX = 200;
const TASKS_MAX = 150;
const STATE_ORDER = [
  "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE",
  "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED",
  "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN",
];

const $ = (id) => document.getElementById(id);
const root = document.documentElement;
let haveState = false;
let streamOpen = false;

// -- language and theme --------------------------------------------------------------------

function applyLang() {
  root.lang = currentLang();
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang-toggle").textContent = t("switchLang");
  applyThemeLabel();
  for (const li of $("event-log").children) li.querySelector(".text").textContent = logText(li.entry);
  for (const row of $("tasks").querySelectorAll("[data-task-id]")) renderTask(findTask(row.dataset.key), row);
  setStatus(streamOpen ? "live" : "connecting");
  if (refusedShown) showRefused(refusedShown);
  redraw();
}

function initialTheme() {
  const saved = localStorage.getItem("localmesos-theme");
  if (saved === "light" || saved === "dark") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyThemeLabel() {
  $("theme-toggle").textContent = root.dataset.theme === "dark" ? t("light") : t("dark");
}

function setTheme(theme, remember) {
  root.dataset.theme = theme;
  if (remember) localStorage.setItem("localmesos-theme", theme);
  applyThemeLabel();
}

function setStatus(which) {
  const text = which === "live" ? t("live", model.masterName || location.host) : t(which);
  $("status").textContent = text;
  $("status").dataset.state = which;
}

// -- tasks ---------------------------------------------------------------------------------

function renderTask(task, row) {
  if (!task) return;
  row.dataset.state = task.state;
  row.dataset.frameworkId = task.frameworkId;
  row.dataset.shownAt = String(Date.now());
  const swatch = document.createElement("span");
  swatch.className = `swatch sw${colourOf(task.frameworkId)}`;
  swatch.title = frameworkName(task.frameworkId);
  const id = document.createElement("span");
  id.className = "task-id mono";
  id.textContent = task.id;
  const state = document.createElement("span");
  state.className = `state st-${task.state.toLowerCase()}`;
  state.textContent = stateName(task.state);
  const where = document.createElement("span");
  where.className = "muted small";
  where.textContent = task.agentId ? shortAgent(task.agentId) : "";
  const link = document.createElement("a");
  link.className = "sandbox-link";
  link.href = `#sandbox/${encodeURIComponent(task.key)}`;
  link.textContent = t("sandboxLink");
  row.replaceChildren(swatch, id, state, where, link);
}

function rank(task) {
  const i = STATE_ORDER.indexOf(task.state);
  return i < 0 ? STATE_ORDER.length : i;
}

function showTask(task) {
  const list = $("tasks");
  list.querySelector(".empty")?.remove();
  let row = list.querySelector(`[data-key="${CSS.escape(task.key)}"]`);
  if (!row) {
    row = document.createElement("div");
    row.className = "task";
    row.dataset.taskId = task.id;
    row.dataset.key = task.key;
  }
  renderTask(task, row);
  // Live tasks first (by state), then the ended ones, the latest on top.
  const before = [...list.children].find((other) => other !== row && rank(findTask(other.dataset.key) || task) > rank(task));
  if (isTerminal(task.state)) {
    const firstEnded = [...list.children].find((other) => other !== row && isTerminal(other.dataset.state));
    list.insertBefore(row, firstEnded || null);
  } else {
    list.insertBefore(row, before || null);
  }
  while (list.children.length > TASKS_MAX) list.lastElementChild.remove();
  countTasks();
}

function countTasks() {
  const counts = new Map();
  for (const task of model.tasks.values()) counts.set(task.state, (counts.get(task.state) || 0) + 1);
  const parts = [];
  for (const state of STATE_ORDER) {
    if (!counts.get(state)) continue;
    const span = document.createElement("span");
    span.className = `count st-${state.toLowerCase()}`;
    span.dataset.state = state;
    span.textContent = `${stateName(state)}: ${counts.get(state)}`;
    parts.push(span);
  }
  $("task-counts").replaceChildren(...parts);
}

function showAllTasks() {
  const tasks = [...model.tasks.values()];
  for (const task of tasks.slice(-TASKS_MAX)) showTask(task);
  if (!tasks.length && !$("tasks").children.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = t("noTasks");
    $("tasks").append(p);
  }
}

// -- the event log -------------------------------------------------------------------------

function logText(entry) {
  const values = { ...entry.values };
  if (entry.kind === "TASK_UPDATED") {
    values.state = stateName(values.state);
    values.why = values.why ? reasonName(values.why) : "";
  }
  return eventText(entry.kind, values);
}

function log(kind, values, source = "stream") {
  const entry = { kind, values, time: new Date() };
  const li = document.createElement("li");
  li.entry = entry;
  li.dataset.kind = kind;
  li.dataset.source = source;
  li.className = `ev ev-${kind.toLowerCase()}`;
  const time = document.createElement("time");
  time.textContent = entry.time.toLocaleTimeString(currentLang(), { hour12: false });
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = logText(entry);
  li.append(time, " ", text);
  li.dataset.shownAt = String(Date.now());
  const list = $("event-log");
  list.prepend(li);
  while (list.children.length > LOG_MAX) list.lastElementChild.remove();
}

// -- loops ---------------------------------------------------------------------------------

let redrawPending = false;
function redraw() {
  if (redrawPending) return;
  redrawPending = true;
  setTimeout(() => {
    redrawPending = false;
    drawAgents($("agents"));
    drawLegend();
    drawShares($("shares"));
    drawOffers($("offers"));
  }, 30);
}

function drawLegend() {
  const items = [];
  for (const fw of model.frameworks.values()) {
    if (!fw.active) continue;
    const item = document.createElement("span");
    item.className = "legend-item";
    item.dataset.frameworkId = fw.id;
    item.dataset.share = fw.share.toFixed(3);
    const swatch = document.createElement("span");
    swatch.className = `swatch sw${fw.colour % COLOURS}`;
    item.append(swatch, `${frameworkName(fw.id)} ${(fw.share * 100).toFixed(1)}%`);
    items.push(item);
  }
  const free = document.createElement("span");
  free.className = "legend-item free-item";
  const swatch = document.createElement("span");
  swatch.className = "swatch sw-free";
  free.append(swatch, t("free"));
  $("frameworks").replaceChildren(...items, free);
}

function markReady() {
  if (haveState && streamOpen) root.dataset.ready = "true";
}

function logAgentChanges(changes) {
  for (const { agentId, change } of changes) {
    const agent = model.agents.get(agentId);
    const values = { name: shortAgent(agentId), host: agent?.hostname || "", tasks: hitTasksOn(agentId) };
    if (change === "disconnected") log("AGENT_DISCONNECTED", values, "state");
    else if (change === "unreachable") log("AGENT_UNREACHABLE", values, "state");
    else if (change === "back") log("AGENT_BACK", values, "state");
  }
}

async function followLeader() {
  // The page's API calls must reach the leader; /master/redirect sends the browser there
  // (http.cpp `Master::Http::redirect`), or answers 503 while no master leads.
  $("banner").textContent = t("notLeader");
  $("banner").hidden = false;
  // Behind `localmesos ui` the proxy picks the master; leaving it would lose the agents.
  if (window.MESOS_UI_MODE?.agents === "proxy") return;
  const last = Number(sessionStorage.getItem("localmesos-redirected") || 0);
  if (Date.now() - last < 10000) return; // not in a loop: the banner says enough
  try {
    const probe = await fetch("/master/redirect", { credentials: "same-origin", redirect: "manual" });
    if (probe.type !== "opaqueredirect") return; // no leader yet: the next poll asks again
  } catch {
    return; // this master is gone too
  }
  sessionStorage.setItem("localmesos-redirected", String(Date.now()));
  location.href = "/master/redirect";
}

// One line that says why the page shows nothing: the master asks for credentials. A browser
// usually asks the person first (the 401 names its realm); this is what is left if they
// cancel, or if the page is behind a proxy with the wrong ones.
let refusedShown = null;
function showRefused(error) {
  refusedShown = error;
  root.dataset.refused = String(error.status);
  $("banner").textContent = t("refused", error.status);
  $("banner").hidden = false;
}

function clearRefused() {
  if (!refusedShown) return;
  refusedShown = null;
  delete root.dataset.refused;
  $("banner").hidden = true;
}

let statePending = false;
let stateAgain = false;
async function pollState() {
  // One read at a time; a request while one runs makes one more after it.
  if (statePending) {
    stateAgain = true;
    return;
  }
  statePending = true;
  try {
    const changes = applyState(await readState());
    $("banner").hidden = true;
    clearRefused();
    logAgentChanges(changes);
    if (!haveState) {
      haveState = true;
      takeChangedTasks();
      showAllTasks();
    } else {
      // What the stream did not say (a reconnection's gap): the state says it.
      for (const task of takeChangedTasks().slice(-TASKS_MAX)) showTask(task);
    }
    countTasks();
    redraw();
    markReady();
  } catch (error) {
    if (error instanceof NotLeader) followLeader();
    else if (error instanceof Refused) showRefused(error);
  } finally {
    statePending = false;
    if (stateAgain) {
      stateAgain = false;
      setTimeout(pollState, 100);
    }
  }
}

async function pollMetrics() {
  try {
    applyMetrics(await readMetrics());
    redraw();
  } catch {
    // the next poll tries again
  }
}

function onEvent(event) {
  const result = applyEvent(event);
  if (!result) return;
  if (result.kind === "SUBSCRIBED") {
    takeChangedTasks();
    showAllTasks();
    redraw();
    log("SUBSCRIBED", result.values);
    pollState();
    markReady();
    return;
  }
  if (result.task) showTask(result.task);
  takeChangedTasks(); // shown just now
  log(result.kind, result.values);
  redraw();
  // Offers and allocations have no events: read them again soon after a change.
  setTimeout(pollState, 150);
}

async function streamForever() {
  for (;;) {
    try {
      await subscribe(onEvent, () => {
        streamOpen = true;
        setStatus("live");
      });
      // The stream ended (the master stopped, or it lost the leadership).
    } catch (error) {
      // a refused or broken stream: try again below
      if (error instanceof Refused) showRefused(error);
    }
    streamOpen = false;
    setStatus("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
}

function route() {
  const match = /^#sandbox\/(.+)$/.exec(location.hash);
  if (!match) {
    closeSandbox();
    return;
  }
  const task = findTask(decodeURIComponent(match[1]));
  if (task) openSandbox(task);
}

function start() {
  setTheme(initialTheme(), false);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", (e) => {
    if (!localStorage.getItem("localmesos-theme")) setTheme(e.matches ? "dark" : "light", false);
  });
  $("theme-toggle").addEventListener("click", () => {
    setTheme(root.dataset.theme === "dark" ? "light" : "dark", true);
  });
  $("lang-toggle").addEventListener("click", () => {
    setLang(currentLang() === "es" ? "en" : "es");
    applyLang();
  });
  $("sandbox-close").addEventListener("click", () => {
    history.replaceState(null, "", location.pathname);
    closeSandbox();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", redraw); // the charts are drawn as wide as their card
  installPatterns();
  applyLang();
  watchLeader();
}

// A standby master serves the page but redirects its API calls to the leader, another
// origin the browser will not follow: its /metrics/snapshot (which every master answers)
// says `master/elected` 0, and the page goes to the leader before it asks for anything else.
async function watchLeader() {
  let elected = true;
  try {
    elected = (await readMetrics())["master/elected"] !== 0;
  } catch (error) {
    // unknown: try the leader's endpoints all the same
    if (error instanceof Refused) showRefused(error);
  }
  if (!elected) {
    followLeader();
    setTimeout(watchLeader, 3000);
    return;
  }
  $("banner").hidden = true;
  setInterval(pollState, STATE_POLL_MS);
  setInterval(pollMetrics, METRICS_POLL_MS);
  setInterval(redraw, 5000); // the charts' time axis moves on even when nothing happens
  pollState().then(route);
  pollMetrics();
  streamForever();
}

start();
