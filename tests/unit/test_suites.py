"""The harness: in CI a missing tool fails its suite; on a laptop it is one line and a skip."""

from __future__ import annotations

import pytest

from tools import suites


class Counter:
    """A suite body that passes and counts how often it ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return True


MISSING = suites.Need("frobnicator", "apt-get install frobnicator", lambda: False)
PRESENT = suites.Need("sh", "always there", lambda: True)


@pytest.fixture
def ran() -> Counter:
    return Counter()


def test_a_missing_tool_fails_the_suite_in_ci(
    ran: Counter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("CI", "true")
    results = suites.run([suites.Suite("demo", "needs a tool", ran, [MISSING])], asked=False)
    assert results["demo"][0] == "failed"
    assert ran.calls == 0
    out = capsys.readouterr().out
    assert "no frobnicator (apt-get install frobnicator)" in out


def test_a_missing_tool_skips_the_suite_on_a_laptop_in_one_line(
    ran: Counter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("CI", raising=False)
    results = suites.run([suites.Suite("demo", "needs a tool", ran, [MISSING])], asked=False)
    assert results["demo"][0] == "skipped"
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["-- demo: skipped: no frobnicator (apt-get install frobnicator)"]


def test_a_suite_with_its_tools_runs(ran: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    results = suites.run([suites.Suite("demo", "has its tools", ran, [PRESENT])], asked=False)
    assert results["demo"][0] == "passed"
    assert ran.calls == 1


def test_a_ci_only_suite_runs_in_ci_or_when_asked(
    ran: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = suites.Suite("slow", "takes a while", ran, ci_only=True)
    monkeypatch.delenv("CI", raising=False)
    assert suites.run([slow], asked=False)["slow"][0] == "skipped"
    assert suites.run([slow], asked=True)["slow"][0] == "passed"
    monkeypatch.setenv("CI", "true")
    assert suites.run([slow], asked=False)["slow"][0] == "passed"


def test_a_crashing_suite_fails_and_the_next_one_still_runs(ran: Counter) -> None:
    def crash() -> bool:
        raise RuntimeError("boom")

    results = suites.run(
        [suites.Suite("bad", "crashes", crash), suites.Suite("good", "fine", ran)], asked=False
    )
    assert results["bad"][0] == "failed"
    assert results["good"][0] == "passed"


def test_main_exits_non_zero_when_a_suite_fails(
    ran: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suites, "SUITES", [suites.Suite("bad", "fails", lambda: False)])
    assert suites.main([]) == 1
    monkeypatch.setattr(suites, "SUITES", [suites.Suite("good", "passes", ran)])
    assert suites.main([]) == 0


def test_an_unknown_suite_name_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        suites.main(["nbvall"])
    assert "unknown suite nbvall; choose from ruff" in capsys.readouterr().err


def test_every_suite_the_issue_asks_for_is_wired() -> None:
    names = {suite.name for suite in suites.SUITES}
    expected = {
        "ruff", "pytest", "nbval", "listings", "skeletons", "outputs", "site", "screenshots",
        "compose", "pythons", "wheelhouse",
    }  # fmt: skip
    assert names == expected


def test_beside_suites_run_in_a_process_of_their_own_and_come_back_in_the_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The child is this same module, so the suites it runs must exist there by name: the
    # real `listings` suite is cheap and reads only the tree.
    monkeypatch.delenv("CI", raising=False)
    listings = next(suite for suite in suites.SUITES if suite.name == "listings")
    beside = suites.Suite("listings", listings.title, listings.run, beside=True)
    here = suites.Suite("here", "runs in this process", lambda: print("ran here") or True)
    monkeypatch.setattr(suites, "SUITES", [here, beside])
    assert suites.main([]) == 0
    out = capsys.readouterr().out
    assert "-- listings: running beside the others" in out
    assert "sync-listings: listings are up to date" in out  # the child's output, printed whole
    assert out.index("ran here") < out.index("== beside:")
    summary = out[out.index("== summary ==") :]
    assert "here         passed" in summary
    assert "listings     passed" in summary and "(beside)" in summary


def test_a_failing_beside_suite_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # An unknown name makes the child exit before it writes any result: that must fail.
    ghost = suites.Suite("ghost", "only in this process", lambda: True, beside=True)
    here = suites.Suite("here", "passes", lambda: True)
    monkeypatch.setattr(suites, "SUITES", [here, ghost])
    assert suites.main([]) == 1


def test_alongside_suites_run_in_a_process_of_their_own_while_the_others_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("CI", raising=False)
    listings = next(suite for suite in suites.SUITES if suite.name == "listings")
    alongside = suites.Suite("listings", listings.title, listings.run, alongside=True)
    here = suites.Suite("here", "runs in this process", lambda: print("ran here") or True)
    monkeypatch.setattr(suites, "SUITES", [here, alongside])
    assert suites.main([]) == 0
    out = capsys.readouterr().out
    assert "-- listings: running alongside the others" in out
    assert "sync-listings: listings are up to date" in out
    assert out.index("ran here") < out.index("== alongside:")
    summary = out[out.index("== summary ==") :]
    assert "listings     passed" in summary and "(alongside)" in summary


def test_an_alongside_suite_asked_for_alone_runs_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    alone = suites.Suite("alone", "runs here", lambda: print("ran alone") or True, alongside=True)
    monkeypatch.setattr(suites, "SUITES", [alone])
    assert suites.main(["alone"]) == 0
    out = capsys.readouterr().out
    assert "running alongside" not in out
    assert "ran alone" in out


def test_the_notebooks_and_the_outputs_run_alongside_pytest() -> None:
    by_name = {suite.name: suite for suite in suites.SUITES}
    assert by_name["nbval"].alongside and by_name["outputs"].alongside
    assert not by_name["pytest"].alongside and not by_name["pytest"].beside


def test_an_apart_suite_runs_beside_in_a_process_of_its_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Two children, each printing its own suite; both come back in the summary.
    monkeypatch.delenv("CI", raising=False)
    by_name = {suite.name: suite for suite in suites.SUITES}
    shared = suites.Suite("listings", "shared", by_name["listings"].run, beside=True)
    apart = suites.Suite("skeletons", "apart", by_name["skeletons"].run, beside=True, apart=True)
    here = suites.Suite("here", "runs in this process", lambda: True)
    monkeypatch.setattr(suites, "SUITES", [here, shared, apart])
    assert suites.main([]) == 0
    out = capsys.readouterr().out
    assert "-- listings: running beside the others" in out
    assert "-- skeletons: running beside the others" in out  # not "listings, skeletons"
    summary = out[out.index("== summary ==") :]
    assert "listings     passed" in summary and "skeletons    passed" in summary


def test_the_wheelhouse_runs_apart() -> None:
    by_name = {suite.name: suite for suite in suites.SUITES}
    assert by_name["wheelhouse"].beside and by_name["wheelhouse"].apart
    assert not any(s.apart for s in suites.SUITES if s.name != "wheelhouse")
