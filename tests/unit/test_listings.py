"""The listing tool: anchors, errors that name what is wrong, and the staleness check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import listings

SOURCE = """\
import os


# ANCHOR: outer
def outer():
    # ANCHOR: inner
    return os.getcwd()
    # ANCHOR_END: inner
# ANCHOR_END: outer
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(SOURCE)
    return tmp_path


def test_a_region_excludes_every_marker_line(tree: Path) -> None:
    assert listings.extract("pkg/mod.py", "outer", root=tree) == (
        "def outer():\n    return os.getcwd()\n"
    )


def test_a_nested_region_is_dedented(tree: Path) -> None:
    assert listings.extract("pkg/mod.py", "inner", root=tree) == "return os.getcwd()\n"


def test_exercise_markers_stay_out_of_listings(tree: Path) -> None:
    (tree / "pkg" / "ex.py").write_text(
        "class C:\n"
        "    # ANCHOR: both\n"
        "    # EXERCISE: one\n"
        "    def one(self):\n"
        "        return 1\n"
        "\n"
        "    # EXERCISE_END: one\n"
        "\n"
        "    # EXERCISE: two\n"
        "    def two(self):\n"
        "        return 2\n"
        "\n"
        "    # EXERCISE_END: two\n"
        "    # ANCHOR_END: both\n"
    )
    # A marker between two blank lines leaves one of them, as if it had never been there.
    assert listings.extract("pkg/ex.py", "both", root=tree) == (
        "def one(self):\n    return 1\n\ndef two(self):\n    return 2\n"
    )


def test_no_anchor_means_the_whole_file(tree: Path) -> None:
    assert listings.extract("pkg/mod.py", root=tree).startswith("import os\n")


@pytest.mark.parametrize(
    ("path", "anchor", "message"),
    [
        ("pkg/nope.py", None, "'pkg/nope.py': no such file"),
        ("pkg/mod.py", "missing", "'pkg/mod.py': no line '# ANCHOR: missing'"),
    ],
)
def test_errors_name_the_file_and_the_anchor(
    tree: Path, path: str, anchor: str | None, message: str
) -> None:
    with pytest.raises(listings.ListingError, match=message):
        listings.extract(path, anchor, root=tree)


def test_an_unclosed_anchor_is_an_error(tree: Path) -> None:
    (tree / "pkg" / "mod.py").write_text("# ANCHOR: open\nx = 1\n")
    with pytest.raises(listings.ListingError, match="no line '# ANCHOR_END: open'"):
        listings.extract("pkg/mod.py", "open", root=tree)


def test_fenced_keeps_liquid_away_from_the_code(tree: Path) -> None:
    (tree / "pkg" / "mod.py").write_text('x = f"{{literal}}"\n')
    text = listings.fenced("pkg/mod.py", root=tree)
    assert text.startswith("{% raw %}\n")
    assert text.rstrip().endswith("{% endraw %}")
    assert "<code>pkg/mod.py</code>" in text
    assert '```python\nx = f"{{literal}}"\n```' in text


def test_every_post_with_markers_is_found() -> None:
    found = {path.parent.name for path in listings.documents()}
    assert found <= {"_posts", listings.ROOT.name}


def post_with_listing(tmp_path: Path) -> Path:
    """A post that shows the RecordIO listing, synced from the real code."""
    post = tmp_path / "post.md"
    post.write_text(
        "Texto.\n\n"
        '<!-- [[[cog listing("tools/envcheck.py", "recordio") ]]] -->\n'
        "<!-- [[[end]]] -->\n"
    )
    assert listings.main([str(post)]) == 0
    return post


def test_sync_fills_the_listing_from_the_code(tmp_path: Path) -> None:
    post = post_with_listing(tmp_path)
    assert listings.extract("tools/envcheck.py", "recordio") in post.read_text()
    assert listings.main(["--check", str(post)]) == 0


def test_a_stale_listing_fails_the_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    post = post_with_listing(tmp_path)
    text = post.read_text()
    post.write_text(text.replace("def recordio(", "def record_io(", 1))
    assert listings.main(["--check", str(post)]) != 0
    captured = capsys.readouterr()
    assert "run 'sync-listings' to update them" in captured.out + captured.err


def test_a_listing_of_a_missing_anchor_fails_the_check(tmp_path: Path) -> None:
    post = post_with_listing(tmp_path)
    post.write_text(post.read_text().replace('"recordio"', '"no-such-anchor"'))
    assert listings.main(["--check", str(post)]) != 0
