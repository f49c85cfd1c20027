"""Each check of `make test` fails when the thing it guards is broken.

Every test runs the real checker twice on copies: untouched (it must pass, so the failure
that follows is caused by the break) and broken (it must fail).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, need
from tools import outputs, site
from tools.suites import compose_schema_check

# Everything but what is large or generated: the copy must build exactly like the real site.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "_site", "build", ".jekyll-cache", "*.ipynb")


def test_a_changed_notebook_output_fails_nbval(tmp_path: Path) -> None:
    notebook = json.loads((ROOT / "notebooks" / "00_entorno.ipynb").read_text())
    (tmp_path / "good.ipynb").write_text(json.dumps(notebook))
    checked = next(
        cell
        for cell in notebook["cells"]
        if cell["cell_type"] == "code" and "NBVAL_IGNORE_OUTPUT" not in "".join(cell["source"])
        and cell["outputs"]
    )  # fmt: skip
    output = checked["outputs"][0]
    output["text"] = ["a saved output that the code no longer prints\n"]
    (tmp_path / "broken.ipynb").write_text(json.dumps(notebook))
    shutil.copy(ROOT / "notebooks" / "sanitize.cfg", tmp_path)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", "sanitize.cfg", "--color=no",
         "--rootdir", str(tmp_path), "good.ipynb", "broken.ipynb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    outcomes = dict(re.findall(r"^(\w+\S*::Cell \d+) (PASSED|FAILED)", result.stdout, re.M))
    good = {cell: outcome for cell, outcome in outcomes.items() if cell.startswith("good")}
    broken = {cell: outcome for cell, outcome in outcomes.items() if cell.startswith("broken")}
    assert good and set(good.values()) == {"PASSED"}, result.stdout
    assert list(broken.values()).count("FAILED") == 1, result.stdout
    assert "Cell outputs differ" in result.stdout
    assert result.returncode != 0


def copy_site(destination: Path) -> Path:
    return Path(shutil.copytree(ROOT, destination, ignore=NOT_COPIED))


def test_a_broken_internal_link_fails_the_site_check(tmp_path: Path) -> None:
    need("jekyll", "make setup-dev installs it")
    need("htmlproofer", "make setup-dev installs ruby-html-proofer")
    source = copy_site(tmp_path / "src")
    site.proof(site.build(source, tmp_path / "good"))

    post = sorted((source / "_posts").glob("*.md"))[0]
    post.write_text(post.read_text() + "\n\nVéase [la parte que falta](/es/no-existe/).\n")
    built = site.build(source, tmp_path / "broken")
    with pytest.raises(site.SiteError, match="broken links"):
        site.proof(built)


def test_a_post_without_its_twin_fails_the_site_check(tmp_path: Path) -> None:
    need("jekyll", "make setup-dev installs it")
    source = copy_site(tmp_path / "src")
    english = next(p for p in (source / "_posts").glob("*.md") if "lang: en" in p.read_text())
    english.unlink()
    with pytest.raises(site.SiteError, match="has no twin"):
        site.check_pages(source, site.build(source, tmp_path / "site"))


def test_an_invalid_compose_file_fails_the_schema_check(tmp_path: Path) -> None:
    good = tmp_path / "docker-compose.yml"
    shutil.copy(ROOT / "docker-compose.yml", good)
    assert subprocess.run(compose_schema_check(good), capture_output=True).returncode == 0

    broken = tmp_path / "broken.yml"
    text = good.read_text()
    broken.write_text(text.replace("services:\n", "services:\n  master_typo:\n    imagee: x\n", 1))
    result = subprocess.run(compose_schema_check(broken), capture_output=True, text=True)
    assert result.returncode != 0
    assert "imagee" in result.stdout + result.stderr


def test_a_stale_terminal_output_fails_the_outputs_check(tmp_path: Path) -> None:
    output = next(o for o in outputs.OUTPUTS if o.name == "step2-executor-alone")
    saved = outputs.path(output, ROOT).read_text(encoding="utf-8")
    root = tmp_path / "copy"
    (root / "_posts").mkdir(parents=True)
    post = next(
        p for p in (ROOT / "_posts").glob("*.md") if "outputs/step2-executor" in p.read_text()
    )
    shutil.copy(post, root / "_posts" / post.name)
    copy = outputs.path(output, root)
    copy.parent.mkdir(parents=True)
    copy.write_text(saved, encoding="utf-8")
    assert outputs.check([output], root) == []

    # What the post would show had the executor's message changed since the output was taken.
    copy.write_text(saved.replace("a Mesos agent starts this program", "run me by hand"))
    problems = outputs.check([output], root)
    assert len(problems) == 1
    assert (
        "step2-executor-alone.txt is stale: run 'sync-outputs step2-executor-alone'" in problems[0]
    )
    assert "-python -m step2_executor.executor: error: run me by hand" in problems[0]


def test_a_post_without_its_place_in_the_series_fails_the_site_check(tmp_path: Path) -> None:
    need("jekyll", "make setup-dev installs it")
    source = copy_site(tmp_path / "src")
    site.check_pages(source, site.build(source, tmp_path / "good"))

    layout = source / "_layouts" / "post.html"
    layout.write_text(layout.read_text().replace("{% include series-nav.html %}", ""))
    with pytest.raises(site.SiteError, match="previous/next links are missing"):
        site.check_pages(source, site.build(source, tmp_path / "broken"))


def probe_before_and_after(
    tmp_path: Path, lang: str, probe: Callable[[Path, list[str]], list[str]], old: str, new: str
) -> list[str]:
    """What ``probe`` finds on the posts in ``lang``: nothing on the site as it is, and then,
    returned, on the site built with ``old`` replaced by ``new`` in its stylesheet."""
    need("jekyll", "make setup-dev installs it")
    if site.chromium() is None:
        need("chromium", "make setup-dev installs it")
    source = copy_site(tmp_path / "src")
    paths = [post.permalink for post in site.posts(source) if post.lang == lang]
    assert probe(site.build(source, tmp_path / "good"), paths) == []
    css = source / "assets" / "css" / "style.css"
    text = css.read_text()
    assert old in text
    css.write_text(text.replace(old, new, 1))
    return probe(site.build(source, tmp_path / "broken"), paths)


def test_inline_code_broken_at_a_hyphen_fails_the_phone_layout_check(tmp_path: Path) -> None:
    problems = probe_before_and_after(
        tmp_path, "en", site.phone_layout_problems, "  white-space: nowrap;\n}\n", "}\n"
    )
    assert any("inline code broken across lines" in problem for problem in problems), problems


def test_a_chart_left_on_the_dark_page_fails_the_dark_mode_check(tmp_path: Path) -> None:
    # The light card that the PNG charts get in dark mode, gone.
    card = "    background: #ffffff;\n    border-radius: 6px;\n    padding: 0.5rem;\n"
    problems = probe_before_and_after(
        tmp_path, "es", site.dark_chart_problems, card, "    padding: 0.5rem;\n"
    )
    assert any("sits on a dark background" in problem for problem in problems), problems
