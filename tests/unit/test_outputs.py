"""The terminal outputs in posts (tools/outputs.py): what a terminal shows, what is elided, and
what the check compares. The check against a fresh run is in
tests/integration/test_checks_catch_breakage.py."""

from __future__ import annotations

from tools import outputs
from tools.listings import ROOT

FAILURES = next(output for output in outputs.OUTPUTS if output.name == "demo-failures")


def test_the_screen_keeps_what_a_terminal_shows_at_the_end() -> None:
    raw = (
        "start\r\n"
        "\rdays:  10%|#  | 1/10\rdays: 100%|###| 10/10\r\n"  # a bar redrawn in place
        "\rbar 50%\r\x1b[2Kdemo: the bar's line, cleared first\r\n"
        "\x1b[31mred\x1b[0m and \x1b[1mbold\x1b[0m\n"
        "abcdef\rXY\x1b[K\n"
        "no newline at the end"
    )
    assert outputs.screen(raw).splitlines() == [
        "start",
        "days: 100%|###| 10/10",
        "demo: the bar's line, cleared first",
        "red and bold",
        "XY",
        "no newline at the end",
    ]


def test_long_runs_of_volatile_lines_keep_their_first_and_last() -> None:
    lines = ["a", "WARNING 1", "", "WARNING 2", "WARNING 3", "WARNING 4", "b", "WARNING 5", "c"]
    assert outputs.elide("\n".join(lines), (r"^WARNING ",)).splitlines() == [
        "a", "WARNING 1", outputs.ELLIPSIS, "WARNING 4", "b", "WARNING 5", "c",
    ]  # fmt: skip


def test_two_runs_compare_equal_whatever_their_ids_ports_times_and_warnings() -> None:
    saved = outputs.path(FAILURES).read_text(encoding="utf-8")
    sanitize = outputs.sanitizer()
    other_run = (
        saved.replace("127.0.0.1:", "127.0.0.1:1")  # other ports
        .replace(" s in all", "0 s in all")  # another time
        .replace("localmesos: stopped", "WARNING step3_failover: one more\nlocalmesos: stopped")
    )
    assert outputs.comparable(other_run, FAILURES, sanitize) == outputs.comparable(
        saved, FAILURES, sanitize
    )
    # But a different result is a different output.
    wrong = saved.replace("2899932 trips", "2899931 trips")
    assert outputs.comparable(wrong, FAILURES, sanitize) != outputs.comparable(
        saved, FAILURES, sanitize
    )


def test_every_output_is_in_a_post_and_every_post_s_output_exists() -> None:
    used = outputs.included(ROOT)
    names = {output.name for output in outputs.OUTPUTS}
    assert set(used) == names
    for name in names:
        text = (ROOT / outputs.DIRECTORY / f"{name}.txt").read_text(encoding="utf-8")
        assert text.startswith("$ ") and not text.endswith("\n"), name


def test_the_posts_show_make_demo_with_the_step_they_are_about() -> None:
    used = outputs.included(ROOT)
    assert sorted(used["demo-step1"]) == [
        "2026-11-24-paso-1-ofertas-de-recursos-y-un-primer-planificador.md",
        "2026-11-24-step-1-resource-offers-and-a-first-scheduler.md",
    ]
    assert sorted(used["demo-step2"]) == [
        "2026-11-24-paso-2-un-ejecutor-propio-y-mensajes.md",
        "2026-11-24-step-2-a-custom-executor-and-messages.md",
    ]
    assert sorted(used["demo-failures"]) == [
        "2026-11-24-paso-3-tolerancia-a-fallos.md",
        "2026-11-24-step-3-failover.md",
    ]
    # No post prints a `make demo` run by hand any more.
    for post in (ROOT / "_posts").glob("*.md"):
        assert "```text\n$ make demo" not in post.read_text(), post.name
