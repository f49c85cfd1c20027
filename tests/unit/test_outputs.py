"""The terminal outputs in posts (tools/outputs.py): what a terminal shows, what is elided, and
what the check compares. The check against a fresh run is in
tests/integration/test_checks_catch_breakage.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def test_folds_keep_the_first_and_last_lines_of_each_run_of_one_kind() -> None:
    lines = ["start", *(f"offer O{n}: launched 4 tasks" for n in range(6)), "done"]
    folded = outputs.elide("\n".join(lines), (), (outputs.Fold(r": launched \d+ tasks$", 2, 1),))
    assert folded.splitlines() == [
        "start", "offer O0: launched 4 tasks", "offer O1: launched 4 tasks", outputs.ELLIPSIS,
        "offer O5: launched 4 tasks", "done",
    ]  # fmt: skip
    # Each volatile pattern is a kind of its own: two kinds in a row are two runs.
    mixed = ["A 1", "A 2", "A 3", "A 4", "B 1", "B 2", "B 3", "B 4"]
    assert outputs.elide("\n".join(mixed), (r"^A ", r"^B ")).splitlines() == [
        "A 1", outputs.ELLIPSIS, "A 4", "B 1", outputs.ELLIPSIS, "B 4",
    ]  # fmt: skip


def test_shortened_ids_and_log_milliseconds_compare_as_the_ids_and_times_they_stand_for() -> None:
    sanitize = outputs.sanitizer()
    full = "agent 0c9dfb2e-1111-2222-3333-444455556666-S0 at 2026-11-24 20:21:49,672"
    short = re.sub(*outputs.SHORT_IDS, full)
    assert short == "agent 0c9dfb2e-…-S0 at 2026-11-24 20:21:49,672"
    assert sanitize(short) == sanitize(full.replace("-S0", "-S1")) == "agent UUID-SN at TIMESTAMP"


def test_a_cluster_s_ports_are_shown_as_the_post_s() -> None:
    shown = {"127.0.0.1:5050": "127.0.0.1:40001", "127.0.0.1:5051": "127.0.0.1:40002"}
    text = "Location: //localhost:40001/master/state\nstandby at 127.0.0.1:40002, not :400011"
    assert outputs.as_shown(text, shown) == (
        "Location: //localhost:5050/master/state\nstandby at 127.0.0.1:5051, not :400011"
    )


def test_a_server_is_stopped_once_its_start_line_shows(tmp_path: Path) -> None:
    server = "trap 'exit 0' INT; echo starting; echo 'ready at :1'; while :; do sleep 0.1; done"
    status, text = outputs.run_in_terminal(
        ["bash", "-c", server], tmp_path, timeout=30, until=r"^ready at "
    )
    assert status == 0  # the trap ran: SIGINT, as Ctrl+C, not a kill at the timeout
    assert outputs.screen(text).splitlines() == ["starting", "ready at :1"]
    # A server that ends without its start line is an error, not an empty output.
    with pytest.raises(outputs.OutputError, match="before printing"):
        outputs.run_in_terminal(["bash", "-c", "echo oops"], tmp_path, timeout=30, until="^ready")


PASTED = """---
title: a post
---
Commands to type are fine:

```text
$ make cluster-up
$ .venv/bin/python -m step1_scheduler --master localhost:5050 \\
    --task-python python3
```

So is an output that a tool wrote:

```text
{% include outputs/step1-by-hand.txt %}
```

But not one pasted by hand:

```text
$ .venv/bin/localmesos --agents 2
localmesos: master at http://127.0.0.1:5050 with 2 agents
```

A listing is not a terminal:

```python
def main() -> None:
    print("hello")
```

Nor is a block without a language a way round the rule:

```
$ make demo STEP=1
demo: done
```
"""


def test_the_check_fails_on_a_terminal_output_pasted_into_a_post(tmp_path: Path) -> None:
    posts = tmp_path / "_posts"
    posts.mkdir()
    (posts / "2026-11-24-a-post.md").write_text(PASTED, encoding="utf-8")
    assert outputs.pasted_blocks(tmp_path) == [
        "2026-11-24-a-post.md:20: localmesos: master at http://127.0.0.1:5050 with 2 agents",
        "2026-11-24-a-post.md:34: demo: done",
    ]
    problems = outputs.check([], tmp_path)
    assert any("2026-11-24-a-post.md:20:" in p and "pasted by hand" in p for p in problems)
    # Through the include, the same post passes that part of the check.
    fixed = PASTED.replace(
        "$ .venv/bin/localmesos --agents 2\nlocalmesos: master at http://127.0.0.1:5050 with 2 "
        "agents",
        "{% include outputs/localmesos-start.txt %}",
    )
    fixed = fixed.replace("$ make demo STEP=1\ndemo: done", "{% include outputs/demo-step1.txt %}")
    (posts / "2026-11-24-a-post.md").write_text(fixed, encoding="utf-8")
    assert outputs.pasted_blocks(tmp_path) == []
    assert not any("pasted by hand" in p for p in outputs.check([], tmp_path))


def test_no_post_shows_a_terminal_output_by_hand() -> None:
    assert outputs.pasted_blocks(ROOT) == []
