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
from pathlib import Path

import pytest

from tests.conftest import ROOT, need
from tools import site
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
    need("jekyll", "make setup installs it")
    need("htmlproofer", "make setup installs ruby-html-proofer")
    source = copy_site(tmp_path / "src")
    site.proof(site.build(source, tmp_path / "good"))

    post = sorted((source / "_posts").glob("*.md"))[0]
    post.write_text(post.read_text() + "\n\nVéase [la parte que falta](/es/no-existe/).\n")
    built = site.build(source, tmp_path / "broken")
    with pytest.raises(site.SiteError, match="broken links"):
        site.proof(built)


def test_a_post_without_its_twin_fails_the_site_check(tmp_path: Path) -> None:
    need("jekyll", "make setup installs it")
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
