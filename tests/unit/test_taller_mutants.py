"""The checker can fail, and says the right thing (issue 14, item 3).

Each wrong answer below is a small variant of the solution: one method of a step's package,
with one snippet of its source replaced, as an attendee might have written it. Against each,
the checker must stop at the check meant for it, and print that check's hint. The untouched
skeletons must fail their first check, with its hint. (That every check passes on the
solution is in tests/integration/test_taller.py: its last check runs a cluster.)"""

from __future__ import annotations

import importlib
import inspect
import io
import textwrap
from dataclasses import dataclass

import pytest

from taller import catalog, checker


@dataclass(frozen=True)
class Mutant:
    name: str
    target: str  # "module:Class.method" of the solution
    old: str  # a snippet of the method's source (dedented to the def's level)...
    new: str  # ...and what the wrong answer has instead
    caught_by: str  # the check that must catch it
    also: tuple[tuple[str, str], ...] = ()  # more (old, new) pairs, for a change in two places

    @property
    def edits(self) -> list[tuple[str, str]]:
        return [(self.old, self.new), *self.also]

    @property
    def step(self) -> int:
        return int(self.target[len("step")])

    @property
    def exercise(self) -> str:
        return next(c.exercise for c in checker.checks(self.step) if c.name == self.caught_by)


S1 = "step1_scheduler.scheduler:JobScheduler"
E2 = "step2_executor.executor:JobExecutor"
S2 = "step2_executor.scheduler:JobScheduler"
S3 = "step3_failover.scheduler:JobScheduler"

MUTANTS = [
    # == step 1, offers ===========================================================================
    Mutant(
        "never-declines",
        f"{S1}.resourceOffers",
        """\
        else:
            driver.declineOffer(offer["id"], filters=DECLINE_FILTER)
            self._explain_decline(offer)
""",
        "",
        "offer-declines",
    ),
    Mutant(
        "declines-without-filter",
        f"{S1}.resourceOffers",
        'driver.declineOffer(offer["id"], filters=DECLINE_FILTER)',
        'driver.declineOffer(offer["id"])',
        "offer-declines",
    ),
    Mutant(
        "one-task-per-offer",
        f"{S1}.resourceOffers",
        "        while (\n",
        "        if (\n",
        "offer-fills",
    ),
    Mutant(
        "no-rounding",
        f"{S1}.resourceOffers",
        "cpus = round(cpus - self.settings.task_cpus, 3)",
        "cpus = cpus - self.settings.task_cpus",
        "offer-fills",
    ),
    Mutant(
        "never-suppresses",
        f"{S1}.resourceOffers",
        "        driver.suppressOffers()\n",
        "",
        "offer-suppress",
    ),
    # == step 1, updates ==========================================================================
    Mutant(
        "counts-a-duplicate-finished-twice",
        f"{S1}.statusUpdate",
        """\
    if state == "TASK_FINISHED":
        del self.running[task_id]
""",
        """\
    if state == "TASK_FINISHED":
""",
        "update-duplicate",
    ),
    Mutant(
        "duplicates-not-ignored",
        f"{S1}.statusUpdate",
        """\
    if launch is None:
        # Status updates arrive at least once: a repeated update for a task that is
        # already done must change nothing.
        log.debug("ignoring %s for %s, which is no longer running", state, task_id)
        return
""",
        "",
        "update-duplicate",
    ),
    Mutant(
        "retries-task-failed-only",
        f"{S1}.statusUpdate",
        "elif state in FAILED_STATES:",
        'elif state == "TASK_FAILED":',
        "update-failed",
    ),
    # == step 2, launch ===========================================================================
    Mutant(
        "counts-on-pymesos-thread",
        f"{E2}.launchTask",
        "thread.start()",
        "thread.run()",
        "launch-thread",
    ),
    Mutant(
        "task-not-in-running",
        f"{E2}.launchTask",
        """\
    with self.lock:
        self.running[task_id] = running
""",
        "",
        "launch-thread",
    ),
    Mutant(
        "bad-data-raises",
        f"{E2}.launchTask",
        """\
    try:
        # The scheduler says in the task's `data` which chunk to count.
        chunk = messages.decode(task.get("data"))
        week, size = chunk["week"], bikeshare.SIZES[chunk["size"]]
    except (ValueError, KeyError, TypeError) as error:
        self.send_update(driver, task_id, "TASK_FAILED", message=f"bad task data: {error!r}")
        return
""",
        """\
    chunk = messages.decode(task.get("data"))
    week, size = chunk["week"], bikeshare.SIZES[chunk["size"]]
""",
        "launch-refused",
    ),
    Mutant(
        "ignores-the-cancel",
        f"{E2}.launchTask",
        """\
    if self.cancelled:
        self.send_update(driver, task_id, "TASK_KILLED", message="cancelled by the scheduler")
        return
""",
        "",
        "launch-refused",
    ),
    # == step 2, run-chunk ========================================================================
    Mutant(
        "result-as-a-framework-message",
        f"{E2}.run_chunk",
        'self.finish(driver, task_id, "TASK_FINISHED", data=messages.encode(counts))',
        'self.send_message(driver, {"type": "result", "task_id": task_id, **counts})\n'
        '        self.finish(driver, task_id, "TASK_FINISHED")',
        "run-finished",
    ),
    Mutant(
        "no-task-running",
        f"{E2}.run_chunk",
        '    self.send_update(driver, task_id, "TASK_RUNNING")\n',
        "",
        "run-finished",
    ),
    Mutant(
        "a-failure-escapes-the-thread",
        f"{E2}.run_chunk",
        """\
    except Exception as error:  # whatever went wrong, the scheduler hears of it
        log.warning("%s failed: %r", task_id, error)
        self.finish(driver, task_id, "TASK_FAILED", message=f"{type(error).__name__}: {error}")
""",
        "",
        "run-failed",
    ),
    # == step 2, progress =========================================================================
    Mutant(
        "progress-as-a-status-update",
        f"{E2}.day_done",
        """\
        self.send_message(
            driver,
            {"type": messages.PROGRESS, "task_id": task_id, "week": running.week, "days": days},
        )
""",
        """\
        self.send_update(driver, task_id, "TASK_RUNNING", data=messages.encode({"days": days}))
""",
        "progress-message",
    ),
    Mutant(
        "no-brake",
        f"{E2}.day_done",
        "if self.progress and time.monotonic() - running.last_report >= PROGRESS_EVERY:",
        "if self.progress:",
        "progress-message",
    ),
    Mutant(
        "ignores-the-progress-setting",
        f"{E2}.day_done",
        "if self.progress and time.monotonic()",
        "if time.monotonic()",
        "progress-message",
    ),
    Mutant(
        "never-stops",
        f"{E2}.day_done",
        """\
    if running.stop.is_set():
        raise Cancelled  # a day boundary is where a chunk can stop cleanly
""",
        "",
        "progress-stop",
    ),
    # == step 2, messages =========================================================================
    Mutant(
        "progress-by-week-not-by-running-task",
        f"{S2}.frameworkMessage",
        """\
        launch = self.running.get(task_id) if isinstance(task_id, str) else None
        # A message about a task that has ended is late: its status update came first.
        if launch is not None and isinstance(days, int):
            self.advance(launch.chunk, min(days, bikeshare.WEEKDAYS))
""",
        """\
        self.advance(message["week"], min(days, bikeshare.WEEKDAYS))
""",
        "messages-progress",
    ),
    Mutant(
        "a-message-not-ours-raises",
        f"{S2}.frameworkMessage",
        """\
    try:
        message = messages.decode(data)
    except ValueError as error:
        log.warning("ignoring a message from agent %s that is not ours: %s", agent, error)
        return
""",
        """\
    message = messages.decode(data)
""",
        "messages-not-ours",
    ),
    Mutant(
        "executor-not-remembered",
        f"{S2}.frameworkMessage",
        '    self.executors[agent] = executor_id["value"]\n',
        "",
        "messages-executors",
    ),
    # == step 3, record ===========================================================================
    Mutant(
        "result-kept-in-memory-only",
        f"{S3}.record",
        "if self.store.save_result(chunk, counts):",
        "if chunk not in self.results:",
        "record-checkpoint",
    ),
    Mutant(
        "never-ends",
        f"{S3}.record",
        "    self.end_if_done()\n",
        "",
        "record-checkpoint",
    ),
    Mutant(
        "overwrites-the-first-result",
        f"{S3}.record",
        """\
    if self.store.save_result(chunk, counts):
        self.recorded.append(chunk)
        log.info("chunk %d: result of %s recorded", chunk, task_id)
    else:
        # Another scheduler recorded it first (the one before us, still alive for a moment).
        # Its result is the one that counts, for everyone.
        counts = self.store.result(chunk) or counts
        log.info("chunk %d: already recorded; %s changes nothing", chunk, task_id)
""",
        """\
    self.store.save_result(chunk, counts)
    self.recorded.append(chunk)
""",
        "record-once",
    ),
    Mutant(
        "own-result-wins",
        f"{S3}.record",
        "        counts = self.store.result(chunk) or counts\n",
        "",
        "record-once",
    ),
    Mutant(
        "redundant-attempts-left-running",
        f"{S3}.record",
        """\
    for other, launch in list(self.running.items()):
        if launch.chunk == chunk:  # another attempt at the same chunk: no longer needed
            self.kill_redundant(driver, other, "may still run")
""",
        "",
        "record-redundant",
    ),
    # == step 3, updates ==========================================================================
    Mutant(
        "acknowledges-before-recording",
        f"{S3}.statusUpdate",
        """\
    self.unanswered.discard(task_id)
""",
        """\
    self.unanswered.discard(task_id)
    self.acknowledge(driver, update)
""",
        "updates-ack-after",
        also=(
            (
                '        log.debug("ignoring %s for %s, which is not running", state, task_id)\n'
                "    self.acknowledge(driver, update)\n",
                '        log.debug("ignoring %s for %s, which is not running", state, task_id)\n',
            ),
        ),
    ),
    Mutant(
        "acknowledges-finished-only",
        f"{S3}.statusUpdate",
        "    self.acknowledge(driver, update)\n",
        '    if state == "TASK_FINISHED":\n        self.acknowledge(driver, update)\n',
        "updates-ack-all",
    ),
    Mutant(
        "done-weeks-not-special",
        f"{S3}.statusUpdate",
        """\
    elif task[0] in self.results:
        self.already_done(driver, task_id, state)
""",
        "",
        "updates-done",
    ),
    # == step 3, reconcile ========================================================================
    Mutant(
        "implicit-only",
        f"{S3}.reconcile",
        "    self.ask(driver, self._reconciliation, RECONCILE_FIRST_RETRY)\n",
        "",
        "reconcile-ask",
    ),
    Mutant(
        "explicit-only",
        f"{S3}.reconcile",
        "    self.call(driver.reconcileTasks, [])\n",
        "",
        "reconcile-ask",
    ),
    Mutant(
        "asks-once",
        f"{S3}.reconcile",
        "    self.ask(driver, self._reconciliation, RECONCILE_FIRST_RETRY)\n",
        "    tasks = [{'task_id': {'value': t}} for t in sorted(self.running)]\n"
        "    self.call(driver.reconcileTasks, tasks)\n",
        "reconcile-retry",
    ),
]


def source_of(mutant: Mutant) -> tuple[object, str, str]:
    """The class that owns the method, the method's name and its source (with decorators)."""
    module_name, qualname = mutant.target.split(":")
    owner_name, name = qualname.split(".")
    owner = getattr(importlib.import_module(module_name), owner_name)
    function = inspect.unwrap(owner.__dict__[name])
    return owner, name, textwrap.dedent(inspect.getsource(function))


def apply(mutant: Mutant, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, name, source = source_of(mutant)
    module = importlib.import_module(mutant.target.split(":")[0])
    namespace: dict = {}
    # In the module's globals, so the method sees what the solution's sees (and is decorated
    # again by the same decorators).
    for old, new in mutant.edits:
        source = source.replace(old, new)
    code = compile(source, f"<mutant {mutant.name}>", "exec")
    exec(code, vars(module), namespace)
    monkeypatch.setattr(owner, name, namespace[name])


def report(step: int, package: str, lang: str = "es") -> tuple[int, str]:
    out = io.StringIO()
    status = checker.run(step, package, lang, out)
    return status, out.getvalue()


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_changes_its_method(mutant: Mutant) -> None:
    _, _, source = source_of(mutant)
    for old, _ in mutant.edits:
        assert source.count(old) == 1, f"{mutant.name}: {old!r} is not once in the solution"


def test_each_exercise_has_two_wrong_answers_at_least() -> None:
    exercises = {(step, name) for step, name in catalog.EXERCISES}
    caught = {(m.step, m.exercise) for m in MUTANTS}
    assert caught == exercises
    for exercise in sorted(exercises):
        assert sum((m.step, m.exercise) == exercise for m in MUTANTS) >= 2, exercise


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_a_wrong_answer_is_caught_by_its_check_with_its_hint(
    mutant: Mutant, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(mutant, monkeypatch)
    status, output = report(mutant.step, checker.SOLUTIONS[mutant.step])
    names = [c.name for c in checker.checks(mutant.step)]
    position = names.index(mutant.caught_by) + 1
    text = catalog.CHECKS[mutant.step, mutant.caught_by]
    assert status == 1, output
    assert f"✘ {position:>{len(str(len(names)))}}/{len(names)}  {text.title('es')}" in output
    assert text.hint("es")[:60] in " ".join(output.split())
    assert f"Pasan {position - 1} de {len(names)} comprobaciones" in output


@pytest.mark.parametrize("step", checker.STEPS)
@pytest.mark.parametrize("lang", ["es", "en"])
def test_an_untouched_skeleton_fails_its_first_check_with_its_hint(step: int, lang: str) -> None:
    status, output = report(step, checker.skeleton(step), lang)
    first = checker.checks(step)[0]
    text = first.text
    assert status == 1
    flat = " ".join(output.split())
    assert f"✘ {1:>{len(str(len(checker.checks(step))))}}/" in output
    assert text.title(lang) in output
    assert text.hint(lang)[:60] in flat
    assert "NotImplementedError" in flat
    stub = "es todavía el esqueleto del ejercicio" if lang == "es" else "is still the skeleton"
    assert stub in flat
    assert f"taller/paso{step}/" in flat
