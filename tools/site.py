"""Build the blog, check its links, and screenshot it as a reader would see it."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools import ROOT

WARNING = re.compile(r"warn|deprecat|error|conflict", re.IGNORECASE)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags Chromium keeps dialling out, and this network is closed.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class SiteError(Exception):
    """The site did not build cleanly, or a page is missing or blank."""


@dataclass
class Post:
    source: Path
    lang: str
    ref: str
    permalink: str


def front_matter(path: Path) -> dict[str, str]:
    """The flat ``key: value`` pairs of a post's front matter (all that the checks read)."""
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        raise SiteError(f"{path}: no front matter")
    pairs = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "\t", "-")):
            pairs[key.strip()] = value.strip().strip("\"'")
    return pairs


def posts(source: Path = ROOT) -> list[Post]:
    found = []
    for path in sorted((source / "_posts").glob("*.md")):
        meta = front_matter(path)
        missing = [key for key in ("lang", "ref", "permalink") if not meta.get(key)]
        if missing:
            raise SiteError(f"{path.name}: front matter lacks {', '.join(missing)}")
        found.append(Post(path, meta["lang"], meta["ref"], meta["permalink"]))
    return found


def build(source: Path = ROOT, destination: Path | None = None) -> Path:
    """Run ``jekyll build``; any warning in its output is an error."""
    destination = destination or source / "_site"
    result = subprocess.run(
        ["jekyll", "build", "--strict_front_matter", "-s", str(source), "-d", str(destination)],
        capture_output=True,
        text=True,
        cwd=source,
    )
    output = result.stdout + result.stderr
    print(output, end="")
    if result.returncode != 0:
        raise SiteError(f"jekyll build exited {result.returncode}")
    warnings = [line for line in output.splitlines() if WARNING.search(line)]
    if warnings:
        raise SiteError("jekyll build printed warnings:\n" + "\n".join(warnings))
    return destination


def expected_pages(source: Path, site: Path) -> list[Path]:
    """Pages that must exist: the home page, each language's index, and every post."""
    pages = [site / "index.html", site / "es" / "index.html", site / "en" / "index.html"]
    pages += [site / post.permalink.strip("/") / "index.html" for post in posts(source)]
    return pages


def check_pages(source: Path, site: Path) -> None:
    missing = [str(p.relative_to(site)) for p in expected_pages(source, site) if not p.is_file()]
    if missing:
        raise SiteError(f"pages missing from {site}: {', '.join(missing)}")
    every_post = posts(source)
    for post in every_post:
        twins = [p for p in every_post if p.ref == post.ref and p.lang != post.lang]
        if not twins:
            raise SiteError(f"{post.source.name} ({post.lang}) has no twin with ref {post.ref!r}")
        html = (site / post.permalink.strip("/") / "index.html").read_text(encoding="utf-8")
        for twin in twins:
            if f'href="{twin.permalink}"' not in html:
                raise SiteError(f"{post.permalink} does not link to its twin {twin.permalink}")


def proof(site: Path) -> None:
    """html-proofer on the built site: internal links and images (the network is closed)."""
    result = subprocess.run(["htmlproofer", str(site), "--disable-external"], text=True)
    if result.returncode != 0:
        raise SiteError("html-proofer found broken links or images")


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free loopback port for as long as the block runs."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def screenshot(url: str, png: Path, dark: bool = False) -> Path:
    browser = chromium()
    if browser is None:
        raise SiteError("no chromium on PATH")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    flags = list(CHROMIUM_FLAGS)
    if dark:
        flags += ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *flags,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                "--window-size=1200,1600",
                url,
            ],
            capture_output=True,
            timeout=90,
        )
    if not png.is_file():
        raise SiteError(f"chromium wrote no screenshot of {url}")
    return png


def blank_reason(png: Path) -> str | None:
    """Why a screenshot looks blank, or None when it shows a page with content."""
    from PIL import Image

    with Image.open(png) as image:
        pixels = image.convert("RGB")
        total = pixels.width * pixels.height
        colors = pixels.getcolors(maxcolors=total)
    background_count = max(count for count, _ in colors)
    ink = 1 - background_count / total
    if len(colors) < 16:
        return f"only {len(colors)} colours"
    if ink < 0.01:
        return f"only {ink:.2%} of the pixels differ from the background"
    return None


def screenshots(site: Path, source: Path = ROOT, out: Path | None = None) -> list[Path]:
    """The home page and every post, light and dark."""
    out = out or ROOT / "build" / "screenshots"
    pages = {"home": "/"}
    for post in posts(source):
        pages[f"{post.lang}-{post.permalink.strip('/').split('/')[-1]}"] = post.permalink
    shots = []
    with serve(site) as base:
        for name, path in pages.items():
            for dark in (False, True):
                png = out / f"{name}{'-dark' if dark else ''}.png"
                screenshot(base + path, png, dark=dark)
                reason = blank_reason(png)
                if reason:
                    raise SiteError(f"{png.name} ({path}) looks blank: {reason}")
                shots.append(png)
    return shots
