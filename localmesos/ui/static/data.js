// What the page knows of the cluster, and how it learns it: the operator event stream
// (POST /api/v1 SUBSCRIBE, RecordIO), /master/state for the allocation (offers have no event),
// and /metrics/snapshot for the offer counters. Only public Mesos endpoints.

const FETCH = { credentials: "same-origin", cache: "no-store" };
const TERMINAL = new Set([
  "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED",
  "TASK_GONE", "TASK_GONE_BY_OPERATOR",
]);
const HISTORY_MS = 5 * 60 * 1000; // the share chart's window
const GONE_KEPT_MS = 2 * 60 * 1000; // a lost agent stays on screen, greyed, this long
export const BUCKET_MS = 5000; // the offer chart's bar width
const BUCKETS = 36;
const MAX_TASKS = 3000;

export function isTerminal(state) {
  return TERMINAL.has(state);
}

export function shortAgent(id) {
  // Mesos agent IDs are "<master id>-S<n>": the tail is what a person can read.
  const tail = String(id).split("-").pop();
  return tail || String(id);
}

export const model = {
  masterName: "",
  agents: new Map(), // id -> {id, hostname, port, pid, total, status, goneAt, goneReason}
  frameworks: new Map(), // id -> {id, name, colour, used, offered, share, active}
  tasks: new Map(), // "<framework>/<task>" -> {id, name, frameworkId, agentId, executorId, state}
  allocation: new Map(), // agent id -> Map framework id -> {used: {cpus, mem}, offered: {...}}
  total: { cpus: 0, mem: 0 },
  shareHistory: [], // {t, shares: {frameworkId: share}}
  offerBuckets: [], // {t, sent, accepted, declined}
  offerTotals: new Map(), // framework id -> {name, sent, accepted, declined, rescinded}
  outstandingOffers: 0,
  offerCount: 0,
  nextColour: 0,
};

// -- resources ---------------------------------------------------------------------------

function flatScalars(resources) {
  // /master/state writes resources as {"cpus": 2, "mem": 1024, ...}.
  return { cpus: Number(resources?.cpus || 0), mem: Number(resources?.mem || 0) };
}

function v1Scalars(resources) {
  // The operator API writes them as v1 Resource messages.
  const out = { cpus: 0, mem: 0 };
  for (const r of resources || []) {
    if ((r.name === "cpus" || r.name === "mem") && r.scalar) out[r.name] += Number(r.scalar.value);
  }
  return out;
}

function add(a, b) {
  return { cpus: a.cpus + b.cpus, mem: a.mem + b.mem };
}

// -- frameworks, agents, tasks -------------------------------------------------------------

function framework(id, name) {
  let fw = model.frameworks.get(id);
  if (!fw) {
    fw = {
      id, name: name || id, colour: model.nextColour++, used: { cpus: 0, mem: 0 },
      offered: { cpus: 0, mem: 0 }, share: 0, active: true,
    };
    model.frameworks.set(id, fw);
  } else if (name) {
    fw.name = name;
  }
  return fw;
}

export function frameworkName(id) {
  const name = model.frameworks.get(id)?.name;
  if (!name) return id;
  // Two frameworks may share a name (the same program run twice): the end of the ID, which
  // the master numbers in order (…-0000, …-0001), tells them apart.
  for (const other of model.frameworks.values()) {
    if (other.id !== id && other.name === name) return `${name} (${id.split("-").pop()})`;
  }
  return name;
}

function agentFromV1(a) {
  const info = a.agent_info;
  return {
    id: info.id.value, hostname: info.hostname, port: info.port, pid: a.pid || "",
    total: v1Scalars(a.total_resources || info.resources), active: a.active !== false,
  };
}

function agentFromState(s) {
  return {
    id: s.id, hostname: s.hostname, port: s.port, pid: s.pid || "",
    total: flatScalars(s.resources), active: s.active !== false,
  };
}

// Returns what changed, for the event log: "added", "back", "disconnected" or null.
export function upsertAgent(fresh) {
  const known = model.agents.get(fresh.id);
  const status = fresh.active ? "active" : "gone";
  if (!known) {
    model.agents.set(fresh.id, { ...fresh, status, goneAt: status === "gone" ? Date.now() : 0,
      goneReason: status === "gone" ? "disconnected" : "" });
    return status === "active" ? "added" : null;
  }
  const was = known.status;
  Object.assign(known, fresh, { status });
  if (was === "gone" && status === "active") {
    known.goneAt = 0;
    return "back";
  }
  if (was === "active" && status === "gone") {
    known.goneAt = Date.now();
    known.goneReason = "disconnected";
    return "disconnected";
  }
  return null;
}

export function markAgentGone(id, reason) {
  const agent = model.agents.get(id);
  if (!agent || agent.status === "gone") return false;
  agent.status = "gone";
  agent.goneAt = Date.now();
  agent.goneReason = reason;
  return true;
}

// The tasks that a lost agent takes with it: those still live on it, and those the master
// already declared lost or unreachable (their updates often come before the page sees the
// agent go).
const HIT = new Set(["TASK_LOST", "TASK_UNREACHABLE", "TASK_GONE"]);
export function hitTasksOn(agentId) {
  let n = 0;
  for (const task of model.tasks.values()) {
    if (task.agentId === agentId && (!isTerminal(task.state) || HIT.has(task.state))) n++;
  }
  return n;
}

function taskKey(frameworkId, taskId) {
  return `${frameworkId}/${taskId}`;
}

export function findTask(key) {
  return model.tasks.get(key);
}

// Tasks that changed since the views last took them (`takeChangedTasks`).
const changedTasks = new Set();

function putTask(t) {
  const key = taskKey(t.frameworkId, t.id);
  const known = model.tasks.get(key);
  if (known) {
    const changed = known.state !== t.state;
    Object.assign(known, t);
    if (changed) changedTasks.add(known);
    return changed ? known : null;
  }
  const task = { ...t, key };
  model.tasks.set(key, task);
  changedTasks.add(task);
  return task;
}

export function takeChangedTasks() {
  const tasks = [...changedTasks];
  changedTasks.clear();
  return tasks;
}

function taskFromV1(t) {
  return {
    id: t.task_id.value, name: t.name || "", frameworkId: t.framework_id.value,
    agentId: t.agent_id?.value || "", executorId: t.executor_id?.value || "", state: t.state,
  };
}

function taskFromState(t) {
  return {
    id: t.id, name: t.name || "", frameworkId: t.framework_id, agentId: t.slave_id || "",
    executorId: t.executor_id || "", state: t.state,
  };
}

// -- the operator event stream -------------------------------------------------------------

// Applies one operator event to the model; returns what the log and the views need.
export function applyEvent(event) {
  const kind = event.type;
  if (kind === "SUBSCRIBED") {
    const state = event.subscribed.get_state || {};
    for (const f of state.get_frameworks?.frameworks || []) {
      framework(f.framework_info.id.value, f.framework_info.name).active = f.active !== false;
    }
    for (const a of state.get_agents?.agents || []) upsertAgent(agentFromV1(a));
    const tasks = state.get_tasks || {};
    for (const list of [tasks.completed_tasks, tasks.unreachable_tasks, tasks.tasks]) {
      for (const t of list || []) putTask(taskFromV1(t));
    }
    return {
      kind, values: {
        agents: (state.get_agents?.agents || []).length,
        frameworks: (state.get_frameworks?.frameworks || []).length,
        tasks: (tasks.tasks || []).length,
      },
    };
  }
  if (kind === "TASK_ADDED") {
    const task = putTask(taskFromV1(event.task_added.task)) || findTask(
      taskKey(event.task_added.task.framework_id.value, event.task_added.task.task_id.value));
    return { kind, task, values: {
      task: task.id, framework: frameworkName(task.frameworkId), agent: shortAgent(task.agentId),
    } };
  }
  if (kind === "TASK_UPDATED") {
    const u = event.task_updated;
    const status = u.status || {};
    const key = taskKey(u.framework_id.value, status.task_id.value);
    const known = findTask(key);
    const task = putTask({
      id: status.task_id.value, name: known?.name || "", frameworkId: u.framework_id.value,
      agentId: status.agent_id?.value || known?.agentId || "", executorId: known?.executorId
        || status.executor_id?.value || "", state: u.state || status.state,
    }) || findTask(key);
    // `state` is the task's latest state (the agent may be further on); the log line tells
    // what this update says, `status.state` (master.proto `TaskUpdated`).
    return { kind, task, values: {
      task: task.id, state: status.state || task.state, why: status.reason || "",
    } };
  }
  if (kind === "AGENT_ADDED") {
    const fresh = agentFromV1(event.agent_added.agent);
    upsertAgent({ ...fresh, active: true });
    return { kind, agentId: fresh.id, values: { name: shortAgent(fresh.id), host: fresh.hostname } };
  }
  if (kind === "AGENT_REMOVED") {
    const id = event.agent_removed.agent_id.value;
    markAgentGone(id, "removed");
    return { kind, agentId: id, values: { name: shortAgent(id) } };
  }
  if (kind === "FRAMEWORK_ADDED" || kind === "FRAMEWORK_UPDATED") {
    const info = event[kind.toLowerCase()].framework.framework_info;
    framework(info.id.value, info.name).active = true;
    return { kind, values: { name: info.name } };
  }
  if (kind === "FRAMEWORK_REMOVED") {
    const info = event.framework_removed.framework_info;
    const fw = model.frameworks.get(info.id.value);
    if (fw) fw.active = false;
    return { kind, values: { name: info.name } };
  }
  return null; // HEARTBEAT, and events this page does not show
}

// Reads a RecordIO stream ("<length>\n<json>", the length in bytes) and calls onEvent for
// each record. Resolves when the stream ends; rejects when it breaks.
export async function subscribe(onEvent, onOpen) {
  // A stream that stays silent for three heartbeats is dead even if its connection is not.
  const controller = new AbortController();
  let silenceMs = 45000;
  let watchdog = setTimeout(() => controller.abort(), silenceMs);
  const heard = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller.abort(), silenceMs);
  };
  const response = await fetch("/api/v1", {
    ...FETCH, method: "POST", signal: controller.signal,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ type: "SUBSCRIBE" }),
  });
  if (!response.ok || !response.body) {
    clearTimeout(watchdog);
    refusal(response, "/api/v1");
    throw new Error(`SUBSCRIBE: HTTP ${response.status}`);
  }
  onOpen();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = new Uint8Array(0);
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } finally {
      heard();
    }
    const { value, done } = chunk;
    if (done) {
      clearTimeout(watchdog);
      return;
    }
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
    for (;;) {
      const newline = buffer.indexOf(10);
      if (newline < 0) break;
      const length = Number(decoder.decode(buffer.subarray(0, newline)));
      if (!Number.isFinite(length)) throw new Error("SUBSCRIBE: a record without its length");
      if (buffer.length < newline + 1 + length) break;
      const record = buffer.subarray(newline + 1, newline + 1 + length);
      buffer = buffer.slice(newline + 1 + length);
      const event = JSON.parse(decoder.decode(record));
      if (event.type === "SUBSCRIBED" && event.subscribed.heartbeat_interval_seconds) {
        silenceMs = 3000 * Number(event.subscribed.heartbeat_interval_seconds);
      }
      onEvent(event);
    }
  }
}

// -- /master/state: the allocation ---------------------------------------------------------

export class NotLeader extends Error {}

// A master or agent that wants credentials (401) or refuses the ones sent (403). Mesos routes
// /master/state and its other read-only endpoints in the READONLY_HTTP_AUTHENTICATION_REALM,
// which --authenticate_http_readonly guards, and /api/v1 in the read-write realm
// (src/master/master.cpp `Master::initialize`); an agent has realms of its own for its
// /files/* (src/slave/constants.hpp).
export class Refused extends Error {
  constructor(status, what) {
    super(`${what}: HTTP ${status}`);
    this.status = status;
    this.what = what;
  }
}

function refusal(response, what) {
  if (response.status === 401 || response.status === 403) throw new Refused(response.status, what);
}

export async function readState() {
  let response;
  try {
    response = await fetch("/master/state", FETCH);
  } catch (error) {
    // A standby redirects to the leader, another origin: the browser refuses to follow.
    throw new NotLeader(String(error));
  }
  if (response.redirected || response.status === 307 || response.status === 503) {
    throw new NotLeader(`HTTP ${response.status}`);
  }
  refusal(response, "/master/state");
  if (!response.ok) throw new Error(`/master/state: HTTP ${response.status}`);
  return response.json();
}

// Takes /master/state in; returns the agents that changed status, for the log.
export function applyState(state) {
  model.masterName = state.hostname ? `${state.hostname}` : model.masterName;
  const changes = [];
  const seen = new Set();
  for (const s of state.slaves || []) {
    seen.add(s.id);
    const change = upsertAgent(agentFromState(s));
    if (change) changes.push({ agentId: s.id, change });
  }
  const now = Date.now();
  for (const agent of model.agents.values()) {
    if (!seen.has(agent.id)) {
      // Not in the state any more: unreachable (or removed), in Mesos's words.
      if (markAgentGone(agent.id, "unreachable")) changes.push({ agentId: agent.id, change: "unreachable" });
      else if (now - agent.goneAt > GONE_KEPT_MS) model.agents.delete(agent.id);
    }
  }
  const allocation = new Map();
  const slot = (agentId, fwId) => {
    if (!allocation.has(agentId)) allocation.set(agentId, new Map());
    const byFw = allocation.get(agentId);
    if (!byFw.has(fwId)) byFw.set(fwId, { used: { cpus: 0, mem: 0 }, offered: { cpus: 0, mem: 0 } });
    return byFw.get(fwId);
  };
  const live = new Set();
  for (const f of state.frameworks || []) {
    const fw = framework(f.id, f.name);
    fw.active = true;
    live.add(f.id);
    fw.used = flatScalars(f.used_resources);
    fw.offered = flatScalars(f.offered_resources);
    fw.outstanding = (f.offers || []).length;
    for (const t of f.tasks || []) {
      // An ended task stays listed until its update is acknowledged, but its resources are
      // free again (and may be on offer): only live tasks fill the boxes.
      if (!isTerminal(t.state)) {
        const s = slot(t.slave_id, f.id);
        s.used = add(s.used, flatScalars(t.resources));
      }
      putTask(taskFromState(t));
    }
    for (const e of f.executors || []) {
      const s = slot(e.slave_id, f.id);
      s.used = add(s.used, flatScalars(e.resources));
    }
    for (const o of f.offers || []) {
      const s = slot(o.slave_id, f.id);
      s.offered = add(s.offered, flatScalars(o.resources));
    }
    for (const list of [f.completed_tasks, f.unreachable_tasks]) {
      for (const t of list || []) putTask(taskFromState(t));
    }
  }
  for (const fw of model.frameworks.values()) {
    if (!live.has(fw.id)) {
      fw.active = false;
      fw.used = { cpus: 0, mem: 0 };
      fw.offered = { cpus: 0, mem: 0 };
      fw.outstanding = 0;
    }
  }
  model.allocation = allocation;
  // A long session keeps only the latest ended tasks (the Map keeps them in arrival order).
  if (model.tasks.size > MAX_TASKS) {
    for (const [key, task] of model.tasks) {
      if (model.tasks.size <= MAX_TASKS) break;
      if (isTerminal(task.state)) model.tasks.delete(key);
    }
  }
  let total = { cpus: 0, mem: 0 };
  for (const s of state.slaves || []) total = add(total, flatScalars(s.resources));
  model.total = total;
  const shares = {};
  for (const fw of model.frameworks.values()) {
    const allocated = add(fw.used, fw.offered);
    // DRF's dominant share: the largest fraction of any one resource held.
    fw.share = Math.max(
      total.cpus ? allocated.cpus / total.cpus : 0,
      total.mem ? allocated.mem / total.mem : 0,
    );
    if (fw.active) shares[fw.id] = fw.share;
  }
  model.offerCount = (state.frameworks || []).reduce((n, f) => n + (f.offers || []).length, 0);
  model.shareHistory.push({ t: now, shares });
  while (model.shareHistory.length && now - model.shareHistory[0].t > HISTORY_MS) {
    model.shareHistory.shift();
  }
  return changes;
}

// -- /metrics/snapshot: the offer counters -------------------------------------------------

const OFFER_METRIC = /^master\/frameworks\/(.*)\/([^/]+)\/offers\/(sent|accepted|declined|rescinded)$/;
let lastSums = null;

export async function readMetrics() {
  const response = await fetch("/metrics/snapshot", FETCH);
  refusal(response, "/metrics/snapshot");
  if (!response.ok) throw new Error(`/metrics/snapshot: HTTP ${response.status}`);
  return response.json();
}

export function applyMetrics(metrics) {
  model.outstandingOffers = Number(metrics["master/outstanding_offers"] || 0);
  const sums = { sent: 0, accepted: 0, declined: 0 };
  for (const [name, value] of Object.entries(metrics)) {
    const match = OFFER_METRIC.exec(name);
    if (!match) continue;
    const [, encodedName, id, what] = match;
    let totals = model.offerTotals.get(id);
    if (!totals) {
      totals = { name: decodeURIComponent(encodedName), sent: 0, accepted: 0, declined: 0, rescinded: 0 };
      model.offerTotals.set(id, totals);
    }
    totals[what] = Number(value);
  }
  // Counters of frameworks that ended are gone from the snapshot; the totals keep them.
  for (const totals of model.offerTotals.values()) {
    for (const what of ["sent", "accepted", "declined"]) sums[what] += totals[what];
  }
  const now = Date.now();
  const bucketStart = now - (now % BUCKET_MS);
  if (lastSums) {
    let bucket = model.offerBuckets[model.offerBuckets.length - 1];
    if (!bucket || bucket.t !== bucketStart) {
      bucket = { t: bucketStart, sent: 0, accepted: 0, declined: 0 };
      model.offerBuckets.push(bucket);
    }
    for (const what of ["sent", "accepted", "declined"]) {
      bucket[what] += Math.max(0, sums[what] - lastSums[what]);
    }
  }
  lastSums = sums;
  while (model.offerBuckets.length && now - model.offerBuckets[0].t > BUCKETS * BUCKET_MS) {
    model.offerBuckets.shift();
  }
}
