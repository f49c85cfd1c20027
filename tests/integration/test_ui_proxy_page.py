"""The live page served by `localmesos ui` (localmesos/ui/proxy.py), in headless Chromium. In
front of a room's LocalCluster (credentials on every realm, master and agents), with the room's
credentials, it gets ready, shows a task, and follows the task's sandbox through the proxy's
`/agent/<id>/files/read` on its own origin, never the agent's address. With the wrong secret,
and in front of a small fake master that answers 401 and then 403 to everything, it says in
one line that it was refused."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.client import Batch, TaskSpec
from localmesos import LocalCluster
from localmesos.ui.proxy import Proxy
from tests.integration import ui_support as ui

pytestmark = pytest.mark.integration

PRINCIPAL, SECRET = "teacher", "s3cret"
ROOM = {PRINCIPAL: SECRET}


@pytest.fixture
def browser() -> Iterator[Any]:
    ui.browser_paths()  # fail (CI) or skip first, before any cluster starts
    with ui.open_browser() as driver:
        yield driver


def row_state(driver: Any, task_id: str) -> str | None:
    return ui.attr(driver, f'#tasks [data-task-id="{task_id}"]', "data-state")


def test_the_page_through_localmesos_ui_in_a_room_reads_the_sandbox_through_it(
    browser: Any, tmp_path: Path
) -> None:
    line = f"proxied-{uuid.uuid4().hex[:8]}"
    release = tmp_path / "release"
    command = f"echo {line}; echo {line}-err >&2; while [ ! -e {release} ]; do sleep 0.2; done"
    with (
        LocalCluster(agents=1, allocation_interval=0.1, credentials=ROOM) as cluster,
        Proxy(cluster.leader, port=0, principal=PRINCIPAL, secret=SECRET) as proxy,
    ):
        ui.load(browser, f"{proxy.url}/")
        assert browser.execute_script("return window.MESOS_UI_MODE.agents;") == "proxy"
        (agent,) = cluster.agents
        assert ui.attr(browser, f'[data-agent-id="{agent}"]', "data-status") == "active"

        batch = Batch(
            cluster.leader,
            "proxied",
            [TaskSpec("proxied-0", command)],
            credentials=(PRINCIPAL, SECRET),
        )
        batch.start()
        try:
            ui.wait_for(
                lambda: row_state(browser, "proxied-0") == "TASK_RUNNING" or batch.error,
                what="proxied-0 TASK_RUNNING on the page",
            )
            assert batch.error is None, repr(batch.error)
            browser.find_element(
                "css selector", '#tasks [data-task-id="proxied-0"] a.sandbox-link'
            ).click()
            for pre, text in (("sandbox-stdout", line), ("sandbox-stderr", f"{line}-err")):
                ui.wait_js(
                    browser,
                    "return document.getElementById(arguments[0]).textContent"
                    ".includes(arguments[1]);",
                    pre,
                    text,
                    what=f"{text!r} in #{pre}",
                )
            # Every read of the sandbox went to the page's own origin, under /agent/<id>/.
            reads = browser.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
                ".filter(n => n.includes('/files/read'));"
            )
            prefix = f"{proxy.url}/agent/{agent}/files/read?"
            assert reads, "the page read no sandbox file"
            assert all(read.startswith(prefix) for read in reads), reads

            release.touch()
            assert batch.done.wait(ui.WAIT), "proxied-0 did not end"
            assert batch.error is None, repr(batch.error)
            assert batch.states == {"proxied-0": "TASK_FINISHED"}
            ui.wait_for(
                lambda: row_state(browser, "proxied-0") == "TASK_FINISHED",
                what="proxied-0 TASK_FINISHED on the page",
            )
        finally:
            release.touch()
            batch.close()
        assert ui.console_errors(browser) == []


class Refusing(ThreadingHTTPServer):
    """A master that answers every request with ``status``, as one started with
    --authenticate_http_readonly answers a browser without credentials. Its 401 has no
    WWW-Authenticate: with one, a browser asks the person for credentials first (headless
    Chromium waits on that prompt for ever), and the page sees the 401 only once they cancel,
    which is the case this stands for."""

    def __init__(self) -> None:
        self.status = 401

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = self.server.status  # type: ignore[attr-defined]
                body = b"Unauthorized" if status == 401 else b"Forbidden"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        super().__init__(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_master_that_wants_credentials_is_named_in_one_line(browser: Any) -> None:
    server = Refusing()
    try:
        with Proxy(server.address, port=0) as proxy:
            browser.get(f"{proxy.url}/")
            for status in (401, 403):
                server.status = status
                ui.wait_js(
                    browser,
                    "return document.documentElement.dataset.refused === arguments[0];",
                    str(status),
                    what=f"html[data-refused={status}]",
                )
                banner = browser.find_element("id", "banner")
                assert banner.is_displayed()
                assert f"HTTP {status}" in banner.text and "\n" not in banner.text, banner.text
            assert "localmesos ui --principal" not in banner.text  # 403: the wrong ones
            server.status = 401
            ui.wait_js(
                browser,
                "return document.documentElement.dataset.refused === '401';",
                what="html[data-refused=401] again",
            )
            assert "localmesos ui --principal" in browser.find_element("id", "banner").text
            # Nothing to show: the page never says it is live.
            assert browser.execute_script("return document.documentElement.dataset.ready;") is None
    finally:
        server.shutdown()
        server.server_close()


def test_the_wrong_secret_is_named_in_one_line(browser: Any) -> None:
    with (
        LocalCluster(agents=1, credentials=ROOM) as cluster,
        Proxy(cluster.leader, port=0, principal=PRINCIPAL, secret="wrong") as proxy,
    ):
        browser.get(f"{proxy.url}/")
        ui.wait_js(
            browser,
            "return document.documentElement.dataset.refused === '401';",
            what="html[data-refused=401]",
        )
        banner = browser.find_element("id", "banner")
        assert banner.is_displayed() and "HTTP 401" in banner.text, banner.text
        assert browser.execute_script("return document.documentElement.dataset.ready;") is None
