// A task's sandbox: its stdout and stderr followed live through the agent's /files/read,
// read by offset and length as Mesos's own web UI follows a file. The path is the agent's
// virtual `/frameworks/F/executors/E/runs/latest` (src/slave/paths.cpp
// `getExecutorVirtualPath`, which the agent attaches to /files), so the sandbox's real
// directory is not needed; a command task's executor ID is its task ID.

import { model, shortAgent } from "./data.js";
import { t } from "./i18n.js";

const MODE = (window.MESOS_UI_MODE && window.MESOS_UI_MODE.agents) || "direct";
const CHUNK = 50000; // bytes per read
const KEEP = 200000; // characters kept on screen per file
const POLL_MS = 1000;
let jsonpSeq = 0;

// JSONP: the agent is another origin, and /files/read answers `?jsonp=NAME` with NAME(json).
function jsonp(url, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const name = `__localmesosFiles${++jsonpSeq}`;
    const script = document.createElement("script");
    const done = () => {
      clearTimeout(timer);
      delete window[name];
      script.remove();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error("timeout"));
    }, timeoutMs);
    window[name] = (value) => {
      done();
      resolve(value);
    };
    script.onerror = () => {
      done();
      reject(new Error("unreachable"));
    };
    script.src = `${url}&jsonp=${name}`;
    document.head.append(script);
  });
}

function agentBase(agent) {
  // The agent's pid (slave(1)@IP:PORT) is what it listens on; its hostname may not resolve.
  const at = agent.pid.indexOf("@");
  const address = at >= 0 ? agent.pid.slice(at + 1) : `${agent.hostname}:${agent.port}`;
  return `${location.protocol}//${address}`;
}

async function readFile(agent, path, offset, length) {
  const query = `path=${encodeURIComponent(path)}&offset=${offset}` +
    (length === undefined ? "" : `&length=${length}`);
  if (MODE === "proxy") {
    const response = await fetch(`/agent/${encodeURIComponent(agent.id)}/files/read?${query}`, {
      credentials: "same-origin", cache: "no-store",
    });
    if (response.status === 404) throw new Error("missing");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }
  return jsonp(`${agentBase(agent)}/files/read?${query}`);
}

class Follower {
  constructor(agent, path, pre, onResult) {
    this.agent = agent;
    this.path = path;
    this.pre = pre;
    this.onResult = onResult;
    this.offset = null;
    this.stopped = false;
    pre.textContent = "";
    this.tick();
  }

  async tick() {
    if (this.stopped) return;
    let more = false;
    try {
      if (this.offset === null) {
        // offset -1 answers the file's size: start near the end, as a tail does.
        const head = await readFile(this.agent, this.path, -1);
        this.offset = Math.max(0, Number(head.offset) - CHUNK);
      }
      const chunk = await readFile(this.agent, this.path, this.offset, CHUNK);
      if (this.stopped) return;
      if (chunk.data) {
        const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
        this.pre.textContent = (this.pre.textContent + chunk.data).slice(-KEEP);
        if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
        this.offset = Number(chunk.offset) + new TextEncoder().encode(chunk.data).length;
        more = chunk.data.length > 0;
      }
      this.onResult(true);
    } catch (error) {
      this.onResult(false, error);
    }
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), more ? 50 : POLL_MS);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

let current = null;

export function closeSandbox() {
  if (current) current.followers.forEach((f) => f.stop());
  current = null;
  document.getElementById("sandbox").hidden = true;
}

export function openSandbox(task) {
  closeSandbox();
  const section = document.getElementById("sandbox");
  const note = document.getElementById("sandbox-note");
  section.hidden = false;
  document.getElementById("sandbox-task").textContent = task.id;
  const agent = model.agents.get(task.agentId);
  const out = document.getElementById("sandbox-stdout");
  const err = document.getElementById("sandbox-stderr");
  if (!agent) {
    out.textContent = "";
    err.textContent = "";
    note.textContent = t("sandboxNoAgent");
    return;
  }
  const name = shortAgent(agent.id);
  note.textContent = t("sandboxLoading");
  const executor = task.executorId || task.id;
  const dir = `/frameworks/${task.frameworkId}/executors/${executor}/runs/latest`;
  const failures = { stdout: 0, stderr: 0 };
  let seen = false;
  const report = (which) => (ok) => {
    if (ok) {
      seen = true;
      failures[which] = 0;
      note.textContent = t("sandboxFollowing", name);
    } else {
      failures[which]++;
      // A file that does not exist yet fails too: only a silent agent is reported.
      if (!seen && failures.stdout >= 2 && failures.stderr >= 2) {
        note.textContent = t("sandboxUnreachable", name);
      }
    }
  };
  current = {
    task,
    followers: [
      new Follower(agent, `${dir}/stdout`, out, report("stdout")),
      new Follower(agent, `${dir}/stderr`, err, report("stderr")),
    ],
  };
  section.scrollIntoView({ block: "start" });
}

export function sandboxTask() {
  return current?.task || null;
}
