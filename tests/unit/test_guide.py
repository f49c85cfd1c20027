"""The instructor's guide, taller/GUIA.md and its English twin taller/GUIDE.md, must not rot:
every `make` target it names is in the Makefile, every path of the repository it names exists,
every link and in-page anchor lands somewhere, the flags it gives the steps are theirs, its
sample of `make check-env` has the lines that check-env prints today, and the two languages have
the same sections and the same rows. taller/ is not part of the Jekyll site (_config.yml
excludes it), so nothing else renders or checks these files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from taller.checker import anchor
from tools import ROOT, envcheck

GUIDES = {"es": ROOT / "taller" / "GUIA.md", "en": ROOT / "taller" / "GUIDE.md"}
READMES = {"es": ROOT / "README.md", "en": ROOT / "README.en.md"}
# What running the project creates, and git's own folder: a path under these is not a file of
# the repository to look for.
GENERATED = {"build", ".venv", "_site", ".git"}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code(text: str) -> list[str]:
    """The guide's code: each fenced block's lines, and each inline code span."""
    pieces = [line for block in FENCE.findall(text) for line in block.splitlines()]
    return pieces + re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


def commands(block: str) -> list[str]:
    """The shell commands of a fenced block, with backslash continuations joined."""
    return block.replace("\\\n", " ").splitlines()


def make_targets(makefile: Path = ROOT / "Makefile") -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?![:=])", makefile.read_text(), re.MULTILINE))


def targets_named(text: str) -> set[str]:
    """`make TARGET` where make starts a command (not `apt-get install make ...`)."""
    found = set()
    for piece in code(text):
        found |= set(re.findall(r"(?:^|[;&|(]\s*|\$ )make ([a-z][\w-]*)", piece, re.MULTILINE))
    return found


def paths_named(text: str, root: Path = ROOT) -> set[str]:
    """Tokens of the code that name something in the repository: a path whose first part is
    one of its top-level entries, or a top-level file. Placeholders (`...`) are left out, and
    a `:LINE` suffix is dropped."""
    top = {entry.name for entry in root.iterdir()} - GENERATED
    found = set()
    for piece in code(text):
        for token in re.split(r"[\s,;()=\"']+", piece):
            token = re.sub(r":\d+$", "", token.rstrip(".:"))
            if "..." in token or "://" in token or "*" in token or not token:
                continue
            first = token.split("/", 1)[0]
            if ("/" in token and first in top) or ("/" not in token and token in top):
                found.add(token)
    return found


def headings(text: str) -> list[tuple[int, str]]:
    outside = FENCE.sub("", text)
    return [(len(m[1]), m[2]) for m in re.finditer(r"^(#{1,4}) (.+)$", outside, re.MULTILINE)]


def shape(text: str) -> list[tuple[int, int]]:
    """Per heading: its level and the number of table rows under it, up to the next heading."""
    outside = FENCE.sub("", text)
    parts = re.split(r"^(#{1,4}) .+$", outside, flags=re.MULTILINE)
    levels = [len(p) for p in parts[1::2]]
    rows = [len(re.findall(r"^\|.*\|$", body, re.MULTILINE)) for body in parts[2::2]]
    return list(zip(levels, rows, strict=True))


def broken_links(source: Path) -> list[str]:
    """Relative links of a Markdown file whose file is missing, or whose #anchor is no heading
    of the file it points at (GitHub's ids, as kramdown's: see taller.checker.anchor)."""
    text = source.read_text(encoding="utf-8")
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, fragment = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.exists():
            problems.append(f"{source.name}: {target}: no such file")
        elif fragment and file.suffix == ".md":
            ids = {anchor(h) for _, h in headings(file.read_text(encoding="utf-8"))}
            if fragment not in ids:
                problems.append(f"{source.name}: {target}: no heading with that id")
    return problems


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_every_make_target_the_guide_names_exists(lang: str) -> None:
    named = targets_named(GUIDES[lang].read_text(encoding="utf-8"))
    assert {"check-env", "demo", "lab", "ejercicio", "cluster-up", "wheelhouse"} <= named
    assert named - make_targets() == set()


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_every_repository_path_the_guide_names_exists(lang: str) -> None:
    named = paths_named(GUIDES[lang].read_text(encoding="utf-8"))
    assert "taller/paso1/scheduler.py" in named and "docker/README.md" in named
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_every_link_and_anchor_of_the_guide_lands(lang: str) -> None:
    assert broken_links(GUIDES[lang]) == []


def test_the_readmes_link_to_the_guide_in_their_language() -> None:
    for lang, readme in READMES.items():
        assert f"(taller/{GUIDES[lang].name}" in readme.read_text(encoding="utf-8")
        assert [p for p in broken_links(readme) if "taller/" in p] == []
    assert "(GUIDE.md)" in GUIDES["es"].read_text(encoding="utf-8")
    assert "(GUIA.md)" in GUIDES["en"].read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_flags_the_guide_gives_a_step_are_the_steps(lang: str) -> None:
    text = GUIDES[lang].read_text(encoding="utf-8")
    runs = [
        (m[1], set(re.findall(r"(?<!\S)--[\w-]+", m[2])))
        for block in FENCE.findall(text)
        for line in commands(block)
        if (m := re.search(r"python -m (step\w+) (.*)", line))
    ]
    assert {package for package, _ in runs} == {
        "step1_scheduler",
        "step2_executor",
        "step3_failover",
    }
    for package, flags in runs:
        done = subprocess.run(
            [sys.executable, "-m", package, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        known = set(re.findall(r"(?<!\S)--[\w-]+", done.stdout))
        assert flags - known == set(), f"python -m {package}"


@pytest.mark.parametrize("lang", sorted(GUIDES))
def test_the_check_env_sample_has_the_lines_check_env_prints(lang: str) -> None:
    text = GUIDES[lang].read_text(encoding="utf-8")
    sample = next(block for block in FENCE.findall(text) if block.startswith("$ make check-env"))
    names = [line.split()[1] for line in sample.splitlines() if line[:1] in "✓✗" and line]
    assert names == [check.name for check in envcheck.check_all()]
    assert sample.splitlines()[-1].startswith("check-env: ready for the workshop")


def test_both_languages_have_the_same_sections_and_rows() -> None:
    es, en = (GUIDES[lang].read_text(encoding="utf-8") for lang in ("es", "en"))
    assert shape(es) == shape(en)
    assert len(headings(es)) >= 8
    # The same commands and files, whatever the language.
    assert targets_named(es) == targets_named(en)
    assert paths_named(es) == paths_named(en)


def test_the_checks_find_what_has_rotted(tmp_path: Path) -> None:
    """The helpers above catch a target, a path, a link and an anchor that do not exist."""
    guide = tmp_path / "taller" / "GUIA.md"
    guide.parent.mkdir()
    (tmp_path / "docker").mkdir()
    guide.write_text(
        "# Guía\n\n## Antes\n\n[a](../docker/NOPE.md) [b](#despues) [c](#antes)\n\n"
        "```sh\nmake check-env\nsudo apt-get install make python3-venv\nmake nosuchtarget\n```\n\n"
        "Lee `docker/README.md` y `_posts/...md:180`, no `build/wheelhouse`.\n",
        encoding="utf-8",
    )
    text = guide.read_text(encoding="utf-8")
    assert targets_named(text) - make_targets() == {"nosuchtarget"}
    assert paths_named(text, tmp_path) == {"docker/README.md"}
    assert broken_links(guide) == [
        "GUIA.md: ../docker/NOPE.md: no such file",
        "GUIA.md: #despues: no heading with that id",
    ]
    assert shape(text) == [(1, 0), (2, 0)]
