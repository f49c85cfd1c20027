"""The steps in a workshop room: --principal and --secret (or $MESOS_PRINCIPAL and
$MESOS_SECRET) become a `Credential` in the settings, the principal goes into FrameworkInfo,
and every sandbox read carries the credential as HTTP Basic."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import step1_scheduler.__main__ as step1_main
import step2_executor.__main__ as step2_main
import step3_failover.__main__ as step3_main
from step1_scheduler import sandbox
from step1_scheduler.sandbox import Credential

STEPS: dict[str, tuple[Callable[[list[str]], Any], list[str]]] = {
    "step1": (step1_main.parse_args, ["--master", "127.0.0.1:5050"]),
    "step2": (step2_main.parse_args, ["--master", "127.0.0.1:5050"]),
    "step3": (step3_main.parse_args, ["--master", "127.0.0.1:5050", "--state", "build/s"]),
}


@pytest.fixture(autouse=True)
def no_mesos_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESOS_PRINCIPAL", raising=False)
    monkeypatch.delenv("MESOS_SECRET", raising=False)


@pytest.mark.parametrize("step", STEPS)
def test_no_principal_no_credential(step: str) -> None:
    parse, required = STEPS[step]
    _, settings = parse(required)
    assert settings.credential is None


@pytest.mark.parametrize("step", STEPS)
def test_principal_and_secret_make_the_credential(step: str) -> None:
    parse, required = STEPS[step]
    _, settings = parse([*required, "--principal", "ana", "--secret", "s3:cret"])
    assert settings.credential == Credential("ana", "s3:cret")


@pytest.mark.parametrize("step", STEPS)
def test_the_environment_gives_them_too_and_the_flags_win(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse, required = STEPS[step]
    monkeypatch.setenv("MESOS_PRINCIPAL", "ana")
    monkeypatch.setenv("MESOS_SECRET", "from-env")
    assert parse(required)[1].credential == Credential("ana", "from-env")
    assert parse([*required, "--secret", "flag"])[1].credential == Credential("ana", "flag")


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("given", [["--principal", "ana"], ["--secret", "s3cret"]])
def test_one_without_the_other_is_an_error_naming_both(
    step: str, given: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parse, required = STEPS[step]
    with pytest.raises(SystemExit) as exit_info:
        parse([*required, *given])
    assert exit_info.value.code == 2
    assert "--principal and --secret go together" in capsys.readouterr().err


def test_framework_info_names_the_principal_only_when_there_is_one() -> None:
    ana = Credential("ana", "s3cret")
    assert "principal" not in step1_main.framework_info()
    assert step1_main.framework_info(ana)["principal"] == "ana"
    assert "principal" not in step2_main.framework_info()
    assert step2_main.framework_info(ana)["principal"] == "ana"
    assert "principal" not in step3_main.framework_info(60.0, None)
    assert step3_main.framework_info(60.0, "F0", ana)["principal"] == "ana"


def test_the_authorization_header_is_http_basic() -> None:
    header = Credential("ana", "s3:cret").authorization()
    scheme, token = header.split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "ana:s3:cret"


class Agent(http.server.BaseHTTPRequestHandler):
    """Just enough of an agent: /state with one executor, /files/read with one page, and a
    401 without the right Authorization; what each request carried is kept."""

    seen: list[tuple[str, str | None]]
    expected: str | None

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        self.seen.append((self.path.split("?")[0], authorization))
        if self.expected is not None and authorization != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mesos-agent-readonly"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/state":
            executor = {"id": "T1", "directory": "/sandbox"}
            body: dict = {"frameworks": [{"id": "F0", "executors": [executor]}]}
        else:
            offset = int(self.path.rsplit("offset=", 1)[1])
            body = {"offset": offset, "data": "42\n" if offset == 0 else ""}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def agent() -> Iterator[tuple[str, type[Agent]]]:
    handler = type("RoomAgent", (Agent,), {"seen": [], "expected": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_every_sandbox_read_carries_the_credential(agent: tuple[str, type[Agent]]) -> None:
    url, handler = agent
    ana = Credential("ana", "s3cret")
    handler.expected = ana.authorization()
    assert sandbox.read_task_output(url, "F0", "T1", credential=ana) == "42\n"
    assert [path for path, _ in handler.seen] == ["/state", "/files/read", "/files/read"]
    assert {authorization for _, authorization in handler.seen} == {ana.authorization()}


def test_without_the_credential_a_room_agent_refuses_and_the_error_says_401(
    agent: tuple[str, type[Agent]],
) -> None:
    url, handler = agent
    handler.expected = Credential("ana", "s3cret").authorization()
    with pytest.raises(sandbox.SandboxError, match="401"):
        sandbox.read_task_output(url, "F0", "T1")
    assert handler.seen == [("/state", None)]


def test_step3_reads_the_executors_stderr_with_the_credential(
    agent: tuple[str, type[Agent]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = agent
    ana = Credential("ana", "s3cret")
    handler.expected = ana.authorization()
    monkeypatch.setattr(step3_main, "EXECUTOR_ID", "T1")
    assert step3_main.executor_stderr(url, "F0", ana) == "42\n"
    assert {authorization for _, authorization in handler.seen} == {ana.authorization()}
