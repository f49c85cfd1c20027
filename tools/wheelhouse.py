"""`make wheelhouse`: every wheel that the attendee set-up installs, for every platform we support,
in one folder to copy onto a USB stick. `make setup WHEELS=DIR` then installs from it with no
network at all (`pip install --no-index --find-links DIR`).

pip can download wheels for a platform other than its own (`--platform`, `--python-version`),
but it evaluates environment markers for the machine it runs on: a dependency that only macOS
needs (`appnope; platform_system == "Darwin"`) is never fetched on Linux. So the folder is
built in two passes: the pins of requirements-workshop.lock are downloaded, without
resolving, for each target; then the metadata of every wheel is read and each dependency whose
marker holds on a target must be in the folder too. A gap is an error that names the package
and the marker, to be pinned in the lock (`make lock` adds such pins).

pymesos 0.3.15 is published only as an sdist, and our http-parser stand-in is a local path:
both are pure Python, so one wheel built here (`pip wheel`) serves every target.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.metadata
import itertools
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from tools import ROOT

LOCK = ROOT / "requirements-workshop.lock"
# Published as an sdist only; `pip wheel` builds them here, and they must come out pure Python.
SDIST_ONLY = {"pymesos"}
# manylinux_2_28 runs on glibc 2.28 or newer (Debian 10, Ubuntu 20.04, RHEL 8 and later); pip
# also accepts older manylinux tags under it. macOS 12 likewise admits wheels built for older
# releases, and universal2 ones.
PLATFORMS = {
    "linux-x86_64": ("manylinux_2_28_x86_64", "linux", "Linux", "x86_64"),
    "linux-aarch64": ("manylinux_2_28_aarch64", "linux", "Linux", "aarch64"),
    "macos-arm64": ("macosx_12_0_arm64", "darwin", "Darwin", "arm64"),
    "macos-x86_64": ("macosx_12_0_x86_64", "darwin", "Darwin", "x86_64"),
}
PYTHONS = ("3.11", "3.12", "3.13")


class WheelhouseError(Exception):
    """A wheel could not be downloaded or built, or the folder misses a dependency."""


@dataclass(frozen=True)
class Target:
    """One platform and one Python version; None for both means this very interpreter."""

    platform: str | None
    python: str | None

    @property
    def name(self) -> str:
        if self.platform is None:
            return "this machine"
        return f"{self.platform}, Python {self.python}"

    def platform_tags(self) -> list[str]:
        """Every platform tag that pip accepts on this target, newest first. pip's --platform
        takes them literally (manylinux_2_28 does not admit a manylinux_2_17 wheel), so the
        download asks for all of them."""
        tag = PLATFORMS[self.platform][0]
        kind, *numbers, arch = re.fullmatch(r"(\w+?)_(\d+)_(\d+)_(\w+)", tag).groups()
        major, minor = map(int, numbers)
        if kind == "macosx":
            return list(mac_platforms((major, minor), arch))
        platforms = [f"manylinux_2_{glibc}_{arch}" for glibc in range(minor, 4, -1)]
        platforms.append(f"manylinux2014_{arch}")
        if arch in {"x86_64", "i686"}:
            platforms += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        return platforms

    def pip_options(self) -> list[str]:
        if self.platform is None:
            return []
        platforms = [option for tag in self.platform_tags() for option in ("--platform", tag)]
        return [*platforms, "--python-version", self.python, "--implementation", "cp"]

    def environment(self) -> dict[str, str]:
        """The values of PEP 508 markers on this target."""
        if self.platform is None:
            return dict(default_environment())
        _, sys_platform, system, machine = PLATFORMS[self.platform]
        return {
            "sys_platform": sys_platform,
            "platform_system": system,
            "platform_machine": machine,
            "os_name": "posix",
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_version": "",
            "implementation_version": f"{self.python}.0",
        }

    def tags(self) -> frozenset[Tag]:
        """The wheel tags that pip accepts on this target, as pip computes them."""
        if self.platform is None:
            return frozenset(sys_tags())
        version = tuple(map(int, self.python.split(".")))
        interpreter = "cp" + "".join(map(str, version))
        platforms = self.platform_tags()
        return frozenset(
            [
                *cpython_tags(version, platforms=platforms),
                *compatible_tags(version, interpreter, platforms),
            ]
        )


def every_target() -> list[Target]:
    return [Target(p, v) for p, v in itertools.product(PLATFORMS, PYTHONS)]


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None

    def applies(self, target: Target) -> bool:
        return self.marker is None or self.marker.evaluate(target.environment())

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def read_lock(lock: Path = LOCK) -> tuple[list[Pin], list[str]]:
    """The exact pins of a lock file, and its local paths (`./compat/http-parser`)."""
    pins, paths = [], []
    for number, raw in enumerate(lock.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("./", "../", "/")):
            paths.append(line)
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise WheelhouseError(f"{lock.name}:{number}: {line!r} is not an exact pin (name==X)")
        pins.append(Pin(requirement.name, specifiers[0].version, requirement.marker))
    return pins, paths


def read_constraints(path: Path) -> list[Requirement]:
    """The requirements of a pip constraints file (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pip(*args: str | Path, cwd: Path = ROOT) -> None:
    command = [sys.executable, "-m", "pip", *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise WheelhouseError(f"pip {' '.join(map(str, args[:2]))} failed:\n{tail}")


def download(pins: list[Pin], target: Target, dest: Path) -> None:
    binary = [str(pin) for pin in pins if pin.applies(target) and pin.name not in SDIST_ONLY]
    print(f"wheelhouse: {len(binary)} wheels for {target.name}", flush=True)
    pip(
        "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", dest,
        *target.pip_options(), *binary,
    )  # fmt: skip


def build_pure(pins: list[Pin], paths: list[str], dest: Path) -> None:
    """Wheels for what has no wheel on PyPI; each must be pure Python to serve every target."""
    sources = [str(pin) for pin in pins if pin.name in SDIST_ONLY] + paths
    if not sources:
        return
    print(f"wheelhouse: building {', '.join(sources)}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", scratch, *sources)
        for wheel in Path(scratch).glob("*.whl"):
            if not wheel.name.endswith("-none-any.whl"):
                raise WheelhouseError(f"{wheel.name} is not pure Python; it cannot serve every OS")
            shutil.copy(wheel, dest / wheel.name)


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return email.parser.BytesParser().parsebytes(archive.read(name))


def gaps(folder: Path, target: Target) -> list[str]:
    """Dependencies that pip would want on ``target`` and that the folder lacks, each with the
    package that wants it and its marker."""
    accepted = target.tags()
    wheels = {}
    for wheel in sorted(folder.glob("*.whl")):
        if not parse_wheel_filename(wheel.name)[3].isdisjoint(accepted):
            name, version, _, _ = parse_wheel_filename(wheel.name)
            wheels[name] = (version, wheel)
    missing = []
    for name, (_, wheel) in wheels.items():
        for line in metadata(wheel).get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            environment = {**target.environment(), "extra": ""}
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            wanted = canonicalize_name(requirement.name)
            if wanted not in wheels:
                where = f"; {requirement.marker}" if requirement.marker else ""
                missing.append(f"{requirement.name}{requirement.specifier}{where} (for {name})")
            elif wheels[wanted][0] not in requirement.specifier:
                missing.append(
                    f"{requirement.name}{requirement.specifier}: the folder has "
                    f"{wheels[wanted][0]} (for {name})"
                )
    return missing


def drop_stale(dest: Path, pins: list[Pin], paths: list[str]) -> None:
    """Remove wheels of versions the lock no longer pins, left by an earlier build."""
    wanted = {(canonicalize_name(pin.name), pin.version) for pin in pins}
    local = {canonicalize_name(Path(path).name) for path in paths}
    for wheel in dest.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if (name, str(version)) not in wanted and name not in local:
            print(f"wheelhouse: removing {wheel.name}, which the lock no longer pins")
            wheel.unlink()


def build(dest: Path, targets: list[Target], lock: Path = LOCK) -> list[Path]:
    pins, paths = read_lock(lock)
    dest.mkdir(parents=True, exist_ok=True)
    drop_stale(dest, pins, paths)
    build_pure(pins, paths, dest)
    for target in targets:
        download(pins, target, dest)
    problems = {target.name: gaps(dest, target) for target in targets}
    problems = {name: found for name, found in problems.items() if found}
    if problems:
        lines = [f"{name}: {', '.join(found)}" for name, found in problems.items()]
        raise WheelhouseError(
            f"{lock.name} does not pin every dependency; add a pin with its marker for:\n"
            + "\n".join(lines)
        )
    return sorted(dest.glob("*.whl"))


def platform_pins(lock: Path = LOCK) -> list[str]:
    """Pins for what only other platforms need, from the metadata of the pinned packages
    installed here (`make lock` runs this in its venv): each dependency that some target wants
    and the lock lacks, at the newest version pip finds for that target, with its marker."""
    pins, _ = read_lock(lock)
    pinned = {canonicalize_name(pin.name) for pin in pins}
    wanted: dict[str, tuple[Requirement, set[str], Target]] = {}
    for pin in pins:
        try:
            requires = importlib.metadata.requires(pin.name) or []
        except importlib.metadata.PackageNotFoundError:
            raise WheelhouseError(f"{pin} is not installed here; install the lock first") from None
        for line in requires:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name in pinned or requirement.marker is None:
                continue
            for target in every_target():
                environment = {**target.environment(), "extra": ""}
                if requirement.marker.evaluate(environment):
                    _, markers, _ = wanted.setdefault(name, (requirement, set(), target))
                    markers.add(str(requirement.marker))
    lines = []
    for requirement, markers, target in (wanted[name] for name in sorted(wanted)):
        with tempfile.TemporaryDirectory() as scratch:
            pip(
                "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", scratch,
                *target.pip_options(), f"{requirement.name}{requirement.specifier}",
            )  # fmt: skip
            wheel = next(Path(scratch).glob("*.whl"))
        version = parse_wheel_filename(wheel.name)[1]
        marker = " or ".join(f"({m})" if len(markers) > 1 else m for m in sorted(markers))
        lines.append(f"{requirement.name}=={version} ; {marker}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.wheelhouse", description=__doc__)
    parser.add_argument(
        "dest", type=Path, nargs="?", help="the folder to fill (created if missing)"
    )
    parser.add_argument(
        "--platform-pins",
        action="store_true",
        help="print the pins, with markers, that only other platforms need (for `make lock`)",
    )
    parser.add_argument(
        "--this-platform",
        action="store_true",
        help="only this machine's platform and Python, not all of them",
    )
    parser.add_argument("--lock", type=Path, default=LOCK, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.platform_pins:
        try:
            print("\n".join(platform_pins(args.lock)))
        except WheelhouseError as error:
            print(f"wheelhouse: {error}", file=sys.stderr)
            return 1
        return 0
    if args.dest is None:
        parser.error("name the folder to fill (or ask for --platform-pins)")
    targets = [Target(None, None)] if args.this_platform else every_target()
    try:
        wheels = build(args.dest, targets, args.lock)
    except WheelhouseError as error:
        print(f"wheelhouse: {error}", file=sys.stderr)
        return 1
    size = sum(wheel.stat().st_size for wheel in wheels) / 1e6
    print(
        f"wheelhouse: {len(wheels)} wheels, {size:.0f} MB, in {args.dest}; "
        f"install with: make setup WHEELS={args.dest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
