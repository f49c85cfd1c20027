"""Drive the master's live page (`GET /`) in Debian's headless Chromium through chromedriver
and Selenium, read its DOM hooks, and take its screenshots.

The browser helpers live in tools/browser.py (`python -m tools.ui_shots` uses them too); this
module makes a missing browser fail in CI and skip elsewhere, and takes the tests' screenshots.
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

import os
from pathlib import Path
from typing import Any

import pytest

from tools import ROOT, in_ci
from tools import browser as _browser
from tools.browser import (
    DESKTOP,
    WAIT,
    BrowserMissing,
    attr,
    console_errors,
    load,
    open_browser,
    set_theme,
    settle,
    viewport,
    wait_for,
    wait_js,
)
from tools.site import blank_reason

__all__ = [
    "DESKTOP",
    "WAIT",
    "attr",
    "browser_paths",
    "console_errors",
    "load",
    "open_browser",
    "screenshots",
    "set_theme",
    "viewport",
    "wait_for",
    "wait_js",
]

SCREENSHOTS = ROOT / "build" / "ui-screenshots"
PHONE = (390, 1400)  # CSS pixels; tall enough to show more than the first card


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver, or a failure (CI) or skip (elsewhere) naming what to install."""
    try:
        return _browser.browser_paths()
    except BrowserMissing as missing:
        if in_ci():
            pytest.fail(f"CI must run every test: {missing}")
        pytest.skip(str(missing))


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
                settle(driver)
                path = SCREENSHOTS / f"{state}-{theme}-{device}.png"
                # Checked from a file of this run's own, then put in place whole: another run
                # of the suite on this checkout may be writing the same name.
                mine = path.with_name(f".{os.getpid()}-{path.name}")
                driver.save_screenshot(str(mine))
                why = blank_reason(mine)
                os.replace(mine, path)
                assert why is None, f"{path.name} looks blank: {why}"
                wide = driver.execute_script("return document.documentElement.scrollWidth;")
                assert wide <= width, f"{path.name}: {wide} px wide on a {width} px screen"
                taken.append(path)
    finally:
        viewport(driver, *DESKTOP)
        set_theme(driver, theme_before)
    return taken
