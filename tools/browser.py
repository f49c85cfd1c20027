"""Debian's headless Chromium driven through chromedriver and Selenium, for the live page that
a master serves at `/`: the tests read its DOM hooks with these helpers
(tests/integration/ui_support.py) and `python -m tools.ui_shots` takes the blog's screenshots.

Nothing here imports pytest: a missing browser is a `BrowserMissing` naming what to install,
which the tests turn into a failure (CI) or a skip, and the tool into a one-line error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from tools.site import CHROMIUM_FLAGS, chromium

DESKTOP = (1280, 1000)
WAIT = 30.0  # generous: the machine may be loaded
HOW = "install Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"


class BrowserMissing(RuntimeError):
    """Chromium, its driver or Selenium is not installed; the message says which, and how."""


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver; BrowserMissing if either, or Selenium, is not installed."""
    browser = chromium()
    if browser is None:
        raise BrowserMissing(f"chromium is not installed ({HOW})")
    driver = shutil.which("chromedriver")
    if driver is None:
        raise BrowserMissing(f"chromedriver is not installed ({HOW})")
    if importlib.util.find_spec("selenium") is None:
        raise BrowserMissing("selenium is not installed (make setup-dev installs it)")
    return browser, driver


@contextlib.contextmanager
def open_browser(accept_language: str = "es-ES,es") -> Iterator[Any]:
    """A headless Chromium as wide as DESKTOP that keeps its console log; closed at the end."""
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


def set_lang(driver: Any, lang: str) -> None:
    if driver.execute_script("return document.documentElement.lang;") != lang:
        driver.find_element("id", "lang-toggle").click()
    wait_js(driver, "return document.documentElement.lang === arguments[0];", lang)


def settle(driver: Any) -> None:
    """Let the page redraw its charts after a change of size, theme or language (a short
    timer), then two frames: the new layout, then its paint."""
    driver.execute_async_script(
        "const done = arguments[0]; setTimeout(() =>"
        " requestAnimationFrame(() => requestAnimationFrame(() => done())), 150);"
    )
