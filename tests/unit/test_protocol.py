"""localmesos.protocol and the master's call checks: JSON to protobuf as stout converts it, the
scheduler::Call validation, and the small formats (task IDs, durations).

What Mesos does, with its sources, is in localmesos/CONFORMANCE.md ("Transport", "ACCEPT
validation").
"""

from __future__ import annotations

import base64
import copy
import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localmesos import protocol
from localmesos.master import (
    BODY_OF,
    protocol_task_id_error,
    validate_framework_info,
    validate_scheduler_call,
)
from localmesos.protocol import (
    ENUMS,
    MESSAGES,
    Invalid,
    convert,
    format_duration,
    parse_duration,
)

INFO = {"user": "alice", "name": "demo"}
# A fixed UUID, not uuid4(): it names a parametrized test, and pytest-xdist's workers must all
# collect the same names.
UUID16 = base64.b64encode(uuid.UUID("3f2c9a7e-5b1d-4e8a-9c6f-0d4b7a2e1f35").bytes).decode()


def subscribe(**info: Any) -> dict:
    return {"type": "SUBSCRIBE", "subscribe": {"framework_info": {**INFO, **info}}}


def launch(*tasks: dict) -> dict:
    return {
        "type": "ACCEPT",
        "framework_id": {"value": "f"},
        "accept": {
            "offer_ids": [{"value": "o"}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
        },
    }


def task(**fields: Any) -> dict:
    return {
        "name": "t",
        "task_id": {"value": "t"},
        "agent_id": {"value": "a"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}],
        "command": {"value": "true"},
        **fields,
    }


def message_of(call: dict) -> str:
    with pytest.raises(Invalid) as caught:
        convert("Call", call)
    return str(caught.value)


# -- convert: the shape of the JSON (stout's protobuf.hpp) ----------------------------------------


@pytest.mark.parametrize("value", [[], [{}], "SUBSCRIBE", 1, 1.5, None, True])
def test_only_objects_convert(value: Any) -> None:
    with pytest.raises(Invalid, match=r"^Expecting a JSON object$"):
        convert("Call", value)


def test_a_good_call_converts_to_an_equal_copy() -> None:
    call = subscribe(failover_timeout=100.0, capabilities=[{"type": "GPU_RESOURCES"}])
    original = copy.deepcopy(call)
    result = convert("Call", call)
    assert result == call
    assert call == original
    result["subscribe"]["framework_info"]["user"] = "mallory"
    assert call["subscribe"]["framework_info"]["user"] == "alice"


def test_unknown_keys_are_dropped_as_stout_drops_them() -> None:
    deep: list = []
    for _ in range(150):
        deep = [deep]
    result = convert("Call", {**subscribe(hobby="chess", nest=deep), "extra": [1, 2]})
    assert result["subscribe"]["framework_info"] == INFO
    assert "extra" not in result


def test_fields_mesos_knows_are_kept_though_not_described() -> None:
    labels = {"labels": [{"key": "k", "value": "v"}]}
    info = convert("Call", subscribe(labels=labels, offer_filters={"*": {}}))
    assert info["subscribe"]["framework_info"]["labels"] == labels
    assert info["subscribe"]["framework_info"]["offer_filters"] == {"*": {}}
    assert message_of(subscribe(labels={"labels": [{"value": "v"}]})) == (
        "Missing required fields: subscribe.framework_info.labels.labels[0].key"
    )
    assert message_of(subscribe(offer_filters=[])) == (
        "Not expecting a JSON array for field 'offer_filters'"
    )


def test_json_nests_at_most_as_deep_as_stout_parses() -> None:
    assert protocol.parse_json(b"[" * 200 + b"]" * 200) is not None
    with pytest.raises(protocol.BadJson) as error:
        protocol.parse_json(b'{"a":\n' + b"[" * 199 + b"[1]" + b"]" * 199 + b"}")
    # picojson's words, and where it stopped: the rest of the line after the 201st level.
    assert str(error.value) == "syntax error at line 2 near: 1]" + "]" * 199 + "}"
    # Brackets inside strings are no nesting.
    assert protocol.parse_json(b'["' + b"[" * 300 + b'\\"' + b"{" * 300 + b'"]')
    # Deeper than Python's json module can go is the same 400, not a RecursionError.
    with pytest.raises(protocol.BadJson, match=r"^syntax error at line 1 near: "):
        protocol.parse_json(b"[" * 100_000)


def test_null_means_unset() -> None:
    assert "role" not in convert("Call", subscribe(role=None))["subscribe"]["framework_info"]
    message = message_of(subscribe(name=None))
    assert message == "Missing required fields: subscribe.framework_info.name"


def test_missing_required_fields_are_listed_by_path() -> None:
    assert message_of({"type": "SUBSCRIBE", "subscribe": {"framework_info": {}}}) == (
        "Missing required fields: subscribe.framework_info.user, subscribe.framework_info.name"
    )
    assert message_of({"type": "SUBSCRIBE", "subscribe": {}}) == (
        "Missing required fields: subscribe.framework_info"
    )


def test_paths_of_repeated_fields_carry_their_index() -> None:
    bad = task(task_id={})
    del bad["agent_id"]
    message = message_of(launch(task(), bad))
    assert message == (
        "Missing required fields: accept.operations[0].launch.task_infos[1].task_id.value, "
        "accept.operations[0].launch.task_infos[1].agent_id"
    )
    untyped = task(resources=[{"name": "mem", "scalar": {"value": 32}}])
    assert message_of(launch(untyped)) == (
        "Missing required fields: accept.operations[0].launch.task_infos[0].resources[0].type"
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"type": "SUBSCRIBE", "subscribe": "yes"}, "subscribe"),
        (subscribe(capabilities={"type": "GPU_RESOURCES"}), "capabilities"),
        ({"type": "DECLINE", "decline": {"offer_ids": {"value": "o"}}}, "offer_ids"),
        ({"type": "DECLINE", "decline": {"offer_ids": ["o"]}}, "offer_ids"),
        (subscribe(user=7), "user"),
        (subscribe(checkpoint="true"), "checkpoint"),
        (subscribe(checkpoint=1), "checkpoint"),
        (subscribe(failover_timeout=True), "failover_timeout"),
        (subscribe(failover_timeout=[1]), "failover_timeout"),
        ({"type": 3}, "type"),
        ({"type": ["SUBSCRIBE"]}, "type"),
    ],
)
def test_values_of_the_wrong_json_kind(call: dict, field: str) -> None:
    assert f"'{field}'" in message_of(call)


# -- convert: enums, numbers, bytes ---------------------------------------------------------------


def test_unknown_optional_enum_names_are_dropped() -> None:
    assert "type" not in convert("Call", {"type": "FOO"})
    info = convert("Call", subscribe(capabilities=[{"type": "NOPE"}, {"type": "MULTI_ROLE"}]))
    assert info["subscribe"]["framework_info"]["capabilities"] == [{}, {"type": "MULTI_ROLE"}]


def test_unknown_required_enum_name_is_an_error() -> None:
    bad = task(resources=[{"name": "cpus", "type": "DECIMAL", "scalar": {"value": 1}}])
    message = message_of(launch(bad))
    assert "accept.operations[0].launch.task_infos[0].resources[0].type" in message


def test_every_call_type_is_known() -> None:
    for kind in ENUMS["Call.Type"]:
        assert convert("Call", {"type": kind})["type"] == kind


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, 100), (1.5, 1.5), ("1.5", 1.5), ("100", 100.0), (0, 0), (1e300, 1e300)],
)
def test_doubles_may_be_numbers_or_numeric_strings(value: Any, expected: float) -> None:
    info = convert("Call", subscribe(failover_timeout=value))["subscribe"]["framework_info"]
    assert info["failover_timeout"] == expected


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        "nan",
        "inf",
        "1e999",
        10**400,
        -(10**400),
        "x",
        "",
    ],
)
def test_doubles_must_be_finite_numbers(value: Any) -> None:
    """10**400 once escaped as an OverflowError (a 500) instead of a 400."""
    assert "'failover_timeout'" in message_of(subscribe(failover_timeout=value))


def kill(nanoseconds: Any) -> dict:
    policy = {"grace_period": {"nanoseconds": nanoseconds}}
    return {"type": "KILL", "kill": {"task_id": {"value": "t"}, "kill_policy": policy}}


@pytest.mark.parametrize(("value", "expected"), [(5, 5), (5.0, 5), ("7", 7), (2**70, 2**70)])
def test_integers(value: Any, expected: int) -> None:
    grace = convert("Call", kill(value))["kill"]["kill_policy"]["grace_period"]["nanoseconds"]
    assert grace == expected
    assert type(grace) is int


@pytest.mark.parametrize("value", [5.5, "5.5", "five", True, None])
def test_integers_must_be_whole(value: Any) -> None:
    if value is None:  # null leaves a required field unset
        assert "nanoseconds" in message_of(kill(value))
    else:
        assert "'nanoseconds'" in message_of(kill(value))


def message_call(data: Any) -> dict:
    body = {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": data}
    return {"type": "MESSAGE", "framework_id": {"value": "f"}, "message": body}


@pytest.mark.parametrize("data", ["", "aGVsbG8=", "aGVs bG8=", "aGVs\nbG8=\n", UUID16])
def test_bytes_are_base64(data: str) -> None:
    assert convert("Call", message_call(data))["message"]["data"] == data


@pytest.mark.parametrize("data", ["no*base64!", "aGVsbG8", "é", "\ud800", "a=b="])
def test_bad_base64_is_an_error(data: str) -> None:
    message = message_of(message_call(data))
    assert message.startswith("Failed to base64 decode bytes field 'data'"), message


def test_bytes_must_be_strings() -> None:
    assert "'data'" in message_of(message_call(123))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.sampled_from(sorted(ENUMS["Call.Type"])),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(sorted({k for m in MESSAGES.values() for k in m})), st.text()
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(value=json_values, message=st.sampled_from(sorted(MESSAGES)))
def test_convert_raises_only_invalid(value: Any, message: str) -> None:
    """Whatever the JSON, convert answers a dict or Invalid: never any other exception."""
    try:
        result = convert(message, value)
    except Invalid as error:
        assert str(error)
    else:
        assert isinstance(result, dict)
        json.dumps(result)


# -- validate_scheduler_call (validation.cpp `scheduler::call::validate`) -------------------------


def valid(call: dict) -> str | None:
    return validate_scheduler_call(convert("Call", call))


def test_type_must_be_present() -> None:
    assert valid({}) == "Expecting 'type' to be present"
    assert valid({"type": "NOT_A_TYPE", "framework_id": {"value": "f"}}) == (
        "Expecting 'type' to be present"
    )


@pytest.mark.parametrize(("kind", "body"), sorted(BODY_OF.items()))
def test_calls_need_their_body(kind: str, body: str) -> None:
    assert valid({"type": kind, "framework_id": {"value": "f"}}) == (
        f"Expecting '{body}' to be present"
    )


@pytest.mark.parametrize(
    "kind",
    ["TEARDOWN", "REVIVE", "SUPPRESS", "UNKNOWN", "UPDATE_FRAMEWORK", "RECONCILE_OPERATIONS"],
)
def test_calls_without_a_body(kind: str) -> None:
    assert valid({"type": kind, "framework_id": {"value": "f"}}) is None


@pytest.mark.parametrize("kind", ["TEARDOWN", "REVIVE", "DECLINE", "RECONCILE"])
def test_non_subscribe_calls_need_a_framework_id(kind: str) -> None:
    call: dict[str, Any] = {"type": kind}
    if kind in BODY_OF:
        call[BODY_OF[kind]] = {}
    assert valid(call) == "Expecting 'framework_id' to be present"


def test_subscribe_framework_id_must_match_the_info() -> None:
    assert valid(subscribe()) is None
    assert valid({**subscribe(id={"value": "f"}), "framework_id": {"value": "f"}}) is None
    differs = "'framework_id' differs from 'subscribe.framework_info.id'"
    assert valid({**subscribe(id={"value": "f"}), "framework_id": {"value": "g"}}) == differs
    assert valid({**subscribe(), "framework_id": {"value": "f"}}) == differs
    # FrameworkIDs compare by value, an unset one as "" (validation.cpp compares
    # `frameworkInfo.id()` with `call.framework_id()` whether they are set or not).
    assert valid(subscribe(id={"value": "f"})) == differs
    assert valid({**subscribe(), "framework_id": {"value": ""}}) is None
    assert valid(subscribe(id={"value": ""})) is None
    assert valid({**subscribe(id={"value": ""}), "framework_id": {"value": ""}}) is None


def ack(value: str) -> dict:
    body = {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": value}
    return {"type": "ACKNOWLEDGE", "framework_id": {"value": "f"}, "acknowledge": body}


def test_acknowledge_needs_a_16_byte_uuid() -> None:
    assert valid(ack(UUID16)) is None
    for bad in ("AAAA", base64.b64encode(b"x" * 17).decode(), ""):
        assert valid(ack(bad)) == "Not a valid UUID", bad
    # validate_scheduler_call must not trust convert to have checked the base64.
    assert validate_scheduler_call(ack("not base64!")) == "Not a valid UUID"


# -- validate_framework_info (validation.cpp `framework::validate`) -------------------------------


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"failover_timeout": 0.0},
        {"failover_timeout": 100},
        {"failover_timeout": 10 * 365 * 86400},
        {"role": "*"},
        {"role": "dev"},
        {"role": "ops-team_1.x"},
        {"roles": ["a", "b"]},
        {"roles": []},
    ],
)
def test_good_framework_infos(info: dict) -> None:
    assert validate_framework_info({**INFO, **info}) is None


@pytest.mark.parametrize("timeout", [-1, -0.001, 10 * 365 * 86400 + 1, 1e300])
def test_bad_failover_timeouts(timeout: float) -> None:
    error = validate_framework_info({**INFO, "failover_timeout": timeout})
    assert error is not None and error.startswith("Invalid failover_timeout"), error


def test_an_empty_framework_id_is_no_id_and_any_other_must_be_a_valid_id() -> None:
    assert validate_framework_info({**INFO, "id": {"value": ""}}) is None
    assert validate_framework_info({**INFO, "id": {"value": "f-0001"}}) is None
    assert validate_framework_info({**INFO, "id": {"value": ".."}}) == "'..' is disallowed"
    assert validate_framework_info({**INFO, "id": {"value": "a/b"}}) == (
        "'a/b' contains invalid characters"
    )
    # Roles are checked first, the failover timeout last (`framework::validate`).
    bad = {**INFO, "id": {"value": "."}, "role": "a b", "failover_timeout": -1}
    assert validate_framework_info(bad) == "Role 'a b' is invalid"
    assert validate_framework_info({**bad, "role": "*"}) == "'.' is disallowed"


@pytest.mark.parametrize("role", ["", ".", "..", "-dev", "a b", "a\tb", "a\nb", "a\\b", "dev/"])
def test_bad_roles(role: str) -> None:
    assert validate_framework_info({**INFO, "role": role}) == f"Role '{role}' is invalid"
    assert validate_framework_info({**INFO, "roles": ["ok", role]}) == f"Role '{role}' is invalid"


# -- task IDs (common/validation.cpp `validateID`) ------------------------------------------------


@pytest.mark.parametrize("task_id", ["t", "task-1", "a.b", "...", "tâche", "x" * 255, "é" * 127])
def test_good_task_ids(task_id: str) -> None:
    assert protocol_task_id_error(task_id) is None


@pytest.mark.parametrize(
    ("task_id", "problem"),
    [
        ("", "ID must not be empty"),
        ("x" * 256, "ID must not be greater than 255 characters"),
        ("é" * 128, "ID must not be greater than 255 characters"),  # 256 bytes, as C++ counts
        (".", "'.' is disallowed"),
        ("..", "'..' is disallowed"),
        ("a/b", "'a/b' contains invalid characters"),
        ("a\\b", "'a\\b' contains invalid characters"),
        ("a\x00b", "'a\x00b' contains invalid characters"),
        ("tab\there", "'tab\there' contains invalid characters"),
        ("del\x7f", "'del\x7f' contains invalid characters"),
    ],
)
def test_bad_task_ids(task_id: str, problem: str) -> None:
    assert protocol_task_id_error(task_id) == f"Task ID is invalid: {problem}"


# -- durations (stout/duration.hpp) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5secs", 5.0),
        ("0secs", 0.0),
        ("100ms", 0.1),
        ("1.5mins", 90.0),
        ("2hrs", 7200.0),
        ("1days", 86400.0),
        ("1weeks", 604800.0),
        ("250us", 250e-6),
        ("10ns", 10e-9),
        (".5secs", 0.5),
        ("5.secs", 5.0),
        ("007secs", 7.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "secs",
        "5s",
        "5sec",
        "5 secs",
        " 5secs",
        "5secs ",
        "-1secs",
        "+1secs",
        "1e3ms",
        "1_000secs",
        "1.2.3secs",
        ".secs",
        "nansecs",
        "infdays",
        "5SECS",
        "1" * 400 + "secs",
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5secs"),
        (1, "1secs"),
        (0.4, "400ms"),
        (0.1, "100ms"),
        (0.5, "500ms"),
        (1.5, "1500ms"),  # stout prefers a whole number of a smaller unit
        (0, "0ns"),
        (1e-9, "1ns"),
        (2.5e-6, "2500ns"),
        (0.0025, "2500us"),
        (90, "90secs"),
        (120, "2mins"),
        (900, "15mins"),
        (3600, "1hrs"),
        (5400, "90mins"),
        (86400, "1days"),
        (604800, "1weeks"),
        (1209600, "2weeks"),
        (864000, "10days"),
        (0.57, "570ms"),
        (-5, "-5secs"),
    ],
)
def test_format_duration_as_stout_prints_it(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 10**15).map(lambda ns: ns / 1e9))
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert math.isclose(parse_duration(format_duration(seconds)), seconds, abs_tol=1e-9)
