"""Mesos resources as an immutable value: scalars in fixed point, ranges as merged intervals.

Only unreserved, non-revocable resources exist here: the local cluster has no reservations,
persistent volumes or SET resources, so anything needing them is rejected rather than
silently mis-modelled.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Resources"]

# Mesos keeps three decimal digits of scalar values (values.cpp `convertToFixed`), so
# 0.1 + 0.2 cpus is exactly 0.3 and comparisons never drift.
SCALE = 1000
MAX_UINT64 = 2**64 - 1

# The order Mesos users expect to read; any other name follows, alphabetically.
_FIRST = ("cpus", "mem", "disk", "gpus", "ports")
_RANK = {name: index for index, name in enumerate(_FIRST)}
# /master/state always shows these four, even at zero (common/http.cpp `model(Resources)`).
_FLAT_ALWAYS = ("cpus", "gpus", "mem", "disk")

# A plain decimal number; float() alone would also take "nan", "inf" and "1_000".
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"\d+")

Ranges = tuple[tuple[int, int], ...]


def _order(name: str) -> tuple[int, str]:
    return (_RANK.get(name, len(_FIRST)), name)


def _to_fixed(value: float) -> int:
    """C's llround(value * 1000): halves go away from zero, unlike Python's round()."""
    product = abs(value) * SCALE
    whole = math.floor(product)
    fixed = whole + 1 if product - whole >= 0.5 else whole
    return -fixed if value < 0 else fixed


def _format_fixed(fixed: int) -> str:
    # Exact decimal text, so str() output parses back to the same value.
    whole, part = divmod(fixed, SCALE)
    return str(whole) if part == 0 else f"{whole}.{part:03d}".rstrip("0")


def _coalesce(pairs: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, merged ranges; adjacent ones join too ([1-2] + [3-4] is [1-4]), as in Mesos."""
    merged: list[list[int]] = []
    for begin, end in sorted(pairs):
        if merged and begin <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([begin, end])
    return tuple((begin, end) for begin, end in merged)


def _ranges_contain(outer: Ranges, inner: Ranges) -> bool:
    # Both sides are coalesced, so each inner range must sit inside a single outer one.
    i = 0
    for begin, end in inner:
        while i < len(outer) and outer[i][1] < begin:
            i += 1
        if i == len(outer) or outer[i][0] > begin or outer[i][1] < end:
            return False
    return True


def _ranges_minus(left: Ranges, right: Ranges) -> Ranges:
    result: list[tuple[int, int]] = []
    j = 0
    for begin, end in left:
        while j < len(right) and right[j][1] < begin:
            j += 1
        k = j
        while k < len(right) and right[k][0] <= end:
            if right[k][0] > begin:
                result.append((begin, right[k][0] - 1))
            begin = max(begin, right[k][1] + 1)
            k += 1
        if begin <= end:
            result.append((begin, end))
    return tuple(result)


def _format_ranges(ranges: Ranges, separator: str) -> str:
    return "[" + separator.join(f"{begin}-{end}" for begin, end in ranges) + "]"


class Resources:
    """An immutable bag of resources: operators return new objects and never mutate.

    Scalars live as integer thousandths (only positive ones are kept); ranges as sorted,
    merged, inclusive (begin, end) pairs (only non-empty ones are kept). Both invariants
    make equality a plain dict comparison.
    """

    __slots__ = ("_ranges", "_scalars")

    _scalars: dict[str, int]
    _ranges: dict[str, Ranges]

    def __init__(
        self,
        scalars: Mapping[str, float] | None = None,
        ranges: Mapping[str, Iterable[tuple[int, int]]] | None = None,
    ) -> None:
        fixed: dict[str, int] = {}
        for name, value in (scalars or {}).items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"bad resource '{name}': {value!r} is not a finite value >= 0")
            if _to_fixed(value):
                fixed[name] = _to_fixed(value)
        merged: dict[str, Ranges] = {}
        for name, pairs in (ranges or {}).items():
            if name in fixed:
                raise ValueError(f"bad resource '{name}': both a scalar and ranges")
            listed = list(pairs)
            for begin, end in listed:
                if not 0 <= begin <= end <= MAX_UINT64:
                    raise ValueError(f"bad resource '{name}': bad range {begin}-{end}")
            if listed:
                merged[name] = _coalesce(listed)
        self._scalars = fixed
        self._ranges = merged

    @classmethod
    def _new(cls, scalars: dict[str, int], ranges: dict[str, Ranges]) -> Resources:
        """Wrap already-normalised data without copying or checking (the hot path)."""
        made = object.__new__(cls)
        made._scalars = scalars
        made._ranges = ranges
        return made

    # Parsing.

    @classmethod
    def parse(cls, text: str) -> Resources:
        """The agent's --resources flag: ``cpus:2;mem:2048;ports:[31000-31999]``.

        Like Mesos, a JSON array is accepted too, and a name may carry the role ``(*)``.
        """
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"bad resources JSON: {error}") from None
            return cls.from_json(items)
        builder = _Builder()
        # Empty tokens are skipped, as strings::tokenize does in `Resources::fromSimpleString`.
        for token in filter(None, (part.strip() for part in text.split(";"))):
            name, value = _split_token(token)
            builder.add_text(name, value, token)
        return builder.build()

    @classmethod
    def from_json(cls, items: Any) -> Resources:
        """A v1 ``Resource`` JSON list, checked the way `Resources::validate` checks it."""
        if not isinstance(items, list):
            raise ValueError(f"resources must be a JSON array, not {type(items).__name__}")
        builder = _Builder()
        for index, item in enumerate(items):
            builder.add_json(index, item)
        return builder.build()

    # Output.

    def _names(self) -> list[str]:
        return sorted([*self._scalars, *self._ranges], key=_order)

    def to_json(self, role: str = "*") -> list[dict[str, Any]]:
        """v1 JSON, one entry per name, in the order cpus, mem, disk, gpus, ports, others."""
        result: list[dict[str, Any]] = []
        for name in self._names():
            if name in self._scalars:
                value = self._scalars[name] / SCALE
                result.append(
                    {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": role}
                )
            else:
                pairs = [{"begin": begin, "end": end} for begin, end in self._ranges[name]]
                result.append(
                    {"name": name, "type": "RANGES", "ranges": {"range": pairs}, "role": role}
                )
        return result

    def to_flat(self) -> dict[str, float | str]:
        """The /master/state form: ``{"cpus": 2.0, ..., "ports": "[31000-31999]"}``."""
        flat: dict[str, float | str] = {name: 0.0 for name in _FLAT_ALWAYS}
        for name in self._names():
            if name in self._scalars:
                flat[name] = self._scalars[name] / SCALE
            else:
                # values.cpp `operator<<(ostream&, const Value::Ranges&)` joins with ", ".
                flat[name] = _format_ranges(self._ranges[name], ", ")
        return flat

    def __str__(self) -> str:
        parts = []
        for name in self._names():
            if name in self._scalars:
                parts.append(f"{name}:{_format_fixed(self._scalars[name])}")
            else:
                parts.append(f"{name}:{_format_ranges(self._ranges[name], ',')}")
        return ";".join(parts)

    __repr__ = __str__

    # Queries.

    def scalar(self, name: str) -> float:
        return self._scalars.get(name, 0) / SCALE

    def scalars(self) -> dict[str, float]:
        return {name: fixed / SCALE for name, fixed in self._scalars.items()}

    def ranges(self, name: str) -> Ranges:
        return self._ranges.get(name, ())

    def __bool__(self) -> bool:
        return bool(self._scalars) or bool(self._ranges)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self._scalars == other._scalars and self._ranges == other._ranges

    def __hash__(self) -> int:
        return hash((frozenset(self._scalars.items()), frozenset(self._ranges.items())))

    def contains(self, other: Resources) -> bool:
        """self ⊇ other: every scalar at least as large, every range inside ours."""
        if other is self:
            return True  # the allocator's common case: an agent offers what was refused
        mine = self._scalars
        for name, fixed in other._scalars.items():
            if mine.get(name, 0) < fixed:
                return False
        for name, ranges in other._ranges.items():
            if not _ranges_contain(self._ranges.get(name, ()), ranges):
                return False
        return True

    # Arithmetic.

    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        if not other:
            return self
        if not self:
            return other
        scalars = self._scalars.copy()
        for name, fixed in other._scalars.items():
            scalars[name] = scalars.get(name, 0) + fixed
        ranges = self._ranges
        if other._ranges:
            ranges = ranges.copy()
            for name, pairs in other._ranges.items():
                ranges[name] = _coalesce((*ranges.get(name, ()), *pairs))
        return Resources._new(scalars, ranges)

    def __sub__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        if not other:
            return self
        if not self.contains(other):
            raise ValueError(f"cannot subtract '{other}' from '{self}': not contained")
        scalars = self._scalars.copy()
        for name, fixed in other._scalars.items():
            left = scalars[name] - fixed
            if left:
                scalars[name] = left
            else:
                del scalars[name]
        ranges = self._ranges
        if other._ranges:
            ranges = ranges.copy()
            for name, pairs in other._ranges.items():
                left_ranges = _ranges_minus(ranges[name], pairs)
                if left_ranges:
                    ranges[name] = left_ranges
                else:
                    del ranges[name]
        return Resources._new(scalars, ranges)


EMPTY = Resources()


def _split_token(token: str) -> tuple[str, str]:
    """``name(role):value`` into name and value; only the unreserved role ``*`` exists here."""
    pieces = token.split(":")
    if len(pieces) != 2:
        raise ValueError(f"bad resource '{token}': expected name:value")
    name, value = pieces[0].strip(), pieces[1]
    if "(" in name or ")" in name:
        opened, closed = name.find("("), name.find(")")
        if opened < 0 or closed < opened or name[closed + 1 :].strip():
            raise ValueError(f"bad resource '{token}': mismatched parentheses")
        role = name[opened + 1 : closed].strip()
        name = name[:opened].strip()
        if role != "*":
            raise ValueError(
                f"bad resource '{token}': reservations (role '{role}') are unsupported"
            )
    return name, value


class _Builder:
    """Collects validated resources by name, summing repeats as `Resources::add` does."""

    def __init__(self) -> None:
        self.scalars: dict[str, int] = {}
        self.ranges: dict[str, list[tuple[int, int]]] = {}

    def build(self) -> Resources:
        ranges = {name: _coalesce(pairs) for name, pairs in self.ranges.items() if pairs}
        return Resources._new({n: v for n, v in self.scalars.items() if v}, ranges)

    def _add_scalar(self, name: str, fixed: int, where: str) -> None:
        if name in self.ranges:
            raise ValueError(f"bad resource {where}: '{name}' appears as both scalar and ranges")
        self.scalars[name] = self.scalars.get(name, 0) + fixed

    def _add_ranges(self, name: str, pairs: list[tuple[int, int]], where: str) -> None:
        if name in self.scalars:
            raise ValueError(f"bad resource {where}: '{name}' appears as both scalar and ranges")
        self.ranges.setdefault(name, []).extend(pairs)

    def add_text(self, name: str, value: str, token: str) -> None:
        where = f"'{token}'"
        if not name:
            raise ValueError(f"bad resource {where}: empty name")
        # Mesos drops every space from the value before parsing it (values.cpp `parse`).
        value = value.replace(" ", "")
        if not value:
            raise ValueError(f"bad resource {where}: empty value")
        if value.startswith("{"):
            raise ValueError(f"bad resource {where}: SET resources are unsupported")
        if value.startswith("["):
            if not value.endswith("]") or value.count("[") != 1 or value.count("]") != 1:
                raise ValueError(f"bad resource {where}: mismatched brackets")
            pairs = []
            for piece in filter(None, value[1:-1].split(",")):
                bounds = piece.split("-")
                if len(bounds) != 2 or not all(_INTEGER.fullmatch(b) for b in bounds):
                    raise ValueError(f"bad resource {where}: bad range '{piece}'")
                begin, end = int(bounds[0]), int(bounds[1])
                _check_range(begin, end, where)
                pairs.append((begin, end))
            # Overlaps are fine in the flag: Mesos coalesces them before validating.
            self._add_ranges(name, pairs, where)
            return
        if not _NUMBER.fullmatch(value):
            raise ValueError(f"bad resource {where}: value is not a number")
        self._add_scalar(name, _check_scalar(float(value), where), where)

    def add_json(self, index: int, item: Any) -> None:
        if not isinstance(item, dict):
            raise ValueError(f"bad resource #{index}: not a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad resource #{index}: missing or empty 'name'")
        where = f"#{index} '{name}'"
        kind = item.get("type")
        if kind is None:
            raise ValueError(f"bad resource {where}: missing 'type'")
        _check_unreserved(item, where)
        present = {key for key in ("scalar", "ranges", "set") if key in item}
        if kind == "SCALAR":
            if present != {"scalar"}:
                raise ValueError(f"bad resource {where}: a SCALAR needs 'scalar' and nothing else")
            scalar = item["scalar"]
            if not isinstance(scalar, dict) or "value" not in scalar:
                raise ValueError(f"bad resource {where}: missing 'scalar.value'")
            value = _json_number(scalar["value"], where)
            self._add_scalar(name, _check_scalar(value, where), where)
        elif kind == "RANGES":
            if present != {"ranges"}:
                raise ValueError(f"bad resource {where}: a RANGES needs 'ranges' and nothing else")
            self._add_ranges(name, _json_ranges(item["ranges"], where), where)
        elif kind in ("SET", "TEXT"):
            raise ValueError(f"bad resource {where}: {kind} resources are unsupported")
        else:
            raise ValueError(f"bad resource {where}: invalid type {kind!r}")


def _check_scalar(value: float, where: str) -> int:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"bad resource {where}: value is not a finite number")
    if value < 0:
        raise ValueError(f"bad resource {where}: value is negative")
    fixed = _to_fixed(value)
    # `Resources::validate` rejects a non-zero value that would be stored as zero.
    if value != 0 and fixed == 0:
        raise ValueError(f"bad resource {where}: value {value!r} is below the 0.001 granularity")
    return fixed


def _check_range(begin: int, end: int, where: str) -> None:
    if begin < 0 or end < 0 or end > MAX_UINT64 or begin > MAX_UINT64:
        raise ValueError(f"bad resource {where}: range bounds must be in 0..2^64-1")
    if begin > end:
        raise ValueError(f"bad resource {where}: range begin {begin} > end {end}")


def _check_unreserved(item: dict[str, Any], where: str) -> None:
    role = item.get("role", "*")
    if role != "*":
        raise ValueError(f"bad resource {where}: reservations (role {role!r}) are unsupported")
    if item.get("reservations") or item.get("reservation"):
        raise ValueError(f"bad resource {where}: reservations are unsupported")


def _json_number(raw: Any, where: str) -> float:
    # stout's JSON-to-protobuf conversion also takes numbers written as strings.
    if isinstance(raw, bool):
        raise ValueError(f"bad resource {where}: value is not a number")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        return float(raw)
    raise ValueError(f"bad resource {where}: value is not a number")


def _json_integer(raw: Any, where: str) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"bad resource {where}: range bound {raw!r} is not an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
        return int(raw)
    raise ValueError(f"bad resource {where}: range bound {raw!r} is not an integer")


def _json_ranges(raw: Any, where: str) -> list[tuple[int, int]]:
    if not isinstance(raw, dict):
        raise ValueError(f"bad resource {where}: 'ranges' must be an object")
    items = raw.get("range", [])
    if not isinstance(items, list):
        raise ValueError(f"bad resource {where}: 'ranges.range' must be a list")
    pairs = []
    for entry in items:
        if not isinstance(entry, dict) or "begin" not in entry or "end" not in entry:
            raise ValueError(f"bad resource {where}: each range needs 'begin' and 'end'")
        begin, end = _json_integer(entry["begin"], where), _json_integer(entry["end"], where)
        _check_range(begin, end, where)
        pairs.append((begin, end))
    # Mesos only compares each range with the later ones, so it misses an overlap when the
    # later range starts first; checking neighbours after sorting catches every overlap.
    ordered = sorted(pairs)
    for (_, end), (begin, _) in itertools.pairwise(ordered):
        if begin <= end:
            raise ValueError(f"bad resource {where}: overlapping ranges")
    return pairs
