"""Resources: the flag and JSON formats, Mesos's validation, fixed-point scalars, range sets."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localmesos.resources import Resources

AGENT = "cpus:2;mem:2048;disk:4096;ports:[31000-31999]"


def scalar(name: str, value: object, **extra: object) -> dict[str, object]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}


def ranges(name: str, *pairs: tuple[object, object], **extra: object) -> dict[str, object]:
    items = [{"begin": begin, "end": end} for begin, end in pairs]
    return {"name": name, "type": "RANGES", "ranges": {"range": items}, **extra}


# Parsing the flag format.


def test_parse_the_agent_flag() -> None:
    parsed = Resources.parse(AGENT)
    assert parsed.scalars() == {"cpus": 2.0, "mem": 2048.0, "disk": 4096.0}
    assert parsed.ranges("ports") == ((31000, 31999),)
    assert parsed.scalar("gpus") == 0.0
    assert parsed.ranges("other") == ()


def test_parse_tolerates_roles_spaces_and_empty_parts() -> None:
    parsed = Resources.parse(" cpus(*): 1.5 ;; mem (*) :256; ports:[31000 - 31010, 32000-32005];")
    assert parsed.scalars() == {"cpus": 1.5, "mem": 256.0}
    assert parsed.ranges("ports") == ((31000, 31010), (32000, 32005))


def test_parse_sums_repeats_and_merges_overlapping_ranges() -> None:
    # Mesos coalesces ranges from the flag before validating them, so overlaps are fine here.
    parsed = Resources.parse("cpus:1;cpus:0.5;ports:[10-20,15-30];ports:[31-40,50-50]")
    assert parsed.scalar("cpus") == 1.5
    assert parsed.ranges("ports") == ((10, 40), (50, 50))


def test_parse_empty_text_and_zero_values_give_nothing() -> None:
    assert not Resources.parse("")
    assert not Resources.parse("   ")
    assert not Resources.parse("cpus:0;ports:[]")
    assert Resources.parse("cpus:0;mem:1") == Resources.parse("mem:1")


def test_parse_accepts_a_json_array_like_the_agent_flag() -> None:
    text = json.dumps([scalar("cpus", 2), ranges("ports", (1, 5))])
    assert Resources.parse(text) == Resources.parse("cpus:2;ports:[1-5]")


def test_parse_accepts_any_scalar_or_ranges_name() -> None:
    parsed = Resources.parse("bandwidth:100;slots:[1-3]")
    assert parsed.scalar("bandwidth") == 100.0
    assert parsed.ranges("slots") == ((1, 3),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpus:abc", "bad resource 'cpus:abc': value is not a number"),
        ("cpus:nan", "bad resource 'cpus:nan': value is not a number"),
        ("cpus:1_0", "bad resource 'cpus:1_0': value is not a number"),
        ("cpus:1e400", "bad resource 'cpus:1e400': value is not a finite number"),
        ("mem:-1", "bad resource 'mem:-1': value is negative"),
        ("cpus:0.0004", "bad resource 'cpus:0.0004': value 0.0004 is below the 0.001 granularity"),
        ("cpus", "bad resource 'cpus': expected name:value"),
        ("cpus:1:2", "bad resource 'cpus:1:2': expected name:value"),
        (":1", "bad resource ':1': empty name"),
        ("cpus:", "bad resource 'cpus:': empty value"),
        ("cpus(*:1", "bad resource 'cpus(*:1': mismatched parentheses"),
        ("cpus)*(:1", "bad resource 'cpus)*(:1': mismatched parentheses"),
        ("cpus(web):1", "bad resource 'cpus(web):1': reservations (role 'web') are unsupported"),
        ("ports:[1-2", "bad resource 'ports:[1-2': mismatched brackets"),
        ("ports:[1-2]]", "bad resource 'ports:[1-2]]': mismatched brackets"),
        ("ports:[1-]", "bad resource 'ports:[1-]': bad range '1-'"),
        ("ports:[a-b]", "bad resource 'ports:[a-b]': bad range 'a-b'"),
        ("ports:[1-2-3]", "bad resource 'ports:[1-2-3]': bad range '1-2-3'"),
        ("ports:[9-1]", "bad resource 'ports:[9-1]': range begin 9 > end 1"),
        ("ports:[1-18446744073709551616]", "range bounds must be in 0..2^64-1"),
        ("x:{a,b}", "bad resource 'x:{a,b}': SET resources are unsupported"),
        ("cpus:1;cpus:[1-2]", "bad resource 'cpus:[1-2]': 'cpus' appears as both scalar and"),
        ("[1, 2", "bad resources JSON:"),
    ],
)
def test_parse_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Resources.parse(text)
    assert message in str(caught.value)


# The v1 JSON format.


def test_from_json_reads_v1_resources() -> None:
    parsed = Resources.from_json(
        [
            scalar("cpus", 1.5, role="*"),
            scalar("mem", 128),
            ranges("ports", (31000, 31005), (31010, 31010), role="*", allocation_info={}),
        ]
    )
    assert parsed == Resources.parse("cpus:1.5;mem:128;ports:[31000-31005,31010-31010]")


def test_from_json_takes_numbers_written_as_strings() -> None:
    parsed = Resources.from_json([scalar("cpus", "0.5"), ranges("ports", ("10", "12"))])
    assert parsed == Resources.parse("cpus:0.5;ports:[10-12]")


def test_from_json_drops_zero_scalars_and_empty_ranges_and_sums_repeats() -> None:
    parsed = Resources.from_json(
        [
            scalar("gpus", 0),
            ranges("ports"),
            scalar("cpus", 0.25),
            scalar("cpus", 0.25),
            ranges("ports", (5, 6)),
            ranges("ports", (7, 9)),
        ]
    )
    assert parsed == Resources.parse("cpus:0.5;ports:[5-9]")
    assert "gpus" not in parsed.scalars()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"name": "cpus"}, "resources must be a JSON array, not dict"),
        ("cpus:1", "resources must be a JSON array, not str"),
        (["cpus"], "bad resource #0: not a JSON object"),
        ([{"type": "SCALAR", "scalar": {"value": 1}}], "bad resource #0: missing or empty 'name'"),
        ([scalar("", 1)], "bad resource #0: missing or empty 'name'"),
        ([{"name": "cpus", "scalar": {"value": 1}}], "bad resource #0 'cpus': missing 'type'"),
        ([{**scalar("cpus", 1), "type": "FLOAT"}], "bad resource #0 'cpus': invalid type 'FLOAT'"),
        ([{**scalar("cpus", 1), "type": "scalar"}], "invalid type 'scalar'"),
        ([{"name": "x", "type": "SET", "set": {"item": ["a"]}}], "SET resources are unsupported"),
        ([{"name": "x", "type": "TEXT"}], "bad resource #0 'x': TEXT resources are unsupported"),
        (
            [{"name": "cpus", "type": "SCALAR"}],
            "bad resource #0 'cpus': a SCALAR needs 'scalar' and nothing else",
        ),
        (
            [{**scalar("cpus", 1), "ranges": {"range": []}}],
            "a SCALAR needs 'scalar' and nothing else",
        ),
        ([{**ranges("ports", (1, 2)), "type": "SCALAR"}], "a SCALAR needs 'scalar'"),
        ([{**scalar("cpus", 1), "type": "RANGES"}], "a RANGES needs 'ranges' and nothing else"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {}}], "missing 'scalar.value'"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": 1}], "missing 'scalar.value'"),
        ([scalar("cpus", "abc")], "bad resource #0 'cpus': value is not a number"),
        ([scalar("cpus", True)], "bad resource #0 'cpus': value is not a number"),
        ([scalar("cpus", None)], "bad resource #0 'cpus': value is not a number"),
        ([scalar("cpus", -0.5)], "bad resource #0 'cpus': value is negative"),
        ([scalar("cpus", math.nan)], "bad resource #0 'cpus': value is not a finite number"),
        ([scalar("cpus", math.inf)], "bad resource #0 'cpus': value is not a finite number"),
        ([scalar("mem", 0.0001)], "value 0.0001 is below the 0.001 granularity"),
        ([{"name": "p", "type": "RANGES", "ranges": []}], "'ranges' must be an object"),
        (
            [{"name": "p", "type": "RANGES", "ranges": {"range": {}}}],
            "'ranges.range' must be a list",
        ),
        (
            [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1}]}}],
            "bad resource #0 'p': each range needs 'begin' and 'end'",
        ),
        ([ranges("p", (1.5, 2))], "bad resource #0 'p': range bound 1.5 is not an integer"),
        ([ranges("p", (True, 2))], "range bound True is not an integer"),
        ([ranges("p", (-1, 2))], "bad resource #0 'p': range bounds must be in 0..2^64-1"),
        ([ranges("p", (2**64, 2**64))], "range bounds must be in 0..2^64-1"),
        ([ranges("p", (5, 1))], "bad resource #0 'p': range begin 5 > end 1"),
        ([ranges("p", (1, 5), (5, 9))], "bad resource #0 'p': overlapping ranges"),
        # Mesos's own check would miss this one: the later range starts first.
        ([ranges("p", (5, 9), (1, 5))], "bad resource #0 'p': overlapping ranges"),
        ([ranges("p", (1, 10), (3, 4))], "overlapping ranges"),
        ([scalar("cpus", 1, role="web")], "reservations (role 'web') are unsupported"),
        (
            [scalar("cpus", 1, reservations=[{"type": "STATIC", "role": "web"}])],
            "bad resource #0 'cpus': reservations are unsupported",
        ),
        (
            [scalar("cpus", 1), scalar("mem", 1), ranges("cpus", (1, 2))],
            "bad resource #2 'cpus': 'cpus' appears as both scalar and ranges",
        ),
    ],
)
def test_from_json_rejects_what_mesos_validation_rejects(items: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Resources.from_json(items)
    assert message in str(caught.value)


def test_from_json_accepts_adjacent_ranges_and_an_explicit_empty_reservation_list() -> None:
    parsed = Resources.from_json([ranges("p", (1, 4), (5, 9), reservations=[])])
    assert parsed.ranges("p") == ((1, 9),)


# Output.


def test_to_json_orders_names_and_uses_v1_shapes() -> None:
    parsed = Resources.parse("zeta:1;ports:[2-3,5-5];alpha:[1-1];gpus:1;disk:3;mem:2;cpus:0.5")
    assert [item["name"] for item in parsed.to_json()] == [
        "cpus",
        "mem",
        "disk",
        "gpus",
        "ports",
        "alpha",
        "zeta",
    ]
    cpus, *_, ports, alpha, _ = parsed.to_json(role="*")
    assert cpus == {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "*"}
    assert ports == {
        "name": "ports",
        "type": "RANGES",
        "ranges": {"range": [{"begin": 2, "end": 3}, {"begin": 5, "end": 5}]},
        "role": "*",
    }
    assert alpha["type"] == "RANGES"
    assert isinstance(parsed.to_json()[1]["scalar"]["value"], float)
    assert parsed.to_json(role="web")[0]["role"] == "web"
    assert Resources().to_json() == []


def test_json_round_trip() -> None:
    original = Resources.parse(AGENT + ";gpus:1;bandwidth:0.125;slots:[1-2,4-8]")
    assert Resources.from_json(original.to_json()) == original
    assert Resources.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_to_flat_is_the_master_state_form() -> None:
    flat = Resources.parse("cpus:2;mem:2048;disk:4096;ports:[31000-31005,32000-32000]").to_flat()
    assert flat == {
        "cpus": 2.0,
        "gpus": 0.0,
        "mem": 2048.0,
        "disk": 4096.0,
        "ports": "[31000-31005, 32000-32000]",
    }
    assert list(flat) == ["cpus", "gpus", "mem", "disk", "ports"]
    assert Resources().to_flat() == {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}
    assert Resources.parse("bandwidth:1.5").to_flat()["bandwidth"] == 1.5


def test_str_is_the_flag_format_and_parses_back() -> None:
    parsed = Resources.parse("ports:[31000-31999,32001-32005];mem:2048;cpus:0.1;cpus:0.2")
    assert str(parsed) == "cpus:0.3;mem:2048;ports:[31000-31999,32001-32005]"
    assert repr(parsed) == str(parsed)
    assert str(Resources.parse("cpus:2.5;mem:0.001;disk:10.12")) == "cpus:2.5;mem:0.001;disk:10.12"
    assert str(Resources()) == ""
    assert Resources.parse(str(parsed)) == parsed


# Fixed point.


def test_scalars_are_fixed_point_to_three_decimals() -> None:
    total = Resources.parse("cpus:0.1") + Resources.parse("cpus:0.2")
    assert total.scalar("cpus") == 0.3
    assert total == Resources.parse("cpus:0.3")
    assert not (total - Resources.parse("cpus:0.1") - Resources.parse("cpus:0.2"))
    assert Resources.parse("cpus:0.001").scalar("cpus") == 0.001
    # Like C's llround: a half thousandth rounds away from zero, extra digits are dropped.
    assert Resources.parse("cpus:0.0005").scalar("cpus") == 0.001
    assert Resources.parse("cpus:1.2344").scalar("cpus") == 1.234
    assert Resources.parse("cpus:1.2346").scalar("cpus") == 1.235
    assert Resources.parse("cpus:0.0005") == Resources.parse("cpus:0.001")


def test_many_small_additions_do_not_drift() -> None:
    total = Resources()
    step = Resources.parse("cpus:0.1")
    for _ in range(1000):
        total = total + step
    assert total.scalar("cpus") == 100.0
    for _ in range(1000):
        total = total - step
    assert not total


# Arithmetic and comparison.


def test_add_and_subtract_mix_scalars_and_ranges() -> None:
    agent = Resources.parse(AGENT)
    task = Resources.parse("cpus:0.5;mem:100;ports:[31005-31006]")
    left = agent - task
    assert left == Resources.parse("cpus:1.5;mem:1948;disk:4096;ports:[31000-31004,31007-31999]")
    assert left + task == agent
    assert agent - agent == Resources()
    assert not (agent - agent)


def test_subtracting_what_is_not_contained_raises() -> None:
    with pytest.raises(ValueError, match=r"cannot subtract 'cpus:3' from 'cpus:2;.*not contained"):
        Resources.parse(AGENT) - Resources.parse("cpus:3")
    with pytest.raises(ValueError, match="not contained"):
        Resources.parse(AGENT) - Resources.parse("ports:[30999-31000]")
    with pytest.raises(ValueError, match="not contained"):
        Resources.parse("cpus:1") - Resources.parse("gpus:1")


def test_contains_with_ranges() -> None:
    agent = Resources.parse("cpus:2;ports:[1-5,7-9]")
    assert agent.contains(Resources.parse("ports:[1-2,4-5,8-9]"))
    assert agent.contains(Resources.parse("cpus:2;ports:[7-7]"))
    assert agent.contains(Resources())
    assert not agent.contains(Resources.parse("ports:[5-7]"))  # 6 is missing
    assert not agent.contains(Resources.parse("ports:[0-1]"))
    assert not agent.contains(Resources.parse("ports:[9-10]"))
    assert not agent.contains(Resources.parse("cpus:2.001"))
    assert not agent.contains(Resources.parse("mem:1"))
    assert not agent.contains(Resources.parse("other:[1-1]"))
    # Adjacent ranges merge, so a range spanning the seam is contained.
    assert (Resources.parse("ports:[1-5]") + Resources.parse("ports:[6-9]")).contains(
        Resources.parse("ports:[5-6]")
    )


def test_equality_hash_and_truth() -> None:
    one = Resources.parse("cpus:1;ports:[1-2]")
    same = Resources.parse("ports:[1-1,2-2];cpus:1.0")
    assert one == same
    assert hash(one) == hash(same)
    assert one != Resources.parse("cpus:1")
    assert one != "cpus:1;ports:[1-2]"
    assert bool(one)
    assert not Resources()
    assert not Resources.parse("ports:[]")


def test_constructor_normalises_and_checks() -> None:
    made = Resources({"cpus": 1.5, "mem": 0}, {"ports": [(5, 6), (1, 4)]})
    assert made == Resources.parse("cpus:1.5;ports:[1-6]")
    with pytest.raises(ValueError, match="'cpus'"):
        Resources({"cpus": -1})
    with pytest.raises(ValueError, match="'cpus'"):
        Resources({"cpus": math.nan})
    with pytest.raises(ValueError, match="bad range 3-1"):
        Resources(ranges={"ports": [(3, 1)]})
    with pytest.raises(ValueError, match="both a scalar and ranges"):
        Resources({"x": 1}, {"x": [(1, 1)]})


def test_operators_do_not_mutate_their_operands() -> None:
    agent = Resources.parse(AGENT)
    task = Resources.parse("cpus:1;ports:[31000-31000]")
    _ = agent + task
    _ = agent - task
    assert agent == Resources.parse(AGENT)
    assert task == Resources.parse("cpus:1;ports:[31000-31000]")


# Range arithmetic against Python sets.

small_sets = st.sets(st.integers(min_value=0, max_value=40), max_size=25)


def as_ports(values: set[int]) -> Resources:
    return Resources(ranges={"ports": [(value, value) for value in values]})


def as_set(resources: Resources) -> set[int]:
    return {port for begin, end in resources.ranges("ports") for port in range(begin, end + 1)}


@given(small_sets, small_sets)
def test_range_operations_match_set_semantics(left: set[int], right: set[int]) -> None:
    a, b = as_ports(left), as_ports(right)
    assert as_set(a) == left
    assert as_set(a + b) == left | right
    assert a.contains(b) == (right <= left)
    if right <= left:
        assert as_set(a - b) == left - right
    pairs = a.ranges("ports")
    # Sorted, merged, never touching.
    assert all(end + 1 < begin for (_, end), (begin, _) in itertools.pairwise(pairs))
