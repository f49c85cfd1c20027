// The page's words, in Spanish (the default) and English. Each entry is a string or a
// function of the values it shows; `t(key, ...)` picks the current language.

const STRINGS = {
  es: {
    title: "en vivo",
    connecting: "Conectando…",
    live: (master) => `En directo: ${master}`,
    reconnecting: "Se cortó el flujo de eventos; reconectando…",
    notLeader: "Este maestro no es el líder; la página sigue al líder por /master/redirect.",
    refused: (status) => status === 401
      ? "El maestro pide credenciales (HTTP 401): abre la página a través de «localmesos ui --principal … --secret …»."
      : "El maestro rechaza estas credenciales (HTTP 403).",
    switchLang: "English",
    dark: "Oscuro",
    light: "Claro",
    agents: "Agentes",
    agentsHelp:
      "Cada caja es un agente: sus CPU y su memoria, llenas por framework (usado: relleno; " +
      "ofrecido: rayado). Lo discontinuo está libre.",
    shares: "Cuota dominante (DRF)",
    sharesHelp:
      "Por framework, el máximo entre CPU y memoria de lo asignado (usado + ofrecido) sobre el " +
      "total. DRF ofrece primero al framework con la cuota más baja.",
    offers: "Ofertas",
    offersHelp:
      "Ofertas enviadas, aceptadas y rechazadas cada 5 s (métricas del maestro); pendientes: " +
      "las que un framework tiene ahora sin contestar.",
    tasks: "Tareas",
    log: "Qué pasa",
    sandbox: "Sandbox de",
    close: "Cerrar",
    free: "libre",
    gone: "caído",
    cpus: "CPU",
    mem: "memoria",
    noAgents: "Aún no hay agentes.",
    noTasks: "Aún no hay tareas.",
    sent: "enviadas",
    accepted: "aceptadas",
    declined: "rechazadas",
    rescinded: "retiradas",
    held: "pendientes",
    totals: "Totales",
    framework: "framework",
    minutesAgo: (m) => `hace ${m} min`,
    now: "ahora",
    sandboxLink: "sandbox",
    sandboxLoading: "Leyendo los ficheros del agente…",
    sandboxFollowing: (host) => `Siguiendo stdout y stderr en el agente ${host}.`,
    sandboxUnreachable: (host) =>
      `El agente ${host} no contesta a este navegador (o pide credenciales); ` +
      "«localmesos ui --master …» puede mostrarlo.",
    sandboxNoAgent: "No se sabe en qué agente está esta tarea.",
    states: {
      TASK_STAGING: "preparando",
      TASK_STARTING: "arrancando",
      TASK_RUNNING: "en marcha",
      TASK_KILLING: "matándose",
      TASK_FINISHED: "terminada",
      TASK_FAILED: "fallida",
      TASK_KILLED: "matada",
      TASK_LOST: "perdida",
      TASK_ERROR: "error",
      TASK_DROPPED: "descartada",
      TASK_UNREACHABLE: "inalcanzable",
      TASK_GONE: "desaparecida",
      TASK_GONE_BY_OPERATOR: "dada por perdida",
      TASK_UNKNOWN: "desconocida",
    },
    reasons: {
      REASON_AGENT_DISCONNECTED: "su agente se desconectó",
      REASON_AGENT_REMOVED: "su agente salió del clúster",
      REASON_SLAVE_REMOVED: "su agente salió del clúster",
      REASON_AGENT_UNREACHABLE: "su agente no contesta",
      REASON_COMMAND_EXECUTOR_FAILED: "el comando acabó con error",
      REASON_EXECUTOR_TERMINATED: "su ejecutor terminó",
      REASON_EXECUTOR_REGISTRATION_TIMEOUT: "su ejecutor no llegó a registrarse",
      REASON_INVALID_OFFERS: "la oferta ya no valía",
      REASON_TASK_KILLED_DURING_LAUNCH: "se mató al lanzarla",
      REASON_FRAMEWORK_REMOVED: "su framework terminó",
      REASON_RECONCILIATION: "respuesta a una reconciliación",
    },
    ev: {
      SUBSCRIBED: (n) => `Conectado al maestro (agentes: ${n.agents}, frameworks: ${n.frameworks}, tareas: ${n.tasks}).`,
      AGENT_ADDED: (a) => `Se une el agente ${a.name} (${a.host}).`,
      AGENT_REMOVED: (a) => `El agente ${a.name} se ha ido del clúster.`,
      AGENT_DISCONNECTED: (a) =>
        `Se perdió el agente ${a.name}; ${a.tasks === 1 ? "1 tarea perdida" : `${a.tasks} tareas perdidas`} o sin noticias.`,
      AGENT_UNREACHABLE: (a) =>
        `El agente ${a.name} es inalcanzable; ${a.tasks === 1 ? "1 tarea perdida" : `${a.tasks} tareas perdidas`} o sin noticias.`,
      AGENT_BACK: (a) => `El agente ${a.name} vuelve a estar activo.`,
      FRAMEWORK_ADDED: (f) => `El framework «${f.name}» se ha suscrito.`,
      FRAMEWORK_UPDATED: (f) => `El framework «${f.name}» se ha vuelto a suscribir.`,
      FRAMEWORK_REMOVED: (f) => `El framework «${f.name}» ha terminado.`,
      TASK_ADDED: (k) => `El framework «${k.framework}» lanza la tarea ${k.task} en ${k.agent}.`,
      TASK_UPDATED: (k) => `La tarea ${k.task} está ${k.state}${k.why ? ` (${k.why})` : ""}.`,
    },
  },
  en: {
    title: "live",
    connecting: "Connecting…",
    live: (master) => `Live: ${master}`,
    reconnecting: "The event stream broke; reconnecting…",
    notLeader: "This master is not the leader; the page follows the leader through /master/redirect.",
    refused: (status) => status === 401
      ? "The master asks for credentials (HTTP 401): open the page through “localmesos ui --principal … --secret …”."
      : "The master refuses these credentials (HTTP 403).",
    switchLang: "Español",
    dark: "Dark",
    light: "Light",
    agents: "Agents",
    agentsHelp:
      "Each box is an agent: its CPUs and memory, filled by framework (used: solid; offered: " +
      "striped). Dashed is free.",
    shares: "Dominant share (DRF)",
    sharesHelp:
      "Per framework, the larger of CPUs and memory allocated (used + offered) over the total. " +
      "DRF offers first to the framework with the lowest share.",
    offers: "Offers",
    offersHelp:
      "Offers sent, accepted and declined every 5 s (the master's metrics); outstanding: those " +
      "a framework holds now without an answer.",
    tasks: "Tasks",
    log: "What happens",
    sandbox: "Sandbox of",
    close: "Close",
    free: "free",
    gone: "gone",
    cpus: "CPUs",
    mem: "memory",
    noAgents: "No agents yet.",
    noTasks: "No tasks yet.",
    sent: "sent",
    accepted: "accepted",
    declined: "declined",
    rescinded: "rescinded",
    held: "outstanding",
    totals: "Totals",
    framework: "framework",
    minutesAgo: (m) => `${m} min ago`,
    now: "now",
    sandboxLink: "sandbox",
    sandboxLoading: "Reading the agent's files…",
    sandboxFollowing: (host) => `Following stdout and stderr on agent ${host}.`,
    sandboxUnreachable: (host) =>
      `Agent ${host} does not answer this browser (or wants credentials); ` +
      "'localmesos ui --master …' can show it.",
    sandboxNoAgent: "It is not known which agent this task is on.",
    states: {
      TASK_STAGING: "staging",
      TASK_STARTING: "starting",
      TASK_RUNNING: "running",
      TASK_KILLING: "being killed",
      TASK_FINISHED: "finished",
      TASK_FAILED: "failed",
      TASK_KILLED: "killed",
      TASK_LOST: "lost",
      TASK_ERROR: "in error",
      TASK_DROPPED: "dropped",
      TASK_UNREACHABLE: "unreachable",
      TASK_GONE: "gone",
      TASK_GONE_BY_OPERATOR: "gone (by operator)",
      TASK_UNKNOWN: "unknown",
    },
    reasons: {
      REASON_AGENT_DISCONNECTED: "its agent disconnected",
      REASON_AGENT_REMOVED: "its agent left the cluster",
      REASON_SLAVE_REMOVED: "its agent left the cluster",
      REASON_AGENT_UNREACHABLE: "its agent does not answer",
      REASON_COMMAND_EXECUTOR_FAILED: "the command exited with an error",
      REASON_EXECUTOR_TERMINATED: "its executor ended",
      REASON_EXECUTOR_REGISTRATION_TIMEOUT: "its executor never registered",
      REASON_INVALID_OFFERS: "the offer was no longer valid",
      REASON_TASK_KILLED_DURING_LAUNCH: "killed while launching",
      REASON_FRAMEWORK_REMOVED: "its framework ended",
      REASON_RECONCILIATION: "answer to a reconciliation",
    },
    ev: {
      SUBSCRIBED: (n) => `Connected to the master (agents: ${n.agents}, frameworks: ${n.frameworks}, tasks: ${n.tasks}).`,
      AGENT_ADDED: (a) => `Agent ${a.name} (${a.host}) joined.`,
      AGENT_REMOVED: (a) => `Agent ${a.name} left the cluster.`,
      AGENT_DISCONNECTED: (a) =>
        `Agent ${a.name} lost; ${a.tasks} ${a.tasks === 1 ? "task" : "tasks"} lost or unreachable.`,
      AGENT_UNREACHABLE: (a) =>
        `Agent ${a.name} unreachable; ${a.tasks} ${a.tasks === 1 ? "task" : "tasks"} lost or unreachable.`,
      AGENT_BACK: (a) => `Agent ${a.name} is active again.`,
      FRAMEWORK_ADDED: (f) => `Framework «${f.name}» subscribed.`,
      FRAMEWORK_UPDATED: (f) => `Framework «${f.name}» subscribed again.`,
      FRAMEWORK_REMOVED: (f) => `Framework «${f.name}» ended.`,
      TASK_ADDED: (k) => `Framework «${k.framework}» launches task ${k.task} on ${k.agent}.`,
      TASK_UPDATED: (k) => `Task ${k.task} ${k.state}${k.why ? ` (${k.why})` : ""}.`,
    },
  },
};

// English when the browser prefers it, Spanish otherwise; a choice made on the page is kept.
function initialLang() {
  const saved = localStorage.getItem("localmesos-lang");
  if (saved === "es" || saved === "en") return saved;
  const first = (navigator.languages && navigator.languages[0]) || navigator.language || "es";
  return first.toLowerCase().startsWith("en") ? "en" : "es";
}

let lang = initialLang();

export function currentLang() {
  return lang;
}

export function setLang(next) {
  lang = next;
  localStorage.setItem("localmesos-lang", next);
}

export function t(key, ...values) {
  const entry = STRINGS[lang][key];
  return typeof entry === "function" ? entry(...values) : entry;
}

export function stateName(state) {
  return STRINGS[lang].states[state] || state;
}

export function reasonName(reason) {
  return STRINGS[lang].reasons[reason] || reason;
}

export function eventText(kind, values) {
  const entry = STRINGS[lang].ev[kind];
  return entry ? entry(values) : kind;
}
