"""Step 2's behaviours, as checks: the executor runs each task on a thread of its own and
sends the result in the TaskStatus's data; progress travels as a framework message, and the
scheduler handles it; and the whole job runs. See taller/checker.py.

The executor's checks call one method at a time on a `JobExecutor` with a fake driver: the
others that it calls are replaced on that instance (`run_chunk` by one that waits, `day_done`
by one that does nothing), so each check says something about one exercise only."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from jobs import bikeshare
from taller import fakes, whole
from taller.checker import Mismatch, Package, check, expect

SMALL = bikeshare.SIZES["small"]
WAIT = 5.0  # seconds for a thread to do what takes it milliseconds
HOLD = 10.0  # seconds that a held task waits at most, should a check fail to release it


@contextlib.contextmanager
def patched(module: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def task_info(package: Package, task_id: str, **data: Any) -> dict:
    """A TaskInfo as the agent hands it to the executor; `data` goes into its data field."""
    scheduler = package.scheduler
    fields = {"week": 1, "size": "small", "fail": False, **data}
    return {
        "task_id": {"value": task_id},
        "agent_id": {"value": "S0"},
        "name": task_id,
        "executor": scheduler.executor_info(scheduler.Settings()),
        "data": package.messages.encode(fields),
    }


def new_executor(package: Package) -> Any:
    executor = package.executor.JobExecutor()
    executor.day_done = lambda driver, task_id, running, days: None  # the progress exercise's
    return executor


# -- the executor: a task is a thread -----------------------------------------------------------


@check(2, "launch-thread", "launch")
def launch_thread(package: Package) -> None:
    executor, driver = package.executor.JobExecutor(), fakes.ExecutorDriver()
    gate, lock = threading.Event(), threading.Lock()
    started: list[tuple] = []

    def run_chunk(driver: Any, task_id: str, running: Any, size: Any, fail: bool) -> None:
        with lock:
            started.append((task_id, running, size, fail))
        gate.wait(HOLD)  # held: the chunk "counts" until the check lets it go

    executor.run_chunk = run_chunk
    tasks = [
        task_info(package, "chunk-0-attempt-1", week=0, progress=False),
        task_info(package, "chunk-3-attempt-1", week=3, fail=True, progress=False),
    ]
    raised: list[Exception] = []

    def launch() -> None:  # as pymesos's thread would, and with the check free to time it
        try:
            for task in tasks:
                executor.launchTask(driver, task)
        except Exception as error:
            raised.append(error)

    launcher = threading.Thread(target=launch, daemon=True)
    try:
        launcher.start()
        launcher.join(WAIT)
        expect(not launcher.is_alive(), "blocked", seconds=WAIT)
        if raised:
            raise raised[0]
        fakes.wait_for(lambda: len(started) == 2, WAIT)
        expect(len(started) == 2, "not-started", started=len(started))
        got = sorted((task, running.week, size, fail) for task, running, size, fail in started)
        expected = [("chunk-0-attempt-1", 0, SMALL, False), ("chunk-3-attempt-1", 3, SMALL, True)]
        expect(got == expected, "arguments", got=got, expected=expected)
        for task, running, _, _ in started:
            expect(
                executor.running.get(task) is running,
                "not-registered",
                task=task,
                running=sorted(executor.running),
            )
        expect(executor.progress is False, "progress-setting", sent=False, got=executor.progress)
    finally:
        gate.set()


BAD_DATA = [
    "%%% not base64",
    base64.b64encode(b"not json").decode(),
    base64.b64encode(b'[1, "small"]').decode(),
    base64.b64encode(b'{"week": 1}').decode(),
    base64.b64encode(b'{"week": 1, "size": "huge"}').decode(),
    base64.b64encode(b'{"week": 1, "size": ["small"]}').decode(),
    {"not": "text"},
    None,  # no data at all
]


@check(2, "launch-refused", "launch")
def launch_refused(package: Package) -> None:
    for data in BAD_DATA:
        executor, driver = new_executor(package), fakes.ExecutorDriver()
        executor.run_chunk = lambda *args: None
        task = task_info(package, "chunk-1-attempt-1")
        if data is None:
            del task["data"]
        else:
            task["data"] = data
        try:
            executor.launchTask(driver, task)
        except Exception as error:
            raise Mismatch("raised", data=data, error=error) from error
        case = f"data={data!r}"
        updates = [(u["state"], u.get("message", "")) for u in driver.updates]
        expect(
            len(updates) == 1
            and updates[0][0] == "TASK_FAILED"
            and updates[0][1].startswith("bad task data: "),
            "updates",
            case=case,
            got=updates,
        )
        expect(executor.running == {}, "running", case=case, running=sorted(executor.running))

    executor, driver = new_executor(package), fakes.ExecutorDriver()
    executor.run_chunk = lambda *args: None
    executor.cancelled = True
    executor.launchTask(driver, task_info(package, "chunk-2-attempt-1", week=2))
    case = "self.cancelled"
    updates = [(u["state"], u.get("message", "")) for u in driver.updates]
    expect(
        updates == [("TASK_KILLED", "cancelled by the scheduler")],
        "updates",
        case=case,
        got=updates,
    )
    expect(executor.running == {}, "running", case=case, running=sorted(executor.running))


def run_alone(package: Package, week: int, fail: bool = False) -> tuple[Any, fakes.ExecutorDriver]:
    """run_chunk, called on this thread as a task's thread would call it."""
    executor, driver = new_executor(package), fakes.ExecutorDriver()
    task_id = f"chunk-{week}-attempt-1"
    running = package.executor.Running(week)
    executor.running[task_id] = running
    executor.run_chunk(driver, task_id, running, SMALL, fail)
    return executor, driver


@check(2, "run-finished", "run-chunk")
def run_finished(package: Package) -> None:
    task_id = "chunk-2-attempt-1"
    try:
        executor, driver = run_alone(package, 2)
    except Exception as error:
        raise Mismatch("raised", error=error) from error
    states = driver.states(task_id)
    expected = ["TASK_RUNNING", "TASK_FINISHED"]
    expect(states == expected, "states", task=task_id, got=states, expected=expected)
    last = driver.last(task_id)
    sent = [message.get("type") for message in driver.messages]
    expect("data" in last, "no-data", messages=sent)
    try:
        counts = fakes.decode(last["data"])
    except ValueError as error:
        raise Mismatch("wrong-data", week=2, error=repr(error)) from error
    expect(
        counts == bikeshare.count_chunk(2, SMALL),
        "wrong-data",
        week=2,
        error="other counts",
    )
    expect(task_id not in executor.running, "still-running", task=task_id)


@check(2, "run-failed", "run-chunk")
def run_failed(package: Package) -> None:
    # The small job has weeks 0 to 3: counting week 9 raises ValueError.
    for case, week, fail, mentions in [
        ("fail=True", 2, True, "failing on purpose"),
        ("count_chunk(9, ...)", 9, False, "ValueError"),
    ]:
        try:
            executor, driver = run_alone(package, week, fail)
        except Exception as error:
            raise Mismatch("escaped", case=case, error=error) from error
        task_id = f"chunk-{week}-attempt-1"
        states = driver.states(task_id)
        expected = ["TASK_RUNNING", "TASK_FAILED"]
        expect(states == expected, "states", case=case, got=states, expected=expected)
        message = driver.last(task_id).get("message", "")
        expect(mentions in message, "message", case=case, got=message, expected=mentions)
        expect(task_id not in executor.running, "still-running", case=case)


# -- the executor: progress, and stopping at a day's end ----------------------------------------


@check(2, "progress-message", "progress")
def progress_message(package: Package) -> None:
    module = package.executor
    task_id = "chunk-5-attempt-1"
    wanted = [
        {"type": "progress", "task_id": task_id, "week": 5, "days": days} for days in range(1, 8)
    ]
    for case, every, on, expected in [
        ("PROGRESS_EVERY = 0", 0.0, True, wanted),
        ("self.progress = False", 0.0, False, []),
        ("PROGRESS_EVERY = 3600, and running.last_report now", 3600.0, True, []),
    ]:
        executor, driver = module.JobExecutor(), fakes.ExecutorDriver()
        executor.progress = on
        running = module.Running(5)
        with patched(module, "PROGRESS_EVERY", every):
            for days in range(1, 8):
                executor.day_done(driver, task_id, running, days)
        expect(driver.updates == [], "as-update", updates=driver.updates)
        got = driver.messages
        expect(got == expected, "messages", case=case, got=got, expected=expected)


@check(2, "progress-stop", "progress")
def progress_stop(package: Package) -> None:
    module = package.executor
    executor, driver = module.JobExecutor(), fakes.ExecutorDriver()
    running = module.Running(1)
    running.cancel("killed on request")
    try:
        executor.day_done(driver, "chunk-1-attempt-1", running, 1)
    except module.Cancelled:
        pass
    except Exception as error:
        raise Mismatch("other", error=error) from error
    else:
        raise Mismatch("not-stopped")

    # Through run_chunk, as a killTask would have it.
    executor = module.JobExecutor()
    running = module.Running(1)
    running.cancel("killed on request")
    executor.running["chunk-1-attempt-1"] = running
    executor.run_chunk(driver, "chunk-1-attempt-1", running, SMALL, False)
    last = driver.last("chunk-1-attempt-1")
    got = (last["state"], last.get("message"))
    expect(got == ("TASK_KILLED", "killed on request"), "killed", got=got, why="killed on request")


# -- the scheduler: messages from the executors -------------------------------------------------


def new_scheduler(package: Package) -> tuple[Any, list[int], fakes.Driver]:
    """A registered scheduler of the package with every chunk launched, the list that its
    progress callback fills (days done), and its driver."""
    progress: list[int] = []
    module = package.scheduler
    scheduler = module.JobScheduler(
        module.Settings(size="small"), on_progress=lambda done, total: progress.append(done)
    )
    driver = fakes.Driver()
    scheduler.registered(driver, {"value": "F0"}, {"hostname": "master"})
    scheduler.resourceOffers(driver, [fakes.offer(8.0, 8192.0)])
    driver.clear()
    return scheduler, progress, driver


def tell(package: Package, scheduler: Any, driver: fakes.Driver, agent: str, **fields: Any) -> None:
    """A framework message from our executor on `agent`."""
    executor = {"value": package.scheduler.EXECUTOR_ID}
    data = package.messages.encode(fields)
    scheduler.frameworkMessage(driver, executor, {"value": agent}, data)


@check(2, "messages-progress", "messages")
def messages_progress(package: Package) -> None:
    scheduler, progress, driver = new_scheduler(package)

    def progress_of(task_id: Any, days: Any, week: int = 0) -> dict:
        return {"type": "progress", "task_id": task_id, "week": week, "days": days}

    steps = [
        ("progress 1, 2, 3 of chunk-0-attempt-1", [progress_of("chunk-0-attempt-1", d)
                                                   for d in (1, 2, 3)], [1, 2, 3]),
        ("a late progress (2, after 3)", [progress_of("chunk-0-attempt-1", 2)], [1, 2, 3]),
        ("progress 1 of chunk-1-attempt-1", [progress_of("chunk-1-attempt-1", 1, 1)],
         [1, 2, 3, 4]),
        ("a progress of a task that does not exist", [progress_of("chunk-9-attempt-1", 5)],
         [1, 2, 3, 4]),
        ("a progress whose task_id is a list", [progress_of(["chunk-0"], 5)], [1, 2, 3, 4]),
        ("a progress whose days are not a number", [progress_of("chunk-1-attempt-1", "many", 1)],
         [1, 2, 3, 4]),
        ("99 days of chunk-3-attempt-1", [progress_of("chunk-3-attempt-1", 99, 3)],
         [1, 2, 3, 4, 11]),
    ]  # fmt: skip
    for what, sent, expected in steps:
        for message in sent:
            tell(package, scheduler, driver, "S0", **message)
        expect(progress == expected, "bar", what=what, got=list(progress), expected=expected)
    counts = bikeshare.count_chunk(0, SMALL)
    finished = fakes.update(
        "chunk-0-attempt-1", "TASK_FINISHED", data=package.messages.encode(counts)
    )
    scheduler.statusUpdate(driver, finished)
    expected = [1, 2, 3, 4, 11, 15]
    what = "the TASK_FINISHED of chunk-0-attempt-1"
    expect(progress == expected, "bar", what=what, got=list(progress), expected=expected)
    for days in (5, 6):
        tell(package, scheduler, driver, "S0", **progress_of("chunk-0-attempt-1", days))
    what = "a late progress of chunk-0-attempt-1, which has ended"
    expect(progress == expected, "bar", what=what, got=list(progress), expected=expected)


@check(2, "messages-not-ours", "messages")
def messages_not_ours(package: Package) -> None:
    executor = {"value": package.scheduler.EXECUTOR_ID}
    for data in [
        "%%% not base64",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
    ]:
        scheduler, progress, driver = new_scheduler(package)
        try:
            scheduler.frameworkMessage(driver, executor, {"value": "S0"}, data)
        except Exception as error:
            raise Mismatch("raised", data=data, error=error) from error
        messages = scheduler.timeline.messages
        expect(
            messages == [] and progress == [],
            "recorded",
            data=data,
            messages=messages,
            progress=progress,
        )
    scheduler, progress, driver = new_scheduler(package)
    data = package.messages.encode({"type": "gossip"})
    try:
        scheduler.frameworkMessage(driver, executor, {"value": "S0"}, data)
    except Exception as error:
        raise Mismatch("raised", data=data, error=error) from error
    expect(progress == [], "recorded", data=data, messages="-", progress=progress)


@check(2, "messages-executors", "messages")
def messages_executors(package: Package) -> None:
    scheduler, _, driver = new_scheduler(package)
    executor_id = package.scheduler.EXECUTOR_ID
    tell(package, scheduler, driver, "S1", type="hello", pid=4242, agent_id="S1")
    tell(package, scheduler, driver, "S0", type="ack", of="set", progress=False)
    executors = dict(scheduler.executors)
    expected = {"S0": executor_id, "S1": executor_id}
    expect(executors == expected, "executors", got=executors)
    messages = [{k: v for k, v in m.items() if k != "time"} for m in scheduler.timeline.messages]
    wanted = [
        {"direction": "in", "agent": "S1", "type": "hello", "pid": 4242, "agent_id": "S1"},
        {"direction": "in", "agent": "S0", "type": "ack", "of": "set", "progress": False},
    ]
    expect(messages == wanted, "timeline", got=messages)
    scheduler.cancel(driver)
    sent = sorted(
        (call["agent"]["value"], call["message"]["type"])
        for call in driver.of("sendFrameworkMessage")
    )
    expect(sent == [("S0", "cancel"), ("S1", "cancel")], "cancel", got=sent)


# -- the whole job ------------------------------------------------------------------------------


@check(2, "job", None)
def job(package: Package) -> str:
    return whole.run_main(package)
