# Generated from step2_executor/executor.py by `python -m taller generate`: the workshop's
# skeleton of step 2. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=2`.
# fingerprint: 36317c8f5eb5c591
"""The executor: one long-lived process per agent that runs our chunks as threads.

Mesos starts it on an agent with the first task that carries our ExecutorInfo, as
`python -m taller.paso2.executor`, and tells it who it is in environment variables
(MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID...). Every later task for the same
executor ID on that agent goes to this same process: no new Python, no imports, no process
per chunk.

pymesos calls the callbacks below on its single I/O thread, one at a time. A callback that
raises kills that thread, and pymesos tears the executor down with every task in it, so the
callbacks catch what can fail and report it as a task status instead. The chunks run on a
thread each, which sends its own status updates and messages: pymesos guards its connection
to the agent with a lock.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPException

from pymesos import Executor, MesosExecutorDriver

from jobs import bikeshare
from taller.paso2 import messages

log = logging.getLogger("taller.paso2.executor")

# At most one progress message per task in this many seconds. A message is cheap but not free:
# an HTTP request to the agent, a hop to the master, and a callback on the scheduler's single
# thread. A chunk that takes a few milliseconds sends none; the bar moves when it finishes.
PROGRESS_EVERY = 0.2

# What pymesos raises when a call to the agent fails: RuntimeError when it is not connected or
# the agent answers with an error, OSError or HTTPException when the connection breaks, and
# AttributeError when it breaks while pymesos's own thread is dropping it (its `_send` closes
# `self._conn`, which that thread may just have set to None).
SEND_ERRORS = (RuntimeError, OSError, HTTPException, AttributeError)


class Cancelled(Exception):
    """Raised inside a chunk, at a day boundary, to stop it."""


@dataclass
class Running:
    """One task of ours, running on its own thread."""

    week: int
    stop: threading.Event = field(default_factory=threading.Event)
    last_report: float = field(default_factory=time.monotonic)  # start, or last progress
    why: str = ""  # why it was stopped: the message of its TASK_KILLED

    def cancel(self, why: str) -> None:
        if not self.stop.is_set():
            self.why = why
            self.stop.set()


class JobExecutor(Executor):
    def __init__(self) -> None:
        self.agent_id: str | None = None
        self.running: dict[str, Running] = {}  # by task ID
        # `running` changes on pymesos's thread (launches) and on the tasks' threads (ends).
        self.lock = threading.Lock()
        # Set on pymesos's thread, read by the tasks' threads: a plain bool is enough, since
        # each read or assignment is atomic.
        self.progress = True  # send a progress message after each day of a chunk
        self.cancelled = False  # after a cancel, tasks that arrive are killed at once

    # -- registration -------------------------------------------------------------------------

    def registered(self, driver, executor_info, framework_info, agent_info) -> None:
        self.agent_id = agent_info["id"]["value"]
        log.info(
            "executor %s of framework %s registered on agent %s (%s)",
            executor_info["executor_id"]["value"],
            framework_info["id"]["value"],
            self.agent_id,
            agent_info.get("hostname"),
        )
        # The first message to the scheduler: executors can talk before any task finishes.
        self.send_message(
            driver, {"type": messages.HELLO, "pid": os.getpid(), "agent_id": self.agent_id}
        )

    def reregistered(self, driver, agent_info) -> None:
        log.info("re-registered with agent %s", agent_info["id"]["value"])

    def disconnected(self, driver) -> None:
        # The agent may only be restarting. Mesos always sets MESOS_CHECKPOINT ("1" or
        # "0"), and pymesos takes any value as "checkpointing on", so it reconnects
        # rather than shutting us down; the agent's SHUTDOWN is what ends this process.
        log.info("disconnected from the agent")

    def error(self, driver, message) -> None:
        log.error("the agent reported an error: %s", message)

    def launchTask(self, driver, task) -> None:
        """EJERCICIO launch (paso 2).

        Arranca la tarea en un hilo propio, y vuelve enseguida.

        pymesos llama a este método desde su único hilo: si cuentas la semana aquí, el ejecutor no
        atiende nada más mientras tanto; si lanzas una excepción, pymesos muere, y con él todas las
        tareas del ejecutor.

        - task_id = task["task_id"]["value"]. Qué semana contar viene en el campo data de la tarea:
          chunk = messages.decode(task.get("data")), con chunk["week"] y chunk["size"] (una clave
          de bikeshare.SIZES). Si data no se puede leer (ValueError, KeyError o TypeError):
          self.send_update(driver, task_id, "TASK_FAILED", message=f"bad task data: {error!r}"),
          y vuelve.
        - Si chunk trae "progress", guárdalo en self.progress (bool).
        - Si self.cancelled: TASK_KILLED con message="cancelled by the scheduler", y vuelve.
        - running = Running(week); guárdalo en self.running[task_id] (con self.lock), y arranca
          threading.Thread(target=self.run_chunk, args=(driver, task_id, running, size, fail),
          name=task_id, daemon=True), con fail = bool(chunk.get("fail", False)).

        Lo explica el post del paso 2, en «Una tarea, un hilo»:
        _posts/2026-11-24-paso-2-un-ejecutor-propio-y-mensajes.md
        Comprueba tu código con: make ejercicio PASO=2
        """
        raise NotImplementedError("ejercicio launch: escribe launchTask() (lee su docstring)")

    def run_chunk(
        self, driver, task_id: str, running: Running, size: bikeshare.Size, fail: bool
    ) -> None:
        """EJERCICIO run-chunk (paso 2).

        Cuenta la semana en el hilo de la tarea, y di cómo acabó.

        Toda tarea acaba con una actualización de estado, pase lo que pase.

        - Primero, self.send_update(driver, task_id, "TASK_RUNNING").
        - Si fail, lanza RuntimeError(f"chunk {running.week}: failing on purpose (--fail-chunk)").
        - Cuenta: counts = bikeshare.count_chunk(running.week, size, on_day=...), con un on_day
          que llame a self.day_done(driver, task_id, running, days) tras cada día.
        - La última actualización de la tarea la envía self.finish(driver, task_id, estado, ...),
          que antes la quita de self.running: cuando el planificador la recibe, la tarea ya no
          cuenta aquí como en marcha.
        - Si todo va bien, el resultado viaja en la propia actualización, que es fiable:
          self.finish(driver, task_id, "TASK_FINISHED", data=messages.encode(counts)).
          No lo envíes como mensaje del framework: Mesos puede perderlo sin avisar.
        - Si day_done lanza Cancelled: TASK_KILLED, con message=running.why.
        - Cualquier otra excepción: TASK_FAILED, con message=f"{type(error).__name__}: {error}".

        Lo explica el post del paso 2, en «Una tarea, un hilo»:
        _posts/2026-11-24-paso-2-un-ejecutor-propio-y-mensajes.md
        Comprueba tu código con: make ejercicio PASO=2
        """
        raise NotImplementedError("ejercicio run-chunk: escribe run_chunk() (lee su docstring)")

    def finish(self, driver, task_id: str, state: str, **fields: str) -> None:
        """A task's last update. The task leaves `running` before the update leaves us: once
        the scheduler has it, a kill or a shutdown must not find the task still here."""
        with self.lock:
            del self.running[task_id]
        self.send_update(driver, task_id, state, **fields)

    def day_done(self, driver, task_id: str, running: Running, days: int) -> None:
        """EJERCICIO progress (paso 2).

        Tras cada día de la semana: envía el progreso, o para si te lo han pedido.

        count_chunk llama a este método, en el hilo de la tarea, al acabar cada día.

        - Si running.stop está puesto (killTask, un cancel, un shutdown), lanza Cancelled: el
          final de un día es donde una semana puede dejarse a medias sin estropear nada.
        - Si self.progress está activo y han pasado al menos PROGRESS_EVERY segundos desde
          running.last_report: pon running.last_report = time.monotonic() y envía el progreso
          como mensaje del framework (no como actualización de estado):
          self.send_message(driver, {"type": messages.PROGRESS, "task_id": task_id,
          "week": running.week, "days": days}).

        Lo explica el post del paso 2, en «El progreso, con freno»:
        _posts/2026-11-24-paso-2-un-ejecutor-propio-y-mensajes.md
        Comprueba tu código con: make ejercicio PASO=2
        """
        raise NotImplementedError("ejercicio progress: escribe day_done() (lee su docstring)")

    def frameworkMessage(self, driver, data) -> None:
        try:
            message = messages.decode(data)
        except ValueError as error:
            log.warning("ignoring a message that is not ours: %s", error)
            return
        kind = message.get("type")
        if kind == messages.CANCEL:
            self.cancelled = True
            stopped = self.stop_all("cancelled by the scheduler")
            log.info("cancel: stopping %d running tasks", stopped)
            self.send_message(driver, {"type": messages.ACK, "of": kind, "tasks": stopped})
        elif kind == messages.SET and isinstance(message.get("progress"), bool):
            # A parameter changed mid-run: the running chunks follow it from their next day.
            self.progress = message["progress"]
            log.info("progress messages are now %s", "on" if self.progress else "off")
            self.send_message(driver, {"type": messages.ACK, "of": kind, "progress": self.progress})
        else:
            log.warning("ignoring an unknown message: %r", message)

    def killTask(self, driver, task_id) -> None:
        with self.lock:
            running = self.running.get(task_id["value"])
        if running is None:
            # It has ended already, and its terminal update is on its way.
            log.info("kill for %s, which is not running here", task_id["value"])
            return
        running.cancel("killed on request")  # its thread reports TASK_KILLED at the next day

    def shutdown(self, driver) -> None:
        # The agent wants us gone: the framework was torn down, or the agent is stopping.
        # pymesos stops its thread when this returns (and may call it a second time), and
        # main() returns; the tasks' threads are daemons, so they do not hold the process up.
        self.cancelled = True
        stopped = self.stop_all("the executor is shutting down")
        log.info("shutting down: stopping %d running tasks", stopped)

    def stop_all(self, why: str) -> int:
        with self.lock:
            tasks = list(self.running.values())
        for running in tasks:
            running.cancel(why)
        return len(tasks)

    # -- talking to the agent, from any thread --------------------------------------------------

    def send_update(
        self, driver, task_id: str, state: str, *, message: str = "", data: str | None = None
    ) -> None:
        status: dict = {"task_id": {"value": task_id}, "state": state}
        if message:
            status["message"] = message
        if data is not None:
            status["data"] = data
        try:
            driver.sendStatusUpdate(status)
        except SEND_ERRORS as error:
            # The agent is gone, or going: it reports what it still has of ours on its own.
            log.error("could not send %s for %s: %r", state, task_id, error)

    def send_message(self, driver, message: dict) -> None:
        try:
            driver.sendFrameworkMessage(messages.encode(message))
        except SEND_ERRORS as error:
            log.warning("could not send a %s message: %r", message["type"], error)


def main() -> int:
    if "MESOS_AGENT_ENDPOINT" not in os.environ:
        print(
            "python -m taller.paso2.executor: error: a Mesos agent starts this program, "
            "and sets MESOS_AGENT_ENDPOINT and the other MESOS_* variables that it reads",
            file=sys.stderr,
        )
        return 2
    # stderr is a file in the executor's sandbox, on the agent: the place to look when an
    # executor misbehaves.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pymesos").propagate = False  # it has a stderr handler of its own
    driver = MesosExecutorDriver(JobExecutor(), use_addict=True)
    driver.run()  # until the agent shuts us down, or the connection to it is lost
    return 0


if __name__ == "__main__":
    sys.exit(main())
