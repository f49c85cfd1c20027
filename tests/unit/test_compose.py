"""Static checks of the real cluster: docker-compose.yml and the Dockerfiles under docker/.

No Docker engine is needed (CI and the development machines have none). Each rule is a small
function that returns a list of problems, each naming the service or file and what is wrong;
the tests run every rule on the real files, expecting no problems, and on broken copies,
expecting the rule to notice.
"""

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tools import locked_versions

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKER_DIR = ROOT / "docker"
AGENT_DOCKERFILE = "docker/agent/Dockerfile"
SCHEDULER_DOCKERFILE = "docker/scheduler/Dockerfile"
README_FILE = ROOT / "README.md"

# The last three are the `ha` profile's: standby masters and a step 3 scheduler in the network.
SERVICES = ("zookeeper", "master", "agent-1", "agent-2", "master-2", "master-3", "scheduler")
AGENTS = ("agent-1", "agent-2")
MASTERS = ("master", "master-2", "master-3")
JOBS = ("scheduler",)  # run to the end with `compose run`: no healthcheck to wait for
IN_THE_REPOSITORY = (*AGENTS, *JOBS)  # the services that run the step code from /taller
MESOS_PORTS = {"master": 5050, "agent-1": 5051, "agent-2": 5052, "master-2": 5053, "master-3": 5054}
REPO_MOUNT = "/taller"
PYMESOS_PIN = "pymesos==0.3.15"
# Packages whose pin in the agent image must equal the one in requirements.lock; the scheduler
# image also draws the chart and shows the progress bar.
LOCKED_IN_IMAGE = ("pymesos", "six", "addict", "kazoo", "h11")
LOCKED_IN_SCHEDULER_IMAGE = (*LOCKED_IN_IMAGE, "tqdm", "matplotlib", "numpy")

Compose = dict[str, Any]

# --------------------------------------------------------------------------------------------
# Loading


def load_compose() -> Compose:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def dockerfiles() -> list[Path]:
    return sorted(
        p for p in DOCKER_DIR.rglob("*Dockerfile*") if not p.name.endswith(".dockerignore")
    )


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --------------------------------------------------------------------------------------------
# (1) Every image pinned: compose `image:`, Dockerfile `FROM`, `COPY --from=`, `# syntax=`

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}")


def image_ref_problem(ref: str) -> str | None:
    """Why an image reference is not pinned, or None if it has a real tag or a digest."""
    if not ref.strip():
        return "an empty image reference"
    if "$" in ref:
        return f"{ref!r} takes its name or tag from a variable; write the pinned tag literally"
    if "@" in ref:
        return None if DIGEST.search(ref) else f"{ref!r} has a malformed digest"
    last = ref.rsplit("/", 1)[-1]  # a registry's ":port" comes before the last "/"
    if ":" not in last:
        return f"{ref!r} has no tag, which means the moving tag 'latest'"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return f"{ref!r} uses the moving tag 'latest'"
    if not TAG.fullmatch(tag):
        return f"{ref!r} has an invalid tag {tag!r}"
    return None


def compose_image_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in (compose.get("services") or {}).items():
        if "image" in service:
            if problem := image_ref_problem(str(service["image"] or "")):
                problems.append(f"docker-compose.yml: service {name}: image {problem}")
        elif "build" not in service:
            problems.append(f"docker-compose.yml: service {name} has neither image nor build")
    return problems


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[int, str, str]] = []
    parts: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#") or not line.strip():
            continue  # as Docker does, also inside a continuation
        if not parts:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        keyword, _, arguments = " ".join(parts).strip().partition(" ")
        instructions.append((start, keyword.upper(), " ".join(arguments.split())))
        parts = []
    if parts:
        keyword, _, arguments = " ".join(parts).strip().partition(" ")
        instructions.append((start, keyword.upper(), " ".join(arguments.split())))
    return instructions


def syntax_directive(text: str) -> str | None:
    """The `# syntax=` parser directive, which names the image of the Dockerfile frontend."""
    for line in text.splitlines():
        match = re.fullmatch(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*", line.strip())
        if not match:
            return None  # directives only come first
        if match[1].lower() == "syntax":
            return match[2]
    return None


def dockerfile_pin_problems(text: str, where: str) -> list[str]:
    problems = []
    if (frontend := syntax_directive(text)) and (problem := image_ref_problem(frontend)):
        problems.append(f"{where}: '# syntax=' {problem}")
    stages: set[str] = set()

    def check_source(source: str, number: int, what: str) -> None:
        if source.isdigit() or source.lower() in stages:
            return  # an earlier build stage, not an image
        if problem := image_ref_problem(source):
            problems.append(f"{where}:{number}: {what} {problem}")

    for number, keyword, arguments in dockerfile_instructions(text):
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            if not words:
                problems.append(f"{where}:{number}: FROM without an image")
                continue
            if words[0].lower() != "scratch":
                check_source(words[0], number, "FROM")
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif keyword in ("COPY", "ADD"):
            for source in re.findall(r"--from=(\S+)", arguments):
                check_source(source, number, f"{keyword} --from")
        elif keyword == "RUN":
            for mount in re.findall(r"--mount=(\S+)", arguments):
                for source in re.findall(r"(?:^|,)from=([^,]+)", mount):
                    check_source(source, number, "RUN --mount from")
    return problems


# --------------------------------------------------------------------------------------------
# (2) The agents are built from docker/agent/Dockerfile, which provides python3 and pymesos


def agent_build_problems(compose: Compose) -> list[str]:
    return build_problems(compose, AGENTS, AGENT_DOCKERFILE) + build_problems(
        compose, JOBS, SCHEDULER_DOCKERFILE
    )


def build_problems(compose: Compose, names: tuple[str, ...], wanted: str) -> list[str]:
    problems = []
    services = compose.get("services") or {}
    for name in names:
        build = (services.get(name) or {}).get("build")
        if not isinstance(build, dict):
            problems.append(
                f"docker-compose.yml: service {name} must have `build:` with context and "
                f"dockerfile: {wanted}, found {build!r}"
            )
            continue
        context = ROOT / str(build.get("context", "."))
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if context.resolve() != ROOT:
            problems.append(
                f"docker-compose.yml: service {name}: build context must be the repository root "
                f"(compat/http-parser is copied from it), found {build.get('context')!r}"
            )
        if dockerfile.resolve() != (ROOT / wanted).resolve():
            problems.append(
                f"docker-compose.yml: service {name} is built from {build.get('dockerfile')!r}, "
                f"not {wanted}"
            )
    return problems


def shell_commands(runs: list[str]) -> list[str]:
    """The single commands in RUN instructions, split at &&, || and ;."""
    return [command.strip() for run in runs for command in re.split(r"&&|\|\||;", run)]


def agent_dockerfile_problems(
    text: str,
    pins: dict[str, str],
    where: str = AGENT_DOCKERFILE,
    locked: tuple[str, ...] = LOCKED_IN_IMAGE,
) -> list[str]:
    """What docker/agent/Dockerfile (or, with its own `where` and `locked`, the scheduler's)
    lacks: Python >= 3.11 as python3, and pymesos with the stand-in at the locked versions."""
    problems = []
    instructions = dockerfile_instructions(text)
    runs = [arguments for _, keyword, arguments in instructions if keyword == "RUN"]
    copies = [arguments.split() for _, keyword, arguments in instructions if keyword == "COPY"]
    commands = shell_commands(runs)

    # Python >= 3.11, pinned to a patch release, reachable as python3 on the default PATH.
    new_python = r"\s3\.(1[1-9]|[2-9]\d)"
    installs = [
        command
        for command in commands
        if re.match(rf"uv python install\b.*{new_python}\.\d+\b", command)
        or re.match(rf"apt-get install\b.*{new_python}\b", command.replace("python", " "))
    ]
    exposes = [
        command
        for command in commands
        if (command.startswith("uv python install") and "--default" in command.split())
        or re.match(
            r"(ln -s\S*|update-alternatives --install)\s.*\s/usr/(local/)?bin/python3\b", command
        )
    ]
    if not installs:
        problems.append(
            f"{where}: no RUN installs Python >= 3.11 at an exact version (expected "
            "`uv python install 3.11.<patch>` or an apt python3.1x package)"
        )
    if not exposes:
        problems.append(
            f"{where}: nothing makes the new Python the python3 on PATH (expected "
            "`ln -s ... /usr/local/bin/python3` or `uv python install --default`)"
        )

    # pymesos==0.3.15 installed by the same command as the compat/http-parser stand-in.
    pip_commands = [c for c in commands if re.search(r"\bpip install\b", c)]
    pymesos_commands = [c for c in pip_commands if PYMESOS_PIN in c.split()]
    if not pymesos_commands:
        problems.append(f"{where}: no RUN pip-installs {PYMESOS_PIN}")
    compat_copies = [words for words in copies if words[:1] == ["compat/http-parser"]]
    if not compat_copies:
        problems.append(f"{where}: compat/http-parser (the http-parser stand-in) is never copied")
    elif pymesos_commands and not any(
        words[-1].rstrip("/") in command.split()
        for words in compat_copies
        for command in pymesos_commands
    ):
        problems.append(
            f"{where}: the command that installs {PYMESOS_PIN} does not install the copied "
            "compat/http-parser with it, so pip would fetch the upstream http-parser"
        )

    # The same versions as requirements.lock.
    installed = " ".join(pymesos_commands).split()
    for package in locked:
        expected = f"{package}=={pins.get(package)}"
        found = [word for word in installed if word.lower().startswith(f"{package}==")]
        if package not in pins:
            problems.append(f"requirements.lock: no pin for {package}")
        elif found != [expected]:
            problems.append(
                f"{where}: expected {expected} (as in requirements.lock) in the pymesos install, "
                f"found {found or 'nothing'}"
            )
    return problems


# --------------------------------------------------------------------------------------------
# (3) Published ports: exactly 5050, 5051, 5052, on 127.0.0.1 only


def parse_port(entry: Any) -> tuple[str | None, str | None, str]:
    """(host_ip, published, target) of a short ("ip:host:container") or long port entry."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return (
            entry.get("host_ip"),
            None if published is None else str(published),
            str(entry.get("target")),
        )
    spec = str(entry).split("/", 1)[0]
    rest, _, target = spec.rpartition(":")
    if not rest:
        return None, None, target
    host_ip, _, published = rest.rpartition(":")
    return host_ip.strip("[]") or None, published, target


def published_port_problems(compose: Compose) -> list[str]:
    problems = []
    services = compose.get("services") or {}
    for name, service in services.items():
        expected = MESOS_PORTS.get(name)
        published = []
        for entry in service.get("ports") or []:
            host_ip, host_port, target = parse_port(entry)
            published.append(host_port)
            if host_ip != "127.0.0.1":
                problems.append(
                    f"docker-compose.yml: service {name} publishes {entry!r} on "
                    f"{host_ip or 'every interface'}; bind it to 127.0.0.1"
                )
            if host_port != target:
                problems.append(
                    f"docker-compose.yml: service {name} maps host port {host_port} to {target}; "
                    "Mesos puts its own port in UI links and offers, so they must be equal"
                )
        want = [] if expected is None else [str(expected)]
        if published != want:
            problems.append(
                f"docker-compose.yml: service {name} publishes {published or 'nothing'}, "
                f"expected {want or 'nothing'}"
            )
        if expected is not None and environment(service).get("MESOS_PORT") != str(expected):
            problems.append(
                f"docker-compose.yml: service {name} must listen on {expected} inside too "
                f"(MESOS_PORT={expected}), found {environment(service).get('MESOS_PORT')!r}"
            )
    for name in MESOS_PORTS.keys() - services.keys():
        problems.append(f"docker-compose.yml: service {name} is missing")
    return problems


# --------------------------------------------------------------------------------------------
# (4) The README lists the same ports

PORTS_MARKER = re.compile(r"<!--\s*compose-ports:([^>]*?)-->")


def readme_port_problems(readme: str, ports: set[int]) -> list[str]:
    markers = PORTS_MARKER.findall(readme)
    if not markers:
        return [
            "README.md: no `<!-- compose-ports: "
            + " ".join(map(str, sorted(ports)))
            + " -->` line naming the cluster's published ports"
        ]
    problems = []
    listed = {int(word) for marker in markers for word in marker.split() if word.isdigit()}
    if listed != ports:
        problems.append(
            f"README.md: the compose-ports marker lists {sorted(listed)}, but "
            f"docker-compose.yml publishes {sorted(ports)}"
        )
    body = PORTS_MARKER.sub("", readme)
    for port in sorted(listed):
        if not re.search(rf"(?<![\d.]){port}(?!\d)", body):
            problems.append(
                f"README.md: port {port} is in the compose-ports marker but nowhere in the text"
            )
    return problems


def compose_published_ports(compose: Compose) -> set[int]:
    ports = set()
    for service in (compose.get("services") or {}).values():
        for entry in service.get("ports") or []:
            _, published, _ = parse_port(entry)
            if published and published.isdigit():
                ports.add(int(published))
    return ports


# --------------------------------------------------------------------------------------------
# (5) Agent and master settings; services, healthchecks and start order

AGENT_SETTINGS = {
    "MESOS_LAUNCHER": {"posix"},
    "MESOS_CONTAINERIZERS": {"mesos"},
    "MESOS_SWITCH_USER": {"false", "0"},
    "MESOS_HOSTNAME": {"localhost"},
    "MESOS_ISOLATION": {"posix/cpu,posix/mem"},
    "MESOS_SYSTEMD_ENABLE_SUPPORT": {"false", "0"},
    "MESOS_MASTER": {"zk://zookeeper:2181/mesos"},
}
MASTER_SETTINGS = {
    "MESOS_ZK": {"zk://zookeeper:2181/mesos"},
    "MESOS_QUORUM": {"1"},
    "MESOS_REGISTRY": {"in_memory"},
    "MESOS_HOSTNAME": {"localhost"},
}


def settings_problems(name: str, env: dict[str, str], wanted: dict[str, set[str]]) -> list[str]:
    problems = []
    for key, allowed in wanted.items():
        value = env.get(key)
        if value is None or value.strip().lower() not in allowed:
            problems.append(
                f"docker-compose.yml: service {name}: {key} must be "
                f"{' or '.join(sorted(allowed))}, found {value!r}"
            )
    return problems


def mesos_settings_problems(compose: Compose) -> list[str]:
    services = compose.get("services") or {}
    problems = [
        problem
        for name in MASTERS
        for problem in settings_problems(
            name, environment(services.get(name) or {}), MASTER_SETTINGS
        )
    ]
    work_dirs: dict[str, str] = {}
    for name in AGENTS:
        env = environment(services.get(name) or {})
        problems += settings_problems(name, env, AGENT_SETTINGS)
        resources = env.get("MESOS_RESOURCES", "")
        for resource in ("cpus", "mem", "disk", "ports"):
            if not re.search(rf"(^|;){resource}:", resources):
                problems.append(
                    f"docker-compose.yml: service {name}: MESOS_RESOURCES must fix {resource} "
                    f"so offers are the same on every laptop, found {resources!r}"
                )
        work_dir = env.get("MESOS_WORK_DIR")
        if not work_dir:
            problems.append(f"docker-compose.yml: service {name} has no MESOS_WORK_DIR")
        elif work_dir in work_dirs:
            problems.append(
                f"docker-compose.yml: services {work_dirs[work_dir]} and {name} share "
                f"MESOS_WORK_DIR={work_dir}; each agent needs its own"
            )
        else:
            work_dirs[work_dir] = name
    return problems


def service_problems(compose: Compose) -> list[str]:
    problems = []
    services = compose.get("services") or {}
    if sorted(services) != sorted(SERVICES):
        problems.append(
            f"docker-compose.yml: services must be exactly {', '.join(SERVICES)}, "
            f"found {', '.join(services)}"
        )
    zookeeper_image = str((services.get("zookeeper") or {}).get("image", ""))
    if not re.fullmatch(r"zookeeper:3\.\d+\.\d+", zookeeper_image):
        problems.append(
            "docker-compose.yml: service zookeeper must use the official image at an exact "
            f"version (zookeeper:3.x.y), found {zookeeper_image!r}"
        )
    for name, service in services.items():
        if "healthcheck" not in service and name not in JOBS:
            problems.append(f"docker-compose.yml: service {name} has no healthcheck")
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            problems.append(
                f"docker-compose.yml: service {name}: depends_on must give a condition "
                "(service_healthy), not a plain list"
            )
            continue
        for other, rule in depends_on.items():
            if (rule or {}).get("condition") != "service_healthy":
                problems.append(
                    f"docker-compose.yml: service {name} should wait for {other} to be "
                    "healthy (condition: service_healthy)"
                )
    return problems


# --------------------------------------------------------------------------------------------
# (6) The repository, read-only, at /taller in every agent


def parse_volume(entry: Any) -> tuple[str, str, bool]:
    """(source, target, read_only) of a short ("src:dst:ro") or long volume entry."""
    if isinstance(entry, dict):
        return (
            str(entry.get("source", "")),
            str(entry.get("target", "")),
            bool(entry.get("read_only", False)),
        )
    source, _, rest = str(entry).partition(":")
    target, _, mode = rest.partition(":")
    return source, target, "ro" in mode.split(",")


def repo_mount_problems(compose: Compose) -> list[str]:
    problems = []
    services = compose.get("services") or {}
    for name in IN_THE_REPOSITORY:
        mounts = [parse_volume(v) for v in (services.get(name) or {}).get("volumes") or []]
        at_taller = [(source, ro) for source, target, ro in mounts if target == REPO_MOUNT]
        if not at_taller:
            problems.append(
                f"docker-compose.yml: service {name} does not mount the repository at "
                f"{REPO_MOUNT} (expected ./:{REPO_MOUNT}:ro)"
            )
            continue
        for source, read_only in at_taller:
            if not source.startswith(".") or (ROOT / source).resolve() != ROOT:
                problems.append(
                    f"docker-compose.yml: service {name} mounts {source!r} at {REPO_MOUNT}, "
                    "not the repository root (./)"
                )
            if not read_only:
                problems.append(
                    f"docker-compose.yml: service {name} mounts the repository at {REPO_MOUNT} "
                    "read-write; add :ro"
                )
    return problems


# --------------------------------------------------------------------------------------------
# (7) Steps 2 and 3 fetch their executor's code: no service hands them the repository


def fetch_problems(compose: Compose) -> list[str]:
    problems = []
    services = compose.get("services") or {}
    for name, service in services.items():
        words = [str(word) for key in ("entrypoint", "command") for word in service.get(key) or []]
        if "--executor-pythonpath" in words:
            problems.append(
                f"docker-compose.yml: service {name} passes --executor-pythonpath; steps 2 and 3 "
                "ship their code in CommandInfo.uris"
            )
    entrypoint = [str(word) for word in services.get("scheduler", {}).get("entrypoint") or []]
    if "step3_failover" not in entrypoint:
        problems.append("docker-compose.yml: service scheduler does not run step3_failover")
    # The URL must be the same for every scheduler of the job: the service's name (an alias
    # of each `run --use-aliases` container), not a container's own address.
    host = entrypoint[entrypoint.index("--code-host") + 1] if "--code-host" in entrypoint else None
    if host != "scheduler":
        problems.append(
            "docker-compose.yml: service scheduler must serve the executor's code as "
            f"--code-host scheduler, not {host!r}"
        )
    for name in AGENTS:
        hosts = [str(entry) for entry in services.get(name, {}).get("extra_hosts") or []]
        if "host.docker.internal:host-gateway" not in hosts:
            problems.append(
                f"docker-compose.yml: agent {name} cannot reach a scheduler on the laptop "
                "(extra_hosts: host.docker.internal:host-gateway)"
            )
    return problems


def step_docs_problems() -> list[str]:
    """The documented `compose run` of the step 3 scheduler gives it the service's name."""
    problems = []
    for path in (README_FILE, ROOT / "README.en.md", DOCKER_DIR / "README.md"):
        for line in path.read_text().splitlines():
            if "run --rm" in line and "scheduler" in line and "--use-aliases" not in line:
                problems.append(f"{path.relative_to(ROOT)}: `run` without --use-aliases: {line}")
    return problems


# --------------------------------------------------------------------------------------------
# The real files


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


@pytest.fixture(scope="module")
def agent_dockerfile() -> str:
    return (ROOT / AGENT_DOCKERFILE).read_text()


def test_compose_images_are_pinned(compose: Compose) -> None:
    problems = compose_image_problems(compose)
    assert not problems, "\n".join(problems)


def test_dockerfiles_are_pinned() -> None:
    found = dockerfiles()
    assert ROOT / AGENT_DOCKERFILE in found, f"{AGENT_DOCKERFILE} is missing"
    problems = [
        problem
        for path in found
        for problem in dockerfile_pin_problems(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not problems, "\n".join(problems)


def test_agents_are_built_from_the_agent_dockerfile(compose: Compose) -> None:
    problems = agent_build_problems(compose)
    assert not problems, "\n".join(problems)


def test_agent_image_provides_python3_and_pymesos(agent_dockerfile: str) -> None:
    problems = agent_dockerfile_problems(agent_dockerfile, locked_versions())
    assert not problems, "\n".join(problems)


def test_scheduler_image_provides_python3_pymesos_and_the_chart() -> None:
    text = (ROOT / SCHEDULER_DOCKERFILE).read_text()
    pins = locked_versions()
    problems = agent_dockerfile_problems(
        text, pins, SCHEDULER_DOCKERFILE, LOCKED_IN_SCHEDULER_IMAGE
    )
    assert not problems, "\n".join(problems)
    drifted = text.replace("matplotlib==", "matplotlib==0.0.0.dev0+")
    problems = agent_dockerfile_problems(
        drifted, pins, SCHEDULER_DOCKERFILE, LOCKED_IN_SCHEDULER_IMAGE
    )
    assert any("matplotlib==" in p and SCHEDULER_DOCKERFILE in p for p in problems), problems


@pytest.mark.parametrize("dockerfile", [AGENT_DOCKERFILE, SCHEDULER_DOCKERFILE])
def test_image_context_stays_small(dockerfile: str) -> None:
    ignore = ROOT / f"{dockerfile}.dockerignore"
    assert ignore.is_file(), f"{ignore.relative_to(ROOT)} is missing: the build context is the repo"
    lines = {line.strip() for line in ignore.read_text().splitlines()}
    excluded = "*" in lines or {".git", ".venv", "build", "_site"} <= lines
    assert excluded, f"{ignore.relative_to(ROOT)} must exclude .git, .venv, build and _site"


def test_published_ports_are_exactly_the_mesos_ports_on_loopback(compose: Compose) -> None:
    problems = published_port_problems(compose)
    assert not problems, "\n".join(problems)


def test_readme_lists_the_published_ports(compose: Compose) -> None:
    published = compose_published_ports(compose)
    assert published == set(MESOS_PORTS.values()), f"docker-compose.yml publishes {published}"
    problems = readme_port_problems(README_FILE.read_text(), published)
    assert not problems, "\n".join(problems)


def test_mesos_settings(compose: Compose) -> None:
    problems = mesos_settings_problems(compose)
    assert not problems, "\n".join(problems)


def test_services_healthchecks_and_start_order(compose: Compose) -> None:
    problems = service_problems(compose)
    assert not problems, "\n".join(problems)


def test_agents_mount_the_repository_read_only(compose: Compose) -> None:
    problems = repo_mount_problems(compose)
    assert not problems, "\n".join(problems)


def test_steps_2_and_3_fetch_their_code_instead_of_reading_the_repository(
    compose: Compose,
) -> None:
    problems = fetch_problems(compose) + step_docs_problems()
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# The rules notice what they are for (broken copies of the real files)

DIGEST_REF = "zookeeper@sha256:" + "0" * 64


@pytest.mark.parametrize(
    "ref",
    [
        "zookeeper:3.8.6",
        "localhost:5000/team/agent:1.0",
        DIGEST_REF,
        "a/b:1.7.1-py3.11" + DIGEST_REF,
    ],
)
def test_image_ref_accepts_pinned(ref: str) -> None:
    assert image_ref_problem(ref) is None


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("zookeeper", "no tag"),
        ("zookeeper:latest", "latest"),
        ("localhost:5000/team/agent", "no tag"),
        ("mesosphere/mesos-slave:${TAG}", "variable"),
        ("zookeeper@sha256:abc", "digest"),
        ("", "empty"),
    ],
)
def test_image_ref_rejects_unpinned(ref: str, reason: str) -> None:
    problem = image_ref_problem(ref)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("bad", ["mesosphere/mesos-master:latest", "mesosphere/mesos-master"])
def test_pinning_rejects_a_moving_master_image(compose: Compose, bad: str) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["master"]["image"] = bad
    problems = compose_image_problems(broken)
    assert len(problems) == 1 and "service master" in problems[0], problems


def test_pinning_rejects_a_moving_agent_image(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agent-2"]["image"] = "taller-mesos-agent:latest"
    problems = compose_image_problems(broken)
    assert any("service agent-2" in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("FROM mesosphere/mesos-slave:1.7.1", "FROM mesosphere/mesos-slave"),
        ("FROM mesosphere/mesos-slave:1.7.1", "FROM mesosphere/mesos-slave:${MESOS_VERSION}"),
        ("FROM ghcr.io/astral-sh/uv:0.13.9 AS uv", "FROM ghcr.io/astral-sh/uv:latest AS uv"),
        ("COPY --from=uv ", "COPY --from=ghcr.io/astral-sh/uv "),
    ],
)
def test_dockerfile_pinning_rejects_unpinned(agent_dockerfile: str, old: str, new: str) -> None:
    assert old in agent_dockerfile
    broken = agent_dockerfile.replace(old, new)
    problems = dockerfile_pin_problems(broken, AGENT_DOCKERFILE)
    assert len(problems) == 1 and problems[0].startswith(f"{AGENT_DOCKERFILE}:"), problems


def test_dockerfile_pinning_checks_the_syntax_directive(agent_dockerfile: str) -> None:
    moving = dockerfile_pin_problems("# syntax=docker/dockerfile\n" + agent_dockerfile, "Df")
    assert moving == [
        "Df: '# syntax=' 'docker/dockerfile' has no tag, which means the moving tag 'latest'"
    ]
    pinned = dockerfile_pin_problems("# syntax=docker/dockerfile:1.7.0\n" + agent_dockerfile, "Df")
    assert pinned == []


def test_dockerfile_pinning_follows_stages_and_continuations() -> None:
    text = (
        "FROM --platform=linux/amd64 python:3.11.9-slim AS base\n"
        "FROM base\n"
        "COPY --from=0 /a /a\n"
        "COPY --from=base \\\n    /b /b\n"
        "RUN --mount=type=bind,from=busybox,target=/x true\n"
    )
    problems = dockerfile_pin_problems(text, "Dockerfile")
    assert problems == [
        "Dockerfile:6: RUN --mount from 'busybox' has no tag, which means the moving tag 'latest'"
    ]


def test_agent_dockerfile_rules_notice_missing_python_and_pymesos(agent_dockerfile: str) -> None:
    pins = locked_versions()
    without_python = agent_dockerfile.replace("uv python install 3.11.18", "true")
    assert any("Python >= 3.11" in p for p in agent_dockerfile_problems(without_python, pins))
    old_python = agent_dockerfile.replace("install 3.11.18", "install 3.10.14")
    assert any("Python >= 3.11" in p for p in agent_dockerfile_problems(old_python, pins))
    unexposed = agent_dockerfile.replace("/usr/local/bin/python3 \\\n", "/opt/py3 \\\n", 1)
    assert any("python3 on PATH" in p for p in agent_dockerfile_problems(unexposed, pins))
    without_pymesos = agent_dockerfile.replace(PYMESOS_PIN, "pymesos")
    assert any(PYMESOS_PIN in p for p in agent_dockerfile_problems(without_pymesos, pins))
    drifted = agent_dockerfile.replace("kazoo==", "kazoo==0.0.0.dev0+")
    assert any("kazoo==" in p for p in agent_dockerfile_problems(drifted, pins))
    without_compat = agent_dockerfile.replace("        /tmp/http-parser \\\n", "")
    assert any("compat/http-parser" in p for p in agent_dockerfile_problems(without_compat, pins))


def test_agent_build_rule_notices_another_dockerfile(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agent-1"]["build"] = {"context": "docker/agent"}
    problems = agent_build_problems(broken)
    assert any("service agent-1" in p and "context" in p for p in problems), problems
    broken["services"]["agent-1"]["build"] = {"context": ".", "dockerfile": "Dockerfile"}
    problems = agent_build_problems(broken)
    assert any("service agent-1" in p and AGENT_DOCKERFILE in p for p in problems), problems
    broken["services"]["agent-1"]["build"] = "."
    problems = agent_build_problems(broken)
    assert any("service agent-1" in p and "build:" in p for p in problems), problems


@pytest.mark.parametrize(
    ("service", "ports", "expected"),
    [
        ("master", ["5050:5050"], "every interface"),
        ("master", ["0.0.0.0:5050:5050"], "0.0.0.0"),
        ("agent-2", ["127.0.0.1:5052:5051"], "must be equal"),
        ("agent-1", [], "publishes nothing"),
        ("zookeeper", ["127.0.0.1:2181:2181"], "expected nothing"),
        ("agent-1", [{"target": 5051, "published": 5051}], "every interface"),
    ],
)
def test_port_rule_notices(compose: Compose, service: str, ports: list[Any], expected: str) -> None:
    broken = copy.deepcopy(compose)
    broken["services"][service]["ports"] = ports
    problems = published_port_problems(broken)
    assert any(f"service {service}" in p and expected in p for p in problems), problems


def test_port_rule_notices_an_agent_listening_elsewhere(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agent-2"]["environment"]["MESOS_PORT"] = "5051"
    problems = published_port_problems(broken)
    assert any("service agent-2" in p and "MESOS_PORT=5052" in p for p in problems), problems


@pytest.mark.parametrize(
    ("readme", "expected"),
    [
        ("# Taller\n\nMaster on :5050, agents on :5051 and :5052.\n", "no `<!-- compose-ports"),
        ("Ports 5050 5051.\n<!-- compose-ports: 5050 5051 -->\n", "lists [5050, 5051]"),
        ("Only 5050 and 5051 here.\n<!-- compose-ports: 5050 5051 5052 -->\n", "port 5052"),
        ("Ports 15050, 5051, 5052.\n<!-- compose-ports: 5050 5051 5052 -->\n", "port 5050"),
    ],
)
def test_readme_rule_notices(readme: str, expected: str) -> None:
    problems = readme_port_problems(readme, {5050, 5051, 5052})
    assert any(expected in p for p in problems), problems


def test_readme_rule_accepts_a_good_readme() -> None:
    readme = (
        "## Real cluster\n\nhttp://localhost:5050 (master), 127.0.0.1:5051 and :5052 (agents)\n"
        "<!-- compose-ports: 5050 5051 5052 -->\n"
    )
    assert readme_port_problems(readme, {5050, 5051, 5052}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MESOS_LAUNCHER", "linux"),
        ("MESOS_CONTAINERIZERS", "docker,mesos"),
        ("MESOS_SWITCH_USER", "true"),
        ("MESOS_HOSTNAME", None),
        ("MESOS_WORK_DIR", "/var/lib/mesos/agent-1"),
        ("MESOS_RESOURCES", "cpus:2;mem:2048"),
    ],
)
def test_settings_rule_notices(compose: Compose, key: str, value: str | None) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["agent-2"]["environment"]
    if value is None:
        del env[key]
    else:
        env[key] = value
    problems = mesos_settings_problems(broken)
    assert any("agent-2" in p and key in p for p in problems), problems


def test_settings_rule_reads_the_list_form() -> None:
    service = {"environment": ["MESOS_LAUNCHER=posix", "MESOS_SWITCH_USER=0"]}
    assert environment(service) == {"MESOS_LAUNCHER": "posix", "MESOS_SWITCH_USER": "0"}


def test_service_rule_notices_extra_services_and_unconditional_start(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["marathon"] = {"image": "mesosphere/marathon:v1.11.24"}
    broken["services"]["master"]["depends_on"] = ["zookeeper"]
    problems = service_problems(broken)
    assert any("exactly" in p and "marathon" in p for p in problems), problems
    assert any("service marathon has no healthcheck" in p for p in problems), problems
    assert any("service master" in p and "condition" in p for p in problems), problems


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        (["./:/taller"], "read-write"),
        (["./notebooks:/taller:ro"], "not the repository root"),
        ([], "does not mount"),
        ([{"type": "bind", "source": ".", "target": "/taller"}], "read-write"),
    ],
)
def test_mount_rule_notices(compose: Compose, volumes: list[Any], expected: str) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agent-1"]["volumes"] = volumes
    problems = repo_mount_problems(broken)
    assert any("service agent-1" in p and expected in p for p in problems), problems


def test_fetch_rule_notices_a_repository_path_and_a_per_container_code_host(
    compose: Compose,
) -> None:
    broken = copy.deepcopy(compose)
    entrypoint = broken["services"]["scheduler"]["entrypoint"]
    at = entrypoint.index("--code-host")
    entrypoint[at : at + 2] = ["--executor-pythonpath", "/taller"]
    del broken["services"]["agent-2"]["extra_hosts"]
    problems = "\n".join(fetch_problems(broken))
    assert "service scheduler passes --executor-pythonpath" in problems
    assert "--code-host scheduler, not None" in problems
    assert "agent agent-2 cannot reach a scheduler on the laptop" in problems
