"""Drive the master's live page (`GET /`) in Debian's headless Chromium through chromedriver
and Selenium, read its DOM hooks, and take its screenshots.

The console is read through `goog:loggingPrefs`. The page's hooks, which these tests, other
tests and the benchmarks read (keep them):

- `html[data-ready="true"]` once the first state is shown and the event stream is open;
  `html[lang]` "es" or "en"; `html[data-theme]` "light" or "dark"; `#lang-toggle`,
  `#theme-toggle`. `html[data-refused]` "401" or "403" while the master refuses the page's
  reads, said in one line in `#banner`.
- `[data-agent-id]` per agent, `data-status` "active" or "gone" (disconnected, unreachable,
  removed).
- `#frameworks [data-framework-id]`, `data-share` the dominant share ("0.500").
- `#tasks [data-task-id]`, `data-state` ("TASK_RUNNING"...), `data-framework-id`,
  `data-shown-at` (`Date.now()` when last rendered), with an `a.sandbox-link`.
- `#sandbox` with `pre#sandbox-stdout` and `pre#sandbox-stderr`.
- `#event-log li`, `data-kind` the operator event (AGENT_ADDED, TASK_UPDATED...) or, for what
  the page sees in /master/state, AGENT_DISCONNECTED, AGENT_UNREACHABLE, AGENT_BACK (then
  `data-source="state"`), and `data-shown-at`; `li.entry` holds `{kind, values}`.
- `#offers`: the offer chart, with the totals.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tools import ROOT, in_ci
from tools.site import CHROMIUM_FLAGS, blank_reason, chromium

SCREENSHOTS = ROOT / "build" / "ui-screenshots"
DESKTOP = (1280, 1000)
PHONE = (390, 1400)  # CSS pixels; tall enough to show more than the first card
WAIT = 30.0  # generous: the machine may be loaded


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver, or a failure (CI) or skip (elsewhere) naming what to install."""
    how = "install Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
    browser = chromium()
    if browser is None:
        need("chromium", how)
    driver = need("chromedriver", how)
    if importlib.util.find_spec("selenium") is None:
        message = "selenium is not installed (make setup-dev installs it)"
        if in_ci():
            pytest.fail(f"CI must run every test: {message}")
        pytest.skip(message)
    assert browser is not None
    return browser, driver


@contextlib.contextmanager
def open_browser(accept_language: str = "es-ES,es") -> Iterator[Any]:
    """A headless Chromium that keeps its console log; closed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_argument(f"--lang={accept_language.split(',')[0]}")
    options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        viewport(driver, *DESKTOP)
        yield driver
    finally:
        driver.quit()


def viewport(driver: Any, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def wait_js(driver: Any, script: str, *args: Any, timeout: float = WAIT, what: str = "") -> Any:
    """Run ``script`` (a function body that returns) until it returns something true."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = driver.execute_script(script, *args)
        except WebDriverException as error:
            # The page may be navigating (a standby sends it to the leader): ask again.
            value = f"{type(error).__name__}: {error.msg}"
        else:
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what or script}; last: {value!r}"
    )


def wait_for(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def load(driver: Any, url: str) -> None:
    """Open the page and wait until it shows the state and its event stream is open."""
    driver.get(url)
    wait_js(
        driver,
        "return document.documentElement.dataset.ready === 'true';",
        what="html[data-ready=true]",
    )


def console_errors(driver: Any) -> list[str]:
    """The console's SEVERE entries since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def attr(driver: Any, selector: str, name: str) -> str | None:
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        " return e ? e.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )


def set_theme(driver: Any, theme: str) -> None:
    if driver.execute_script("return document.documentElement.dataset.theme;") != theme:
        driver.find_element("id", "theme-toggle").click()
    wait_js(driver, "return document.documentElement.dataset.theme === arguments[0];", theme)


def screenshots(driver: Any, state: str) -> list[Path]:
    """The page as it is, light and dark, desktop and phone wide; each checked not blank."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    theme_before = driver.execute_script("return document.documentElement.dataset.theme;")
    taken = []
    try:
        for theme in ("light", "dark"):
            set_theme(driver, theme)
            for device, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
                viewport(driver, width, height)
                # The page redraws its charts for the new width (a short timer), then two
                # frames: the new layout, then its paint.
                driver.execute_async_script(
                    "const done = arguments[0]; setTimeout(() =>"
                    " requestAnimationFrame(() => requestAnimationFrame(() => done())), 150);"
                )
                path = SCREENSHOTS / f"{state}-{theme}-{device}.png"
                driver.save_screenshot(str(path))
                why = blank_reason(path)
                assert why is None, f"{path.name} looks blank: {why}"
                wide = driver.execute_script("return document.documentElement.scrollWidth;")
                assert wide <= width, f"{path.name}: {wide} px wide on a {width} px screen"
                taken.append(path)
    finally:
        viewport(driver, *DESKTOP)
        set_theme(driver, theme_before)
    return taken
