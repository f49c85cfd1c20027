"""The step 1 post's screenshots of the live page (assets/img/paso-1/) come from
`python -m tools.ui_shots`: run it again into build/, and compare with what is committed."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from tests.integration import ui_support as ui
from tools import ROOT, ui_shots
from tools.site import blank_reason

pytestmark = pytest.mark.integration

POSTS = {
    "es": ROOT / "_posts" / "2026-11-24-paso-1-ofertas-de-recursos-y-un-primer-planificador.md",
    "en": ROOT / "_posts" / "2026-11-24-step-1-resource-offers-and-a-first-scheduler.md",
}


def declared_size(post: str, name: str) -> tuple[int, int]:
    """The width and height that the post's <img> of ``name`` declares."""
    tag = re.search(rf"<img src=\"{{{{ '/assets/img/paso-1/{re.escape(name)}'[^>]*>", post)
    assert tag, f"the post shows no <img> of {name}"
    width = re.search(r'width="(\d+)"', tag[0])
    height = re.search(r'height="(\d+)"', tag[0])
    assert width and height, f"the <img> of {name} declares no width and height: {tag[0][:120]}"
    return int(width[1]), int(height[1])


def test_the_posts_screenshots_come_from_the_tool() -> None:
    ui.browser_paths()  # fail (CI) or skip first, before any cluster starts
    out = ROOT / "build" / "ui-shots"
    taken = ui_shots.take(out)
    assert sorted(png.name for png in taken) == sorted(ui_shots.NAMES.values())
    for lang, name in ui_shots.NAMES.items():
        fresh = out / name
        assert blank_reason(fresh) is None, f"{fresh} looks blank: {blank_reason(fresh)}"
        committed = ui_shots.OUT / name
        assert committed.is_file(), f"{committed} is missing: run python -m tools.ui_shots"
        with Image.open(fresh) as new, Image.open(committed) as old:
            assert new.size == old.size, (
                f"{name}: the tool now makes {new.size}, the committed one is {old.size};"
                " run python -m tools.ui_shots and commit the result"
            )
            assert declared_size(POSTS[lang].read_text(), name) == old.size, (
                f"{POSTS[lang].name}: its <img> of {name} must declare {old.size}"
            )
