"""The step 1 post's screenshots of the live page, from a real run.

    python -m tools.ui_shots                 # into assets/img/paso-1/
    python -m tools.ui_shots --out build/ui-shots

It runs notebook 01's section 7 on a LocalCluster: two copies of the step 1 scheduler with the
whole job, B two and a half seconds after A, on a cluster of two agents with the notebook's
allocation interval and offer timeout. The page is open in headless Chromium from the start, so
that its chart of dominant shares shows A alone, then B arriving; once B has run for a couple of
seconds, it takes the page in Spanish and in English (two browsers, light theme, desktop width)
at a moment when A and B hold about half the cluster each, crops both to the same box, and stops
the two frameworks without waiting for their jobs to end.

tests/integration/test_ui_shots.py runs it into build/ and compares with the committed images,
so that a broken or stale tool fails CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools import ROOT
from tools import browser as web
from tools.site import blank_reason

OUT = ROOT / "assets" / "img" / "paso-1"
NAMES = {"es": "pagina-en-vivo-drf-es.png", "en": "live-page-drf-en.png"}
# Notebook 01, section 7: LocalCluster(agents=2, allocation_interval=0.2, offer_timeout=5), and
# B starts 2.5 s after A.
ALLOCATION_INTERVAL = 0.2
OFFER_TIMEOUT = 5.0
B_DELAY = 2.5
# How long B must have been registered before the shots, so that the chart shows the two shares
# meeting, not only B's arrival. Not much more: with the notebook's short interval, A's job is
# done some 6 s after B arrives, and then B holds everything.
HOLD = 2.0
# The part of the page that tells the story at desktop width: the agents filled by both
# frameworks, then the chart of dominant shares and the offers beside it (the tasks and the
# log, below, are cut).
CROP = (1280, 920)
COLOURS = 128  # a palette this size keeps the light theme's colours and makes a small PNG


@contextlib.contextmanager
def framework(master: str, settings: Any) -> Iterator[Any]:
    """The step 1 scheduler registered with ``master``, as `run()` does, but stopped (TEARDOWN)
    on leaving instead of when its job is done: the shot needs only the first seconds."""
    from pymesos import MesosSchedulerDriver

    from step1_scheduler.__main__ import framework_info
    from step1_scheduler.scheduler import JobScheduler

    scheduler = JobScheduler(settings)
    driver = MesosSchedulerDriver(scheduler, framework_info(), master, use_addict=True)
    driver.start()
    try:
        yield scheduler
    finally:
        driver.stop()
        driver.join()


# Armed in the page, so that a busy machine's slow round trips cannot miss the moment: each time
# the legend changes, and in the same turn of the page's event loop, read the two dominant
# shares it shows and, once each is a half (DRF's split, which the posts' text describes; the
# split moves by eighths around it as offers of a whole agent come and go), lay a still copy of
# the page over it, once. The live page goes on updating beneath
# (its code finds its elements by ID, and the originals come first), and the shot shows the
# copy: the shares checked are the shares shown.
ARM = """
const [a, b, holdMs] = arguments;
const notBefore = Date.now() + holdMs;
const legend = document.getElementById('frameworks');
const check = () => {
  if (document.getElementById('ui-shots-still') || Date.now() < notBefore) return;
  const shown = {};
  for (const e of legend.querySelectorAll('[data-framework-id]'))
    shown[e.dataset.frameworkId] = +e.dataset.share;
  const split = [shown[a] ?? 0, shown[b] ?? 0];
  if (!split.every((share) => Math.abs(share - 0.5) < 0.01))
    return;
  const still = document.createElement('div');
  still.id = 'ui-shots-still';
  still.dataset.split = split.join(' ');
  still.style.cssText =
    'position:absolute;left:0;top:0;width:100%;z-index:1000;background:var(--bg)';
  for (const part of [...document.body.children])
    if (!part.hidden && part.tagName !== 'SCRIPT') still.append(part.cloneNode(true));
  document.body.append(still);
};
window.uiShotsObserver = new MutationObserver(check);
window.uiShotsObserver.observe(legend, { childList: true, subtree: true, attributes: true });
"""
FROZEN = "return document.getElementById('ui-shots-still')?.dataset.split ?? null;"
THAW = """
window.uiShotsObserver?.disconnect();
document.getElementById('ui-shots-still')?.remove();
"""


def capture(driver: Any) -> Any:
    """The page's top CROP box, as a Pillow image."""
    from PIL import Image

    web.settle(driver)  # the still copy, laid out and painted
    with Image.open(io.BytesIO(driver.get_screenshot_as_png())) as image:
        if image.width < CROP[0] or image.height < CROP[1]:
            raise RuntimeError(f"the page's screenshot is {image.size}, smaller than {CROP}")
        return image.convert("RGB").crop((0, 0, *CROP))


def save(image: Any, png: Path) -> Path:
    """A small palette PNG; refused if it looks blank."""
    from PIL import Image

    small = image.quantize(
        colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    small.save(png, optimize=True)
    why = blank_reason(png)
    if why is not None:
        raise RuntimeError(f"{png} looks blank: {why}")
    return png


def take(out: Path) -> list[Path]:
    """Run the two frameworks and write the Spanish and the English shot into ``out``."""
    from localmesos.cluster import LocalCluster
    from step1_scheduler.__main__ import REPOSITORY
    from step1_scheduler.scheduler import Settings

    web.browser_paths()  # say what is missing before any cluster starts
    settings = Settings(size="demo", task_python=sys.executable, task_pythonpath=REPOSITORY)
    # One browser per language, both watching from the start: A's job may well be over before
    # one browser could wait for a second moment.
    with (
        LocalCluster(
            agents=2, allocation_interval=ALLOCATION_INTERVAL, offer_timeout=OFFER_TIMEOUT
        ) as cluster,
        web.open_browser(accept_language="es-ES,es") as spanish,
        web.open_browser(accept_language="en-GB,en") as english,
    ):
        browsers = {"es": spanish, "en": english}
        for lang, driver in browsers.items():
            web.viewport(driver, web.DESKTOP[0], max(web.DESKTOP[1], CROP[1]))
            web.load(driver, f"{cluster.url}/")
            web.set_lang(driver, lang)
            web.set_theme(driver, "light")
        with framework(cluster.master, settings) as a:
            if not a.registered_event.wait(web.WAIT):
                raise RuntimeError(f"A did not register within {web.WAIT} s")
            time.sleep(B_DELAY)
            with framework(cluster.master, settings) as b:
                if not b.registered_event.wait(web.WAIT):
                    raise RuntimeError(f"B did not register within {web.WAIT} s")
                for driver in browsers.values():
                    driver.execute_script(ARM, a.framework_id, b.framework_id, HOLD * 1000)

                def frozen() -> bool:
                    if a.finished.is_set():
                        raise RuntimeError(
                            "A's job ended before the page showed A and B with about half the"
                            " cluster each (the machine is too busy?); run it again"
                        )
                    return all(driver.execute_script(FROZEN) for driver in browsers.values())

                try:
                    web.wait_for(frozen, timeout=HOLD + web.WAIT, what="about half each")
                    images = {lang: capture(driver) for lang, driver in browsers.items()}
                finally:
                    for driver in browsers.values():
                        driver.execute_script(THAW)
    return [save(image, out / NAMES[lang]) for lang, image in images.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ui_shots",
        description="Screenshot the live page during notebook 01's two-framework DRF run.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="where to write the PNGs (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    # The step 1 scheduler's warnings (B declining an offer of memory without CPUs) and
    # pymesos's reconnections would only hide the result.
    logging.getLogger("step1_scheduler").setLevel(logging.ERROR)
    logging.getLogger("pymesos").setLevel(logging.CRITICAL)
    try:
        taken = take(args.out)
    except web.BrowserMissing as missing:
        print(f"ui_shots: {missing}", file=sys.stderr)
        return 1
    for png in taken:
        print(f"ui_shots: wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
