"""The two pinned sets: the attendee's (requirements-workshop.lock, `make setup`) and the
maintainer's (requirements.lock, `make setup-dev`)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from tools import wheelhouse

WORKSHOP = ROOT / "requirements-workshop.lock"
DEV = ROOT / "requirements.lock"
BUILD_TOOLS = {"pip", "setuptools"}
OLDEST_PYTHON = "3.11.0"  # requires-python ">=3.11"; Debian 12's python3 is 3.11.2


def pins(lock):
    return {canonicalize_name(pin.name): pin for pin in wheelhouse.read_lock(lock)[0]}


def test_the_workshop_set_is_the_dev_set_s_versions_with_fewer_packages() -> None:
    workshop, dev = pins(WORKSHOP), pins(DEV)
    here = wheelhouse.Target(None, None)
    for name, pin in workshop.items():
        if name in BUILD_TOOLS or not pin.applies(here):
            continue
        assert name in dev, f"{name} is in the workshop lock but not in requirements.lock"
        assert dev[name].version == pin.version, name
    # The checks' own tools stay out of the attendee's download.
    for tool in ("ruff", "nbval", "cogapp", "check-jsonschema", "hypothesis"):
        assert tool in dev and tool not in workshop


def test_the_workshop_extra_and_the_runtime_are_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    workshop = pins(WORKSHOP)
    for line in project["dependencies"] + project["optional-dependencies"]["workshop"]:
        name = canonicalize_name(Requirement(line).name)
        if name == "http-parser":
            assert "./compat/http-parser" in WORKSHOP.read_text().splitlines()
        else:
            assert name in workshop, f"{name} is not pinned in {WORKSHOP.name}"
    assert set(workshop) >= BUILD_TOOLS


def test_every_pin_installs_on_the_oldest_python_we_support() -> None:
    """A pin whose Requires-Python excludes 3.11.0 breaks `make setup` on Debian 12's Python
    3.11.2 (soupsieve 4.x needs 3.11.5, and was pinned until this test)."""
    too_new = []
    for name in pins(DEV) | pins(WORKSHOP):
        try:
            requires = importlib.metadata.metadata(name).get("Requires-Python")
        except importlib.metadata.PackageNotFoundError:
            continue  # a platform-only pin (appnope on macOS)
        if requires and OLDEST_PYTHON not in SpecifierSet(requires):
            too_new.append(f"{name} (Requires-Python {requires})")
    assert not too_new, f"pinned versions that Python {OLDEST_PYTHON} cannot install: {too_new}"


def test_platform_only_pins_carry_their_marker() -> None:
    for line in WORKSHOP.read_text().splitlines():
        if line.startswith("appnope"):
            assert re.fullmatch(r'appnope==[\d.]+ ; platform_system == "Darwin"', line), line
            break
    else:
        raise AssertionError("ipykernel needs appnope on macOS; the lock does not pin it")


def test_both_locks_respect_the_held_back_versions() -> None:
    """requirements-constraints.txt holds back what lacks a wheel for a platform we serve."""
    constraints = wheelhouse.read_constraints(ROOT / "requirements-constraints.txt")
    assert constraints, "requirements-constraints.txt holds no constraint"
    for lock in (WORKSHOP, DEV):
        pinned = pins(lock)
        for requirement in constraints:
            pin = pinned.get(canonicalize_name(requirement.name))
            if pin is not None:
                assert pin.version in requirement.specifier, f"{lock.name}: {pin} vs {requirement}"
