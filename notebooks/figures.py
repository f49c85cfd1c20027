"""Tables, samplers and figures for the notebooks, kept here so that their cells stay short.

Figures are drawn on `matplotlib.figure.Figure` objects, not through pyplot, so that they do not
depend on the backend that is active in the kernel (`jobs.bikeshare.chart` switches it to Agg).
`image()` turns one into a PNG that the notebook displays.
"""

from __future__ import annotations

import html
import io
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from IPython.display import Image
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# One colour per agent, and one per framework in the sharing figure (colour-blind safe).
AGENT_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00"]
FRAMEWORK_COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7"]
TERMINAL_STATES = {
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
}


# -- tables ---------------------------------------------------------------------------------


class Table:
    """A small table that Jupyter shows as HTML; its plain-text form is aligned columns."""

    def __init__(self, rows: Sequence[dict[str, object]]) -> None:
        self.rows = list(rows)
        self.columns = list(self.rows[0]) if self.rows else []

    def _cells(self) -> list[list[str]]:
        return [[_text(row[column]) for column in self.columns] for row in self.rows]

    def __repr__(self) -> str:
        cells = self._cells()
        widths = [
            max(len(column), *(len(row[i]) for row in cells))
            for i, column in enumerate(self.columns)
        ]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self._cells()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def agent_names(agent_ids: Iterable[str]) -> dict[str, str]:
    """Short names for the agents, in the order that they registered: agente 1, agente 2..."""
    return {agent_id: f"agente {number}" for number, agent_id in enumerate(agent_ids, 1)}


def agents_table(state: dict, names: dict[str, str]) -> Table:
    """The agents that the master knows, with their resources (GET /master/state)."""
    rows = []
    for agent in sorted(state["slaves"], key=lambda a: names[a["id"]]):
        total, used = agent["resources"], agent["used_resources"]
        rows.append(
            {
                "agente": names[agent["id"]],
                "id": agent["id"],
                "cpus": total["cpus"],
                "mem (MB)": total["mem"],
                "disco (MB)": total["disk"],
                "puertos": total["ports"],
                "cpus en uso": used["cpus"],
            }
        )
    return Table(rows)


def offers_table(offers: Sequence[dict], names: dict[str, str]) -> Table:
    """Each offer that a JobScheduler received (its timeline), and what it did with it."""
    rows = []
    for offer in offers:
        tasks = offer["tasks"]
        action = f"lanzó {tasks} tarea{'s' if tasks > 1 else ''}" if tasks else "la rechazó"
        rows.append(
            {
                "llegó a los": f"{offer['time']:.2f} s",
                "agente": names.get(offer["agent"], offer["agent"]),
                "cpus": offer["cpus"],
                "mem (MB)": offer["mem"],
                "qué hizo el planificador": action,
            }
        )
    return Table(rows)


# -- where the tasks ran --------------------------------------------------------------------


@dataclass
class Run:
    """One task's stay on an agent: from TASK_RUNNING to its terminal state."""

    task: str
    chunk: int | None
    agent: str
    start: float
    end: float
    state: str


def task_runs(updates: Sequence[dict]) -> list[Run]:
    """The tasks of a JobScheduler's timeline, with the times they started and ended."""
    started: dict[str, dict] = {}
    runs = []
    for update in updates:
        if update["state"] == "TASK_RUNNING":
            started.setdefault(update["task"], update)
        elif update["state"] in TERMINAL_STATES and update["task"] in started:
            first = started.pop(update["task"])
            runs.append(
                Run(
                    update["task"],
                    first["chunk"],
                    first["agent"],
                    first["time"],
                    update["time"],
                    update["state"],
                )
            )
    return sorted(runs, key=lambda run: run.start)


def lanes(runs: Sequence[Run]) -> dict[str, list[list[Run]]]:
    """Place each agent's tasks on lanes that never overlap: one lane per task slot in use."""
    by_agent: dict[str, list[list[Run]]] = {}
    for run in sorted(runs, key=lambda run: run.start):
        agent_lanes = by_agent.setdefault(run.agent, [])
        for lane in agent_lanes:
            if lane[-1].end <= run.start:
                lane.append(run)
                break
        else:
            agent_lanes.append([run])
    return by_agent


def timeline_frame(axes) -> None:
    """The look of every horizontal chart here: a light vertical grid, no box, no y ticks."""
    axes.spines[["top", "right", "left"]].set_visible(False)
    axes.tick_params(axis="y", length=0)
    axes.grid(axis="x", alpha=0.25)


def placement_figure(
    updates: Sequence[dict], offers: Sequence[dict], names: dict[str, str]
) -> Figure:
    """A Gantt chart of the job: one row per task slot of each agent, a bar per task from
    TASK_RUNNING to TASK_FINISHED with its week inside, and the allocation rounds behind."""
    by_agent = lanes(task_runs(updates))
    agents = sorted(by_agent, key=lambda agent: names.get(agent, agent))
    rows = sum(len(by_agent[agent]) for agent in agents)
    figure = Figure(figsize=(10, 1.2 + 0.42 * rows), layout="constrained")
    axes = figure.subplots()
    labels, handles = [], []
    row = 0
    for index, agent in enumerate(agents):
        colour = AGENT_COLOURS[index % len(AGENT_COLOURS)]
        for number, lane in enumerate(by_agent[agent], 1):
            for run in lane:
                axes.barh(
                    row,
                    run.end - run.start,
                    left=run.start,
                    height=0.72,
                    color=colour,
                    edgecolor="white",
                    linewidth=0.8,
                )
                if run.chunk is not None:
                    axes.text(
                        (run.start + run.end) / 2,
                        row,
                        str(run.chunk + 1),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white",
                    )
            labels.append(f"{names.get(agent, agent)} · hueco {number}")
            row += 1
        handles.append(Patch(color=colour, label=names.get(agent, agent)))
    rounds = sorted({round(offer["time"], 1) for offer in offers})
    for when in rounds:
        axes.axvline(when, color="#888888", linestyle=":", linewidth=1, zorder=0)
    handles.append(
        axes.plot([], [], color="#888888", linestyle=":", label="llegan ofertas")[0]  # legend only
    )
    axes.set_yticks(range(rows), labels)
    axes.invert_yaxis()
    ends = [run.end for agent_lanes in by_agent.values() for lane in agent_lanes for run in lane]
    axes.set_xlim(0, max(ends, default=1))
    axes.set_xlabel("segundos desde que arrancó el planificador")
    axes.set_title(
        "¿Dónde y cuándo corrió cada tarea? (el número es la semana que cuenta)",
        loc="left",
        fontsize=11,
        pad=12,
    )
    timeline_frame(axes)
    figure.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=9)
    return figure


# -- sharing the cluster --------------------------------------------------------------------


@dataclass
class ShareSampler:
    """Polls GET /master/state on a background thread and records, for every framework, the
    cpus that it holds: those of its running tasks plus those of the offers it has not
    answered yet, which is what the allocator counts for DRF.

        with ShareSampler(cluster) as sampler:
            ...
        sampler.samples  # [(seconds, {framework ID: cpus}), ...]
    """

    cluster: Any  # a localmesos LocalCluster, or anything with state()
    interval: float = 0.1  # seconds between samples
    samples: list[tuple[float, dict[str, float]]] = field(init=False, default_factory=list)
    order: list[str] = field(init=False, default_factory=list)  # framework IDs, by arrival
    total_cpus: float = field(init=False, default=0.0)
    _stop: threading.Event = field(init=False, repr=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, repr=False, default=None)
    _start: float = field(init=False, repr=False, default=0.0)

    def __enter__(self) -> ShareSampler:
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="share-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                self.sample()  # one last look, once everything is over
                return

    def sample(self) -> None:
        state = self.cluster.state()
        self.total_cpus = sum(agent["resources"]["cpus"] for agent in state["slaves"])
        held = {}
        for framework in state["frameworks"] + state["completed_frameworks"]:
            if framework["id"] not in self.order:
                self.order.append(framework["id"])
            used, offered = framework["used_resources"], framework["offered_resources"]
            held[framework["id"]] = used["cpus"] + offered["cpus"]
        self.samples.append((self.elapsed(), held))


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Each value replaced by the mean of the `window` values centred on it (fewer at the ends),
    so that a change shows where it happened, not later."""
    before, after = (window - 1) // 2, window // 2
    result = []
    for index in range(len(values)):
        around = values[max(0, index - before) : index + after + 1]
        result.append(sum(around) / len(around))
    return result


def shares_figure(
    sampler: ShareSampler,
    labels: Sequence[str],
    events: Sequence[tuple[float, str]] = (),
    window: float = 0.5,
) -> Figure:
    """Each framework's share of the cluster's cpus over time, stacked, each point the mean of
    the samples of the `window` seconds around it; what is left above them is free."""
    times = [when for when, _ in sampler.samples]
    total = sampler.total_cpus or 1.0
    points = max(1, round(window / sampler.interval))
    series = [
        smooth([100 * held.get(framework_id, 0.0) / total for _, held in sampler.samples], points)
        for framework_id in sampler.order
    ]
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.subplots()
    colours = [FRAMEWORK_COLOURS[i % len(FRAMEWORK_COLOURS)] for i in range(len(series))]
    axes.stackplot(times, *series, labels=labels, colors=colours, alpha=0.9, linewidth=0)
    axes.axhline(50, color="#555555", linestyle=":", linewidth=1, label="mitad del clúster")
    gap = 0.08 * (times[-1] if times else 1)  # closer events than this: labels one above another
    last, line = None, 0
    for when, text in sorted(events):
        axes.axvline(when, color="#333333", linestyle="--", linewidth=1)
        line = line + 1 if last is not None and when - last < gap else 0
        last = when
        axes.annotate(
            text,
            (when, 100),
            xytext=(4, 3 + 12 * line),
            textcoords="offset points",
            fontsize=9,
            va="bottom",
            annotation_clip=False,
        )
    axes.set_xlim(0, times[-1] if times else 1)
    axes.set_ylim(0, 100)
    axes.set_ylabel("% de las cpus del clúster")
    axes.set_xlabel("segundos desde que empieza el primero")
    seconds = f"{window:g}".replace(".", ",")
    axes.set_title(
        f"Cpus que tiene cada planificador, en tareas u ofertas (media de {seconds} s)",
        loc="left",
        fontsize=11,
        pad=30,
    )
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return figure


# -- display --------------------------------------------------------------------------------


def image(figure: Figure, dpi: int = 100) -> Image:
    """The figure as a PNG for the notebook."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return Image(data=buffer.getvalue(), format="png")


# -- step 2: executors, messages and throughput ---------------------------------------------


def executors_table(
    messages: Sequence[dict], tasks: Sequence[dict], names: dict[str, str]
) -> Table:
    """The executor processes of a step 2 run, in the order that they said hello, with how their
    tasks ended. `messages` is the scheduler's timeline.messages; `tasks` the framework's tasks
    as GET /master/state lists them, whose statuses name the pid of the executor that ran them
    (container_status.executor_pid)."""
    ended: dict[int, dict[str, int]] = {}
    for task in tasks:
        pids = [
            status.get("container_status", {}).get("executor_pid")
            for status in task.get("statuses", [])
        ]
        pid = next((pid for pid in reversed(pids) if pid is not None), None)
        states = ended.setdefault(pid, {})
        states[task["state"]] = states.get(task["state"], 0) + 1
    rows = []
    for message in messages:
        if message["direction"] != "in" or message.get("type") != "hello":
            continue
        states = ended.get(message.get("pid"), {})
        rows.append(
            {
                "agente": names.get(message["agent"], message["agent"]),
                "pid del ejecutor": message.get("pid"),
                "dijo hello a los": f"{message['time']:.2f} s",
                "tareas terminadas": states.get("TASK_FINISHED", 0),
                "tareas fallidas": states.get("TASK_FAILED", 0),
                "tareas paradas": states.get("TASK_KILLED", 0),
            }
        )
    return Table(rows)


def describe_message(message: dict) -> str:
    """One framework message of step 2, in a few words."""
    kind = message.get("type")
    if kind == "hello":
        return f"hello (pid {message.get('pid')})"
    if kind == "progress":
        return f"progress: {message.get('task_id')}, {message.get('days')} de 7 días"
    if kind == "set":
        return f"set: progress={message.get('progress')}"
    if kind == "ack" and message.get("of") == "set":
        return f"ack de set: progress={message.get('progress')}"
    if kind == "ack" and message.get("of") == "cancel":
        tasks = message.get("tasks")
        return f"ack de cancel: para {tasks} tarea{'' if tasks == 1 else 's'}"
    return str(kind)


def messages_table(
    messages: Sequence[dict], names: dict[str, str], limit: int | None = None
) -> Table:
    """The framework messages of a step 2 run, in the order that the scheduler saw them: "in"
    from an executor, "out" to one. With `limit`, only the first ones, each on its row;
    without it, every run of progress messages in between is folded into a single row."""
    rows: list[dict[str, object]] = []
    folded: list[dict] = []

    def fold() -> None:
        if not folded:
            return
        counts: dict[str, int] = {}
        for message in folded:
            name = names.get(message["agent"], message["agent"])
            counts[name] = counts.get(name, 0) + 1
        first, last = folded[0]["time"], folded[-1]["time"]
        rows.append(
            {
                "a los": f"{first:.2f} a {last:.2f} s" if len(folded) > 1 else f"{first:.2f} s",
                "sentido": "ejecutor → planificador",
                "agente": ", ".join(f"{name} ({n})" for name, n in sorted(counts.items())),
                "mensaje": f"progress ({len(folded)} mensaje{'' if len(folded) == 1 else 's'})",
            }
        )
        folded.clear()

    for message in messages[:limit] if limit else messages:
        if limit is None and message.get("type") == "progress":
            folded.append(message)
            continue
        fold()
        rows.append(
            {
                "a los": f"{message['time']:.2f} s",
                "sentido": (
                    "planificador → ejecutor"
                    if message["direction"] == "out"
                    else "ejecutor → planificador"
                ),
                "agente": names.get(message["agent"], message["agent"]),
                "mensaje": describe_message(message),
            }
        )
    fold()
    return Table(rows)


def _decimal(value: float, digits: int = 1) -> str:
    """A number as Spanish writes it: a decimal comma."""
    return f"{value:.{digits}f}".replace(".", ",")


def throughput_figure(
    rates: dict[int, Sequence[float]], job: str = "tiny", weeks: int = 52
) -> Figure:
    """Chunks per second of the same job as step 1's command tasks and on step 2's executors:
    a bar for each step's median, a dot for each run, and how many times faster step 2 is."""
    labels = {
        1: "paso 1: tareas de comando\n(un Python por semana)",
        2: "paso 2: ejecutor propio\n(un Python por agente)",
    }
    steps = sorted(rates)
    medians = {step: statistics.median(rates[step]) for step in steps}
    figure = Figure(figsize=(10, 3.2), layout="constrained")
    axes = figure.subplots()
    top = max(max(values) for values in rates.values())
    for row, step in enumerate(steps):
        colour = FRAMEWORK_COLOURS[row % len(FRAMEWORK_COLOURS)]
        axes.barh(row, medians[step], height=0.6, color=colour, alpha=0.9)
        axes.plot(
            rates[step],
            [row] * len(rates[step]),
            linestyle="none",
            marker="o",
            markersize=5,
            markerfacecolor="white",
            markeredgecolor="#333333",
            zorder=3,
        )
        axes.text(
            max(max(rates[step]), medians[step]) + 0.015 * top,
            row,
            f"mediana: {_decimal(medians[step])} semanas/s",
            va="center",
            fontsize=10,
        )
    title = f"El mismo trabajo, «{job}» ({weeks} semanas diminutas), en 2 agentes"
    if 1 in medians and 2 in medians and medians[1] > 0:
        ratio = medians[2] / medians[1]
        title += f":\nel paso 2 cuenta {_decimal(ratio)} veces más semanas por segundo"
    axes.set_title(title, loc="left", fontsize=11)
    axes.set_yticks(range(len(steps)), [labels.get(step, f"paso {step}") for step in steps])
    axes.invert_yaxis()
    axes.set_xlim(0, top * 1.3)
    runs = max(len(values) for values in rates.values())
    axes.set_xlabel(
        "semanas contadas por segundo, de la primera oferta al último TASK_FINISHED\n"
        f"(barra: la mediana de {runs} ejecuciones; puntos: cada ejecución)"
    )
    timeline_frame(axes)
    return figure


# -- step 3: failures and recovery ----------------------------------------------------------

FAILURE_NAMES = {
    "restart": "planificador\nreiniciado",
    "agent": "agente\nperdido",
    "master": "maestro\ncaído",
    "standby": "planificador\nen reserva",
}
# The moments of a recovery (bench.recovery.Recording.milestones), in Spanish.
MILESTONE_NAMES = {
    "kill": "el fallo",
    "session": "ZooKeeper da por muerta la sesión del líder",
    "elected": "otro maestro es elegido líder",
    "agents": "los agentes se han registrado en el nuevo líder",
    "unreachable": "el maestro da el agente por perdido",
    "revive": "el planificador pide ofertas otra vez (REVIVE)",
    "subscribed": "el planificador se suscribe con el mismo framework ID",
    "reconcile": "el planificador reconcilia",
    "offers": "primera oferta",
    "launch": "primera tarea lanzada tras el fallo",
    "running": "esa tarea, en TASK_RUNNING",
    "done": "trabajo terminado (TEARDOWN)",
}
# What each phase of a recovery is, by the milestone that ends it: (kind, colour).
PHASE_KINDS = {
    "detect": ("esperar a que venza un plazo (sesión, pings) y, con él, la elección", "#56b4e9"),
    "scheduler": ("el planificador: arrancar, tomar el relevo, reaccionar", "#e69f00"),
    "reconnect": ("pymesos espera para reconectar", "#cc79a7"),
    "launch": ("oferta y ACCEPT", "#009e73"),
}
PHASE_OF = {
    "session": "detect",
    "unreachable": "detect",
    "elected": "detect",
    "revive": "scheduler",
    "offers": "launch",
    "launch": "launch",
}


def phase_kind(failure: str, milestone: str) -> str:
    if milestone == "subscribed":
        return "reconnect" if failure == "master" else "scheduler"
    return PHASE_OF[milestone]


def recovery_table(recording: Any) -> Table:
    """The moments of one recovery (a bench.recovery.Recording), in seconds from the failure."""
    moments = recording.milestones()
    return Table(
        [
            {
                "a los (s desde el fallo)": f"{when - recording.kill:+.3f}",
                "qué pasó": MILESTONE_NAMES.get(key, key),
            }
            for key, when in moments.items()
        ]
    )


def recovery_figure(recordings: Sequence[Any], paper: tuple[float, float] = (4.0, 8.0)) -> Figure:
    """One row per failure (bench.recovery.Recording): from the failure (0 s) to the first task
    launched after it, cut into its phases; then the rest of the job, to its TEARDOWN. The band
    is the master failover time that the Mesos paper measured (NSDI 2011, §6.6)."""
    figure = Figure(figsize=(10, 2.4 + 0.75 * len(recordings)), layout="constrained")
    axes = figure.subplots()
    axes.axvspan(*paper, color="#dddddd", alpha=0.6, zorder=0)
    axes.text(
        sum(paper) / 2,
        -0.62,
        "cambio de maestro en el artículo\nde Mesos (NSDI 2011): de 4 a 8 s",
        ha="center",
        va="bottom",
        fontsize=8,
        color="#555555",
    )
    right = 0.0
    for row, recording in enumerate(recordings):
        moments = {key: when - recording.kill for key, when in recording.milestones().items()}
        start = 0.0
        for milestone, seconds in recording.phases():
            kind = phase_kind(recording.failure, milestone)
            axes.barh(row, seconds, left=start, height=0.5, color=PHASE_KINDS[kind][1], zorder=2)
            start += seconds
        done = moments.get("done", start)
        axes.plot([start, done], [row, row], color="#888888", linewidth=1.5, zorder=1)
        axes.plot(done, row, marker="s", color="#555555", markersize=5, zorder=3)
        if "reconcile" in moments:
            axes.plot(moments["reconcile"], row - 0.38, marker="v", color="#333333", zorder=3)
        if "agents" in moments:
            axes.plot(moments["agents"], row - 0.38, marker="o", color="#0072b2", zorder=3)
        axes.plot(0, row, marker="X", color="#d55e00", markersize=10, zorder=4)
        axes.text(
            start + 0.08,
            row + 0.08,
            f"{_decimal(recording.recovery, 2)} s",
            va="center",
            fontsize=9,
            fontweight="bold",
        )
        right = max(right, done)
    handles = [Patch(color=colour, label=label) for label, colour in PHASE_KINDS.values()]
    handles += [
        axes.plot([], [], marker="X", color="#d55e00", linestyle="none", label="el fallo")[0],
        axes.plot([], [], marker="v", color="#333333", linestyle="none", label="reconcilia")[0],
        axes.plot([], [], marker="o", color="#0072b2", linestyle="none", label="agentes de vuelta")[
            0
        ],
        axes.plot([], [], color="#888888", marker="s", label="el trabajo sigue, hasta acabar")[0],
    ]
    axes.set_yticks(
        range(len(recordings)), [FAILURE_NAMES.get(r.failure, r.failure) for r in recordings]
    )
    axes.set_ylim(len(recordings) - 0.5, -0.9)
    axes.set_xlim(-0.4, max(right, paper[1]) + 0.4)
    axes.set_xlabel("segundos desde el fallo (la cifra: hasta la primera tarea lanzada después)")
    axes.set_title(
        "Cuatro fallos del mismo trabajo, y cuánto tarda en lanzarse la primera tarea después",
        loc="left",
        fontsize=11,
        pad=12,
    )
    timeline_frame(axes)
    figure.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=9)
    return figure
