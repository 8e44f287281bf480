"""packse's resolution scenarios (`tests/data/packse`, vendored), built into a served index and compiled.

A scenario names packages, their versions (requirements, extras, `requires-python`, wheel tags, whether
an sdist or a wheel exists, yanked), the root's requirements and the expected outcome. As packse builds
them: every version has an sdist and a `py3-none-any` wheel unless it says otherwise, `requires-python`
is `>=3.12` unless it says otherwise, and a wheel with other tags is the same wheel under another name.
Here they become a `SyntheticIndex` served as PEP 503 HTML (as packse's `simple-html` index is), and one
`compile` runs for the scenario's environment:

- the target Python is `resolver_options.python`, else `environment.python` (a minor version);
- the platform is `resolver_options.python_platform`, else Linux x86_64;
- a universal scenario (a cross-platform `uv lock`) is compiled for the targets this tool resolves: its
  required environments, else Linux (x86_64 and aarch64), macOS and Windows, at Python 3.13. A lock
  covers every Python the root's `requires-python` admits (3.12 and newer unless it says otherwise)
  without asking for a wheel on each; the one scenario with Python-specific wheels
  (specific-architecture) has cp313 wheels only, so at 3.12 it has nothing to install and fails;
- sdists are allowed (packse's scenarios build from source) except for the `no_build` packages;
  `prereleases` is `--pre`.

An unsatisfiable scenario is met by a failed resolution (exit 4), or, when the root names a project the
index lacks, by the input error that says so (exit 2: a typo in one's own requirements is not a
resolution problem).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from .synthetic import SyntheticIndex

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SCENARIOS = Path(__file__).parent / "data" / "packse" / "scenarios"
LINUX = "manylinux_2_28_x86_64"
# A universal scenario's targets: the platforms its markers name (Linux on two machines, macOS, Windows).
UNIVERSAL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_14_0_arm64", "win_amd64")
# `required_environments` markers, as the platform that stands for each.
REQUIRED_ENVIRONMENT_PLATFORMS = {"linux": LINUX, "win32": "win_amd64", "darwin": "macosx_14_0_arm64"}
UNIVERSAL_PYTHON = "3.13"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.data.get("resolver_options", {}))

    @property
    def universal(self) -> bool:
        return bool(self.options.get("universal"))

    @property
    def satisfiable(self) -> bool:
        return bool(self.data["expected"]["satisfiable"])

    @property
    def expected_pins(self) -> dict[str, str]:
        return {name: str(version) for name, version in self.data["expected"].get("packages", {}).items()}

    @property
    def requirements(self) -> list[str]:
        return list(self.data["root"].get("requires", []))

    @property
    def python(self) -> str:
        """The target Python (a minor version)."""
        if self.universal:
            assert SpecifierSet(self.data["root"].get("requires_python", ">=3.12")).contains(f"{UNIVERSAL_PYTHON}.0")
            return UNIVERSAL_PYTHON
        version = self.options.get("python") or self.data.get("environment", {}).get("python", "3.12")
        return ".".join(str(version).split(".")[:2])

    @property
    def platforms(self) -> tuple[str, ...]:
        required = self.options.get("required_environments")
        if required:
            return tuple(REQUIRED_ENVIRONMENT_PLATFORMS[re.search(r"""sys_platform\s*==\s*['"](\w+)['"]""", r).group(1)] for r in required)
        if self.universal:
            return UNIVERSAL_PLATFORMS
        platform = self.options.get("python_platform")
        if platform:
            machine, _, system = platform.partition("-")
            return (f"{system}_{machine}",)
        return (LINUX,)

    def index(self, prefix: str = "") -> SyntheticIndex:
        """The scenario's packages as an index that answers PEP 503 HTML, as packse's does, at
        `<prefix>/simple/` (files at `<prefix>/packages/`)."""
        index = SyntheticIndex(pages=f"{prefix}/simple/", files=f"{prefix}/packages/", html_only=True)
        for name, package in self.data["packages"].items():
            for version, metadata in package["versions"].items():
                wheel = metadata.get("wheel", True)
                index.add(
                    name,
                    str(version),
                    metadata.get("requires", []),
                    extras={extra: tuple(requires) for extra, requires in metadata.get("extras", {}).items()},
                    tags=tuple(metadata.get("wheel_tags") or ["py3-none-any"]) if wheel else (),
                    sdist=metadata.get("sdist", True),
                    requires_python=metadata.get("requires_python", ">=3.12") or None,
                    yanked=metadata.get("yanked", False),
                )
        return index

    def compile_arguments(self, index_url: str, requirements: Path, output: Path) -> list[str]:
        arguments = ["compile", "-r", str(requirements), "--cuda", "12", "--python-version", self.python,
                     "--index-url", index_url, "--no-cache", "-o", str(output), "--quiet"]
        for platform in self.platforms:
            arguments += ["--platform", platform]
        no_build = set(self.options.get("no_build", []))
        if no_build:
            arguments += [f"--allow-sdist-package={name}" for name in self.data["packages"] if name not in no_build]
        else:
            arguments.append("--allow-sdist")
        if self.options.get("prereleases"):
            arguments.append("--pre")
        return arguments


def load_scenarios(directory: Path = SCENARIOS) -> Iterator[Scenario]:
    """Every scenario under the directory (TOML, JSON, YAML; a file may hold a list), sorted by name."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".toml":
            loaded: Any = tomllib.loads(path.read_text())
        elif path.suffix == ".json":
            loaded = json.loads(path.read_text())
        elif path.suffix == ".yaml":
            loaded = yaml.safe_load(path.read_text())
        else:
            continue
        for data in loaded if isinstance(loaded, list) else [loaded]:
            found.append(Scenario(data["name"], path, data))
    yield from sorted(found, key=lambda s: s.name)


@dataclass(frozen=True)
class Outcome:
    """What one compile of a scenario gave: its exit code, the pins (name -> versions), what it printed."""

    exit_code: int
    pins: dict[str, frozenset[str]]
    stderr: str

    def matches(self, scenario: Scenario) -> bool:
        if not scenario.satisfiable:
            return self.exit_code == 4 or (self.exit_code == 2 and self.missing_root(scenario))
        if self.exit_code != 0:
            return False
        expected = scenario.expected_pins
        return all(self.pins.get(name) == frozenset({version}) for name, version in expected.items()) and (
            scenario.universal or not expected or set(self.pins) == set(expected)
        )

    def missing_root(self, scenario: Scenario) -> bool:
        """Whether the run stopped at a project the root names and the index lacks."""
        return any(f"no project named {Requirement(line).name!r}" in self.stderr for line in scenario.requirements)

    def summary(self) -> str:
        if self.exit_code:
            return f"exit {self.exit_code}: {self.stderr.strip()}"
        return ", ".join(f"{name}=={'|'.join(sorted(versions))}" for name, versions in sorted(self.pins.items())) or "(nothing)"


class ScenarioIndexes:
    """Every scenario's index behind one server: `/<scenario>/simple/` and `/<scenario>/packages/`."""

    def __init__(self) -> None:
        self.indexes: dict[str, SyntheticIndex] = {}
        self.requests: list[tuple[str, str, str | None]] = []

    def add(self, scenario: Scenario, change: Callable[[SyntheticIndex], None] | None = None) -> str:
        """Serve the scenario's index (`change`d first, when given); its path (`/<scenario>/simple`)."""
        index = self.indexes[scenario.name] = scenario.index(f"/{scenario.name}")
        if change is not None:
            change(index)
        return f"/{scenario.name}/simple"

    def respond(self, method: str, path: str, range_header: str | None = None, accept: str = "") -> tuple[int, dict[str, str], bytes]:
        index = self.indexes.get(path.split("/")[1])
        return index.respond(method, path, range_header, accept) if index is not None else (404, {}, b"not found")


def run_scenario(
    scenario: Scenario, server_url: str, indexes: ScenarioIndexes, directory: Path, change: Callable[[SyntheticIndex], None] | None = None
) -> Outcome:
    """Compile the scenario's root requirements against its index, in this process, in `directory`
    (the working directory, with a `pyproject.toml` that configures nothing)."""
    import contextlib
    import io

    from resolver.cli.main import main
    from resolver.files.constraints import parse

    (directory / "pyproject.toml").write_text("[tool.cuda-constraints]\n")
    requirements = directory / "requirements.txt"
    requirements.write_text("".join(f"{line}\n" for line in scenario.requirements))
    output = directory / "constraints"
    stderr = io.StringIO()
    arguments = scenario.compile_arguments(server_url + indexes.add(scenario, change), requirements, output)
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(arguments)
    pins: dict[str, set[str]] = {}
    if code == 0:
        for pin in parse((output / "cu12.txt").read_text(), "cu12.txt").pins:
            pins.setdefault(pin.name, set()).add(str(pin.version))
    return Outcome(code, {name: frozenset(versions) for name, versions in pins.items()}, stderr.getvalue())
