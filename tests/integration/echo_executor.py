"""A small custom executor on the unmodified pymesos `MesosExecutorDriver`, for the tests of
the agent's executor API. Each task's `data` (base64 JSON) says what the task does:

- ``{"do": "finish"}``: TASK_RUNNING, then TASK_FINISHED with the task's data echoed back;
- ``{"do": "hold"}``: TASK_RUNNING, then nothing until a KILL, answered with TASK_KILLED;
- ``{"do": "fail"}``: TASK_RUNNING, then TASK_FAILED.

A framework message is answered with a message: ``{"echo": <what came>, "data": <its base64
text, exactly as it arrived>}``. The message ``{"exit": N}`` makes the process exit with status
N at once, as a crash would; ``{"finish": <task ID>}`` ends a held task with TASK_FINISHED.

With ``ECHO_IGNORE_SHUTDOWN=1`` in its environment, SHUTDOWN is logged and then ignored: the
callback never returns, so pymesos neither stops nor (with ``MESOS_LOCAL=1``) kills itself, and
only the agent can end the process.

At SUBSCRIBED it writes its environment to `env.json` in its sandbox, and it logs every
callback to stderr (the sandbox's `stderr` file), so a test can see what it was told.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data

log = logging.getLogger("echo_executor")


def _load(data: str) -> dict:
    return json.loads(decode_data(data).decode())


def _dump(value: dict) -> str:
    return encode_data(json.dumps(value).encode())


class EchoExecutor(Executor):
    def registered(self, driver, executor_info, framework_info, agent_info) -> None:
        log.info("registered on agent %s", agent_info["id"]["value"])
        with open(os.path.join(os.environ["MESOS_SANDBOX"], "env.json"), "w") as file:
            json.dump(dict(os.environ), file)

    def reregistered(self, driver, agent_info) -> None:
        log.info("reregistered on agent %s", agent_info["id"]["value"])

    def disconnected(self, driver) -> None:
        log.info("disconnected")

    def launchTask(self, driver, task) -> None:
        task_id = task["task_id"]
        what = _load(task["data"]).get("do") if task.get("data") else "finish"
        log.info("launch %s: %s", task_id["value"], what)
        driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_RUNNING"})
        if what == "finish":
            driver.sendStatusUpdate(
                {"task_id": task_id, "state": "TASK_FINISHED", "data": task.get("data", "")}
            )
        elif what == "fail":
            driver.sendStatusUpdate(
                {"task_id": task_id, "state": "TASK_FAILED", "message": "failing on purpose"}
            )

    def killTask(self, driver, task_id) -> None:
        log.info("kill %s", task_id["value"])
        driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

    def frameworkMessage(self, driver, message) -> None:
        value = _load(message)
        log.info("message %s", value)
        if "exit" in value:
            os._exit(int(value["exit"]))
        if "finish" in value:
            task_id = {"value": value["finish"]}
            driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_FINISHED"})
            return
        driver.sendFrameworkMessage(_dump({"echo": value, "data": message}))

    def shutdown(self, driver) -> None:
        log.info("shutdown")
        if os.environ.get("ECHO_IGNORE_SHUTDOWN") == "1":
            threading.Event().wait()  # blocks pymesos's IO thread for good


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    driver = MesosExecutorDriver(EchoExecutor(), use_addict=True)
    driver.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
