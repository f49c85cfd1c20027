"""Build the blog, check its links, and screenshot it as a reader would see it."""

from __future__ import annotations

import contextlib
import datetime
import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import tempfile
import threading
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools import ROOT

SITE_ZONE = zoneinfo.ZoneInfo("Europe/Madrid")  # _config.yml's timezone
PART = {"es": "Parte {number} de {total}", "en": "Part {number} of {total}"}
WARNING = re.compile(r"warn|deprecat|error|conflict", re.IGNORECASE)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Without the background-networking flags Chromium keeps dialling out, and this network is closed.
# What makes a page see prefers-color-scheme: dark.
DARK_FLAGS = ("--force-dark-mode", "--blink-settings=preferredColorScheme=0")
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
    date: str = ""


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
        found.append(Post(path, meta["lang"], meta["ref"], meta["permalink"], meta.get("date", "")))
    return found


def series(source: Path, lang: str) -> list[Post]:
    """One language's posts in reading order: by date, then by file name, as Jekyll sorts."""

    def when(post: Post) -> tuple[datetime.datetime, str]:
        text = post.date or post.source.name[:10]
        moment = datetime.datetime.fromisoformat(text.replace(" +", "+").replace(" -", "-"))
        if moment.tzinfo is None:  # Jekyll reads a bare date in the site's time zone
            moment = moment.replace(tzinfo=SITE_ZONE)
        return moment, post.source.name

    return sorted((post for post in posts(source) if post.lang == lang), key=when)


def repository_url(source: Path = ROOT) -> str:
    config = (source / "_config.yml").read_text(encoding="utf-8")
    found = re.search(r"^repository_url:\s*(\S+)\s*$", config, re.MULTILINE)
    if not found:
        raise SiteError("_config.yml has no repository_url: the posts cannot say where the code is")
    return found.group(1)


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
    for lang in {post.lang for post in every_post}:
        ordered = series(source, lang)
        for number, post in enumerate(ordered, start=1):
            html = (site / post.permalink.strip("/") / "index.html").read_text(encoding="utf-8")
            problems = reader_path_problems(html, lang, number, ordered, repository_url(source))
            if problems:
                raise SiteError(f"{post.permalink}: {'; '.join(problems)}")


def reader_path_problems(
    html: str, lang: str, number: int, ordered: list[Post], repository: str
) -> list[str]:
    """What a post's page lacks of the reader's path: its place in the series, the previous and
    next posts, where the code is and how to clone it, a table of contents when it is long,
    and tables that scroll inside the column."""
    problems = []
    part = PART[lang].format(number=number, total=len(ordered))
    if f'<p class="post-series">{part}</p>' not in html:
        problems.append(f"no '{part}'")
    nav = re.search(r'<nav class="series-nav".*?</nav>', html, re.DOTALL)
    links = dict(re.findall(r'rel="(prev|next)" href="([^"]+)"', nav.group(0) if nav else ""))
    wanted = {}
    if number > 1:
        wanted["prev"] = ordered[number - 2].permalink
    if number < len(ordered):
        wanted["next"] = ordered[number].permalink
    if links != wanted:
        problems.append(f"previous/next links are {links or 'missing'}, expected {wanted}")
    if f'href="{repository}"' not in html or f"git clone {repository}" not in html:
        problems.append(f"no link to {repository} and its git clone command")
    body = html.split('<div class="post-body">', 1)[-1]
    headings = re.findall(r'<h2 id="([^"]+)"', body)
    if len(headings) >= 4:
        toc = re.search(r'<nav class="toc".*?</nav>', html, re.DOTALL)
        listed = re.findall(r'href="#([^"]+)"', toc.group(0)) if toc else []
        if listed != headings:
            problems.append(
                f"the table of contents lists {len(listed)} of {len(headings)} sections"
            )
    if body.count("<table") != body.count('<div class="table-scroll"><table'):
        problems.append("a table outside a .table-scroll box")
    return problems


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


def screenshot(url: str, png: Path, dark: bool = False, width: int = 1200) -> Path:
    browser = chromium()
    if browser is None:
        raise SiteError("no chromium on PATH")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    flags = list(CHROMIUM_FLAGS)
    if dark:
        flags += DARK_FLAGS
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *flags,
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},1600",
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


PHONE_WIDTH = 390  # CSS pixels: an iPhone 12 to 15 held upright

# Loads each page in an iframe as wide as a phone, and lists what does not fit: the page being
# wider than the screen (something sticks out of the column), and inline code split across
# two lines (at a hyphen, most often). Run in dark mode, it also lists the PNG charts that do
# not sit on a light card: matplotlib draws them for a white page. Chromium runs it and prints
# the DOM, result included.
PROBE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>layout probe</title></head><body>
<script>
const pages = %(pages)s;
const width = %(width)d;
const dark = %(dark)s;
function luminance(colour) {
  const [r, g, b, a] = (colour.match(/[\\d.]+/g) || []).map(Number);
  if (a === 0) return 0;  // transparent: the dark page shows through
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}
function darkProblems(doc) {
  const view = doc.defaultView;
  if (!view.matchMedia("(prefers-color-scheme: dark)").matches) {
    return ["dark mode did not apply, so its charts were not checked"];
  }
  const problems = [];
  for (const image of doc.querySelectorAll("img[src$='.png']")) {
    const card = luminance(view.getComputedStyle(image).backgroundColor);
    if (card < 0.8) {
      problems.push("in dark mode, " + image.getAttribute("src") + " sits on a dark background");
    }
  }
  return problems;
}
function describe(element) {
  const text = (element.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60);
  return element.tagName.toLowerCase() + (element.className ? "." + element.className : "") +
    (text ? " '" + text + "'" : "");
}
function measure(doc) {
  const problems = [];
  const scrolls = "pre, .table-scroll, div.highlighter-rouge";
  if (doc.documentElement.scrollWidth > width) {
    const wide = [...doc.body.querySelectorAll("*")].filter((element) =>
      element.getBoundingClientRect().right > width + 0.5 && !element.closest(scrolls) &&
      ![...element.children].some((child) => child.getBoundingClientRect().right > width + 0.5));
    problems.push("the page is " + doc.documentElement.scrollWidth + " px wide: " +
      wide.slice(0, 5).map(describe).join("; "));
  }
  // Inline code stays on one line; {:.wrap} code may break only between its words (spans).
  const unbroken = ":not(pre) > code:not(.wrap):not(.break), :not(pre) > code.wrap > span";
  for (const code of doc.querySelectorAll(unbroken)) {
    if (code.getClientRects().length > 1) {
      problems.push("inline code broken across lines: " + describe(code));
    }
  }
  return problems;
}
async function main() {
  const results = {};
  for (const path of pages) {
    const frame = document.createElement("iframe");
    frame.style.cssText = "width:" + width + "px;height:900px;border:0";
    const loaded = new Promise((resolve) => { frame.onload = resolve; });
    frame.src = path;
    document.body.appendChild(frame);
    await loaded;
    results[path] = dark ? darkProblems(frame.contentDocument) : measure(frame.contentDocument);
    frame.remove();
  }
  const out = document.createElement("pre");
  out.id = "probe-result";
  out.textContent = JSON.stringify(results);
  document.body.appendChild(out);
}
main();
</script></body></html>
"""


def pages_to_shoot(source: Path = ROOT) -> dict[str, str]:
    """The home page and every post, by a short name for their screenshots."""
    pages = {"home": "/"}
    for post in posts(source):
        pages[f"{post.lang}-{post.permalink.strip('/').split('/')[-1]}"] = post.permalink
    return pages


def phone_layout_problems(site: Path, paths: list[str], width: int = PHONE_WIDTH) -> list[str]:
    """What does not fit a phone-wide screen on each page, measured by Chromium."""
    return probe_problems(site, paths, width, dark=False)


def dark_chart_problems(site: Path, paths: list[str]) -> list[str]:
    """The PNG charts that would sit on a dark background in dark mode, seen by Chromium."""
    return probe_problems(site, paths, 1200, dark=True)


def probe_problems(site: Path, paths: list[str], width: int, dark: bool) -> list[str]:
    browser = chromium()
    if browser is None:
        raise SiteError("no chromium on PATH")
    probe = site / "layout-probe.html"
    probe.write_text(
        PROBE % {"pages": json.dumps(paths), "width": width, "dark": json.dumps(dark)},
        encoding="utf-8",
    )
    flags = [*CHROMIUM_FLAGS, *(DARK_FLAGS if dark else ())]
    try:
        with serve(site) as base, tempfile.TemporaryDirectory() as profile:
            result = subprocess.run(
                [browser, *flags, f"--user-data-dir={profile}", "--dump-dom",
                 "--virtual-time-budget=60000", base + "/layout-probe.html"],
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', result.stdout, re.DOTALL)
    if not found:
        raise SiteError(f"the layout probe printed no result: {result.stderr[-500:]}")
    measured = json.loads(html.unescape(found.group(1)))
    return [f"{path}: {problem}" for path, problems in measured.items() for problem in problems]


def screenshots(site: Path, source: Path = ROOT, out: Path | None = None) -> list[Path]:
    """The home page and every post, light and dark, and light on a phone-wide screen; then
    the phone layout checked on each."""
    out = out or ROOT / "build" / "screenshots"
    pages = pages_to_shoot(source)
    shots = []
    with serve(site) as base:
        for name, path in pages.items():
            for suffix, dark, width in (
                ("", False, 1200),
                ("-dark", True, 1200),
                ("-390", False, PHONE_WIDTH),
            ):
                png = out / f"{name}{suffix}.png"
                screenshot(base + path, png, dark=dark, width=width)
                reason = blank_reason(png)
                if reason:
                    raise SiteError(f"{png.name} ({path}) looks blank: {reason}")
                shots.append(png)
    problems = phone_layout_problems(site, list(pages.values()))
    if problems:
        raise SiteError(f"at {PHONE_WIDTH} px wide:\n" + "\n".join(problems))
    problems = dark_chart_problems(site, list(pages.values()))
    if problems:
        raise SiteError("charts in dark mode:\n" + "\n".join(problems))
    return shots
