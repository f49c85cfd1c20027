# Generated from step3_failover/checkpoint.py by `python -m taller generate`: the workshop's
# skeleton of step 3. Write the functions that raise NotImplementedError, and check
# them with `make ejercicio PASO=3`.
# fingerprint: 4a7cdb279dd4f0ce
"""The job's checkpoint: what a scheduler must find after a crash, wherever it restarts.

A scheduler keeps its state in memory, and memory dies with the process. What a new scheduler
(the same one restarted, or a standby that takes over) needs to carry on lives here instead:

    job           what the job is: its size and its ExecutorInfo, so that every instance runs
                  the same job on the same executors
    framework_id  the framework ID that the master gave us: subscribing again with it is what
                  makes Mesos hand us our running tasks and executors back
    tasks/ID      every task, written down *before* it is launched: a new scheduler knows every
                  task that may exist, asks the master about each one, and never reuses an ID
    results/N     each chunk's result, written once: the first result of a chunk is the one
                  that counts, and a second one (a duplicate update, another attempt) is refused

Every write is **create-if-absent**: it succeeds only if nothing has that name yet, atomically,
even with two schedulers writing at once. That is what makes "exactly once" simple: whoever
creates `results/7` first has counted chunk 7, and everyone else learns that it is done.

Two backends behave the same: a directory on this machine (`--state DIR`) and ZooKeeper
(`--state zk://HOST:PORT/PATH`), where schedulers on different machines share the state. Each
also elects the one scheduler that may drive the framework (`leadership()`): a file lock in the
directory, kazoo's lock recipe in ZooKeeper.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

log = logging.getLogger("taller.paso3")

ZOOKEEPER = re.compile(r"^zk://(?P<hosts>[^/\s]+)(?P<path>/[^\s]*[^/\s])$")


class StoreError(Exception):
    """The checkpoint could not be read or written; the message says why."""


class Leadership:
    """Held by the one scheduler that drives the framework. `lost` is set if it stops being
    the leader without having let go (its ZooKeeper session expired)."""

    def __init__(self) -> None:
        self.lost = threading.Event()


class Checkpoint:
    """The job's state, on top of four primitives that each backend implements: `create`
    (if absent), `read`, `delete` and `list`. Values are bytes; names are `folder/name`."""

    description = ""  # where the state lives, for messages

    # -- the primitives -------------------------------------------------------------------------

    def create(self, name: str, value: bytes) -> bool:
        """Create `name` holding `value`, unless it exists. True if this call created it."""
        raise NotImplementedError

    def read(self, name: str) -> bytes | None:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def list(self, folder: str) -> list[str]:
        raise NotImplementedError

    def leadership(
        self, me: str, on_wait: Callable[[str], None]
    ) -> contextlib.AbstractContextManager[Leadership]:
        """Wait until this instance leads the job (calling `on_wait(leader)` once if another
        one leads it now); the context manager's value is a `Leadership`."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the job's state ------------------------------------------------------------------------

    def check_job(self, job: dict) -> None:
        """The first scheduler writes down what the job is; the others must run the same one."""
        value = json.dumps(job, sort_keys=True).encode()
        if not self.create("job", value) and self.read("job") != value:
            raise StoreError(
                f"{self.description} holds another job ({self.read('job')!r}); use another "
                "--state, or the same options as the schedulers that started it"
            )

    def framework_id(self) -> str | None:
        value = self.read("framework_id")
        return value.decode() if value else None

    def save_framework_id(self, framework_id: str) -> bool:
        """False if the checkpoint already names another framework."""
        return self.create("framework_id", framework_id.encode()) or (
            self.framework_id() == framework_id
        )

    def forget_framework_id(self, framework_id: str) -> None:
        if self.framework_id() == framework_id:
            self.delete("framework_id")

    def save_task(self, task_id: str, agent_id: str) -> bool:
        """Write a task down before launching it. False if that ID was ever used."""
        return self.create(f"tasks/{task_id}", agent_id.encode())

    def tasks(self) -> dict[str, str]:
        """Every task ever written down: task ID -> the agent it was launched on."""
        return {name: (self.read(f"tasks/{name}") or b"").decode() for name in self.list("tasks")}

    def save_result(self, chunk: int, result: dict) -> bool:
        """Record a chunk's result. True if this call recorded it; False if the chunk already
        had a result, which stays: the first result of a chunk is the one that counts."""
        return self.create(f"results/chunk-{chunk}", json.dumps(result).encode())

    def result(self, chunk: int) -> dict | None:
        value = self.read(f"results/chunk-{chunk}")
        return json.loads(value) if value else None

    def results(self) -> dict[int, dict]:
        results = {}
        for name in self.list("results"):
            chunk = int(name.removeprefix("chunk-"))
            result = self.result(chunk)
            if result is not None:
                results[chunk] = result
        return results


class DirectoryStore(Checkpoint):
    """The state as files in a directory of this machine. A file is created whole or not at
    all: it is written under a temporary name, then hard-linked to its real name, and link(2)
    fails if that name exists. A killed process loses nothing the kernel already has; a power
    cut might (that is what ZooKeeper's replicas are for)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.description = f"--state {self.directory}"
        try:
            for folder in ("tasks", "results"):
                (self.directory / folder).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot use {self.description}: {error}") from error

    def create(self, name: str, value: bytes) -> bool:
        path = self.directory / name
        temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}"
        try:
            temporary.write_bytes(value)
            try:
                os.link(temporary, path)  # atomic, and refuses an existing name
            except FileExistsError:
                return False
            finally:
                temporary.unlink()
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error}") from error
        return True

    def read(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.directory / name}: {error}") from error

    def delete(self, name: str) -> None:
        try:
            (self.directory / name).unlink(missing_ok=True)
        except OSError as error:
            raise StoreError(f"cannot delete {self.directory / name}: {error}") from error

    def list(self, folder: str) -> list[str]:
        try:
            names = os.listdir(self.directory / folder)
        except OSError as error:
            raise StoreError(f"cannot list {self.directory / folder}: {error}") from error
        return sorted(name for name in names if not name.startswith("."))  # not temporaries

    @contextlib.contextmanager
    def leadership(self, me: str, on_wait: Callable[[str], None]) -> Iterator[Leadership]:
        """Instances on this machine take turns through a lock on a file: the kernel gives it to
        one process at a time, and takes it back the moment that process dies."""
        path = self.directory / "leader"
        with open(path, "a+") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                on_wait(file.read().strip() or "another process")
                fcntl.flock(file, fcntl.LOCK_EX)  # blocks until the leader lets go, or dies
            write_identity(file, me)
            yield Leadership()  # nothing takes a file lock away from a live process


def write_identity(file: IO[str], me: str) -> None:
    file.seek(0)
    file.truncate()
    file.write(me)
    file.flush()


class ZooKeeperStore(Checkpoint):
    """The state as znodes under a path of a ZooKeeper ensemble. ZooKeeper's `create` fails with
    NodeExistsError if the node exists: create-if-absent is what it does natively, and every
    write is replicated to a quorum of its servers before it succeeds."""

    def __init__(self, url: str, session_timeout: float = 5.0, connect_timeout: float = 10.0):
        match = ZOOKEEPER.match(url)
        if match is None:
            raise StoreError(f"expected zk://HOST:PORT[,HOST:PORT...]/PATH, not {url!r}")
        self.description = f"--state {url}"
        self.root = match["path"]
        # The session timeout is how long ZooKeeper keeps a silent client's session, and with
        # it the leader's lock: how soon a standby takes over from a leader that died.
        self.zk = KazooClient(hosts=match["hosts"], timeout=session_timeout)
        try:
            self.zk.start(timeout=connect_timeout)
        except KazooTimeoutError as error:
            self.zk.close()
            raise StoreError(f"could not reach ZooKeeper for {self.description}") from error

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def create(self, name: str, value: bytes) -> bool:
        try:
            self.zk.create(self.path(name), value, makepath=True)
        except NodeExistsError:
            return False
        except (KazooException, KazooTimeoutError) as error:
            raise StoreError(f"cannot create {self.path(name)}: {error!r}") from error
        return True

    def read(self, name: str) -> bytes | None:
        try:
            value, _ = self.zk.get(self.path(name))
        except NoNodeError:
            return None
        except (KazooException, KazooTimeoutError) as error:
            raise StoreError(f"cannot read {self.path(name)}: {error!r}") from error
        return value

    def delete(self, name: str) -> None:
        try:
            self.zk.delete(self.path(name))
        except NoNodeError:
            pass
        except (KazooException, KazooTimeoutError) as error:
            raise StoreError(f"cannot delete {self.path(name)}: {error!r}") from error

    def list(self, folder: str) -> list[str]:
        try:
            return sorted(self.zk.get_children(self.path(folder)))
        except NoNodeError:
            return []
        except (KazooException, KazooTimeoutError) as error:
            raise StoreError(f"cannot list {self.path(folder)}: {error!r}") from error

    @contextlib.contextmanager
    def leadership(self, me: str, on_wait: Callable[[str], None]) -> Iterator[Leadership]:
        """kazoo's Lock (its Election recipe is the same lock): every instance creates an
        ephemeral sequential znode under `PATH/leader`, and the lowest one leads. A leader's
        znode goes when it lets go, or when ZooKeeper expires the session of a dead one."""
        lock = self.zk.Lock(self.path("leader"), me)
        leadership = Leadership()

        def watch(state: str) -> None:
            # LOST: the session expired, and the lock with it; another instance may lead now.
            if state == KazooState.LOST:
                leadership.lost.set()

        self.zk.add_listener(watch)
        try:
            if not lock.acquire(blocking=False):
                on_wait(next(iter(lock.contenders()), "another scheduler"))
                lock.acquire()  # blocks until this instance's znode is the lowest
        except (KazooException, KazooTimeoutError) as error:
            self.zk.remove_listener(watch)
            raise StoreError(f"cannot take part in the election: {error!r}") from error
        try:
            yield leadership
        finally:
            self.zk.remove_listener(watch)
            with contextlib.suppress(KazooException, KazooTimeoutError):
                lock.release()

    def close(self) -> None:
        # Closing the session removes its ephemeral znodes at once: a standby takes over now,
        # not after the session timeout.
        with contextlib.suppress(KazooException, KazooTimeoutError):
            self.zk.stop()
        self.zk.close()


def open_store(spec: str, session_timeout: float = 5.0) -> Checkpoint:
    """`--state`: a zk:// URL, or else a directory."""
    if spec.startswith("zk://"):
        return ZooKeeperStore(spec, session_timeout=session_timeout)
    return DirectoryStore(spec)
