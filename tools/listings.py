"""Code listings pulled from the step packages into posts and notebooks.

A listing is an anchored region of a source file, marked as in the Rust book:

    # ANCHOR: offers
    ...code...
    # ANCHOR_END: offers

Regions marked `# EXERCISE: name` ... `# EXERCISE_END: name` (the workshop's exercises, see
`taller/`) may sit inside an anchor; their marker lines are left out of listings too.

Posts hold cog markers (in HTML comments, so they do not show) that call ``listing()``:

    <!-- [[[cog listing("step1_scheduler/scheduler.py", "offers") ]]] -->
    <!-- [[[end]]] -->

``sync-listings`` fills every such region from the code; ``sync-listings --check`` fails when
a region is stale. Notebooks call ``show()``, whose output nbval compares with the saved one.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from tools import ROOT

SKIP_DIRS = {".git", ".venv", "_site", "build", ".jekyll-cache", "node_modules"}
# Marker lines: anchors, and the regions that the workshop turns into exercises (taller/).
MARKER = re.compile(r"^\s*# (?:ANCHOR|EXERCISE)(?:_END)?: (?P<name>[\w-]+)\s*$")


class ListingError(Exception):
    """A listing names a file or an anchor that does not exist."""


def extract(path: str, anchor: str | None = None, root: Path = ROOT) -> str:
    """Return the anchored region of ``path`` (or the whole file), without marker lines."""
    source = root / path
    if not source.is_file():
        raise ListingError(f"listing {path!r}: no such file under {root}")
    lines = source.read_text(encoding="utf-8").splitlines()
    if anchor is not None:
        start_marker, end_marker = f"# ANCHOR: {anchor}", f"# ANCHOR_END: {anchor}"
        stripped = [line.strip() for line in lines]
        if start_marker not in stripped:
            raise ListingError(f"listing {path!r}: no line '{start_marker}'")
        if end_marker not in stripped:
            raise ListingError(f"listing {path!r}: no line '{end_marker}'")
        start, end = stripped.index(start_marker), stripped.index(end_marker)
        if end < start:
            raise ListingError(f"listing {path!r}: '{end_marker}' comes before '{start_marker}'")
        lines = lines[start + 1 : end]
    return textwrap.dedent("\n".join(without_markers(lines))).strip("\n") + "\n"


def without_markers(lines: list[str]) -> list[str]:
    """Anchors may nest or overlap, and hold exercise regions: no marker line belongs in a
    listing, and a marker between two blank lines leaves one of them, not both."""
    kept: list[str] = []
    after_marker_and_blank = False
    for line in lines:
        if MARKER.match(line):
            after_marker_and_blank = bool(kept) and not kept[-1].strip()
        elif after_marker_and_blank and not line.strip():
            after_marker_and_blank = False
        else:
            after_marker_and_blank = False
            kept.append(line)
    return kept


def fenced(path: str, anchor: str | None = None, root: Path = ROOT) -> str:
    """The Markdown for a listing: a caption naming the file, then the highlighted code."""
    code = extract(path, anchor, root)
    # raw: Jekyll must not read '{{' or '{%' in Python code as Liquid.
    return (
        "{% raw %}\n"
        f'<p class="listing-name"><code>{path}</code></p>\n\n'
        f"```python\n{code}```\n"
        "{% endraw %}\n"
    )


def listing(path: str, anchor: str | None = None) -> None:
    """Called from cog markers in posts."""
    import cog  # provided by cogapp only while it runs

    cog.out(fenced(path, anchor))


def show(path: str, anchor: str | None = None):
    """Display a listing in a notebook, highlighted; its plain-text form is the code itself."""
    from IPython.display import Code

    return Code(extract(path, anchor), language="python")


def documents(root: Path = ROOT) -> list[Path]:
    """Every Markdown file that holds a cog marker."""
    found = []
    for path in sorted(root.rglob("*.md")):
        if SKIP_DIRS.intersection(path.relative_to(root).parts):
            continue
        if "[[[cog" in path.read_text(encoding="utf-8"):
            found.append(path)
    return found


def run_cog(files: list[Path], check: bool, root: Path = ROOT) -> int:
    from cogapp import Cog

    prelude = "from tools.listings import listing"
    if check:
        mode = ["--check", "--diff", "--check-fail-msg=run 'sync-listings' to update them"]
    else:
        mode = ["-r"]
    argv = ["cog", *mode, "-p", prelude, "-I", str(root), *map(str, files)]
    return Cog().main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sync-listings",
        description="Fill the code listings in posts from the step packages.",
    )
    parser.add_argument("--check", action="store_true", help="fail if any listing is stale")
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: all)")
    args = parser.parse_args(argv)
    files = args.files or documents()
    if not files:
        print("sync-listings: no Markdown file holds a listing marker")
        return 0
    status = run_cog(files, check=args.check)
    if status == 0:
        verb = "are up to date in" if args.check else "synced in"
        print(f"sync-listings: listings {verb} {len(files)} file(s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
