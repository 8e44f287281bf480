"""`[tool.cuda-constraints]` in pyproject.toml: every key has a default that serves the usual layout.

    [tool.cuda-constraints]
    requirements = ["requirements/kv_connectors.txt"]   # input files, relative to pyproject.toml
    cuda = [12, 13]                                       # or "auto"
    python-versions = ["3.12"]
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"]
    output-dir = "constraints"
    index-url = "https://pypi.org/simple"
    pre = false
    allow-sdist = false                                   # or a list of projects
    exclude-newer = "2026-11-01"                          # optional
    generate-hashes = false
    canaries = ["nixl"]                                   # modules `install` imports to verify
    rocm-requirements = "requirements/rocm.txt"           # optional: what `install` uses on ROCm
    [tool.cuda-constraints.families.mooncake-transfer-engine]
    members = "mooncake-transfer-engine-cuda{major}"
    default-major = 12

A flag on the command line wins over the file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.families import BUILTIN_FAMILIES, Family, FamilyTable, family_from_config
from ..model.targets import (
    DEFAULT_PLATFORMS,
    DEFAULT_PYTHON_VERSIONS,
    Platform,
    PythonVersion,
    parse_major,
)
from .options import CONFIG_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_REQUIREMENTS = ("requirements/kv_connectors.txt",)
DEFAULT_MAJORS = (12, 13)
_FAMILY_KEYS = {"members", "meta", "meta-extra", "default-major", "version-major", "fixed-major"}


@dataclass(frozen=True)
class Config:
    root: Path
    path: Path | None = None
    requirements: tuple[Path, ...] = tuple(Path(p) for p in DEFAULT_REQUIREMENTS)
    cuda: tuple[int, ...] | str = DEFAULT_MAJORS
    python_versions: tuple[PythonVersion, ...] = tuple(PythonVersion.parse(v) for v in DEFAULT_PYTHON_VERSIONS)
    platforms: tuple[Platform, ...] = tuple(Platform(p) for p in DEFAULT_PLATFORMS)
    output_dir: Path = Path("constraints")
    # `index-url` as configured; None when [tool.cuda-constraints] does not set it.
    index_url: str | None = None
    # The index the environment names (UV_DEFAULT_INDEX, UV_INDEX_URL, PIP_INDEX_URL) and which variable did.
    environment_index_url: str | None = field(default=None, compare=False)
    environment_index_source: str = field(default="", compare=False)
    environment_extra_index_urls: tuple[str, ...] = field(default=(), compare=False)
    pre: bool = False
    allow_sdist: bool = False
    allow_sdist_packages: tuple[str, ...] = ()
    exclude_newer: datetime | None = None
    generate_hashes: bool = False
    canaries: tuple[str, ...] = ("nixl",)
    rocm_requirements: Path | None = None
    extra_families: tuple[Family, ...] = ()
    # The families table as written, for the input digest (empty when none is configured).
    families_text: str = field(default="", compare=False)

    @property
    def default_index_url(self) -> str:
        """The index when no flag or requirements-file line names one: configuration, environment, PyPI."""
        return self.index_url or self.environment_index_url or DEFAULT_INDEX_URL

    def family_table(self) -> FamilyTable:
        return FamilyTable((*self.extra_families, *BUILTIN_FAMILIES))

    def resolve_path(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.cuda-constraints] table, else the nearest one."""
    nearest = None
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            nearest = nearest or candidate
            try:
                tool = tomllib.loads(candidate.read_text(encoding="utf-8")).get("tool", {})
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                return candidate  # load_config names the problem
            if not isinstance(tool, dict) or "cuda-constraints" in tool:
                return candidate
    return nearest


# Where pip and uv read their index from the environment, in the order this tool asks them.
ENVIRONMENT_INDEX_VARIABLES = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
ENVIRONMENT_EXTRA_INDEX_VARIABLES = ("UV_INDEX", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL")


def load_config(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """`[tool.cuda-constraints]` of the nearest pyproject.toml, and the indexes the environment names."""
    config = _load_file((start or Path.cwd()).resolve())
    environ = os.environ if environ is None else environ
    source = next((name for name in ENVIRONMENT_INDEX_VARIABLES if environ.get(name, "").strip()), "")
    extra = tuple(url for name in ENVIRONMENT_EXTRA_INDEX_VARIABLES for url in environ.get(name, "").split())
    return replace(
        config,
        environment_index_url=environ[source].strip() if source else None,
        environment_index_source=source,
        environment_extra_index_urls=extra,
    )


def _load_file(start: Path) -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config(root=start)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, "", f"cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "", f"not valid TOML ({error})") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(path, "", "[tool] must be a table")
    table = tool.get("cuda-constraints")
    if table is None:
        return Config(root=path.parent, path=path)
    if not isinstance(table, dict):
        raise ConfigError(path, "", f"tool.cuda-constraints must be a table, not {table!r}", key_line(path, "cuda-constraints"))
    return _parse(table, path)


def key_line(path: Path, key: str) -> int:
    """The line where a key of the table is set (`key = ...`, or its own `[tool.cuda-constraints.key]`
    table), for messages; 0 when it cannot be found."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    table = re.compile(rf"^\s*\[\s*tool\.cuda-constraints\.{re.escape(key)}\s*\]")
    assignment = re.compile(rf"""^\s*["']?{re.escape(key.rsplit(".", 1)[-1])}["']?\s*=""")
    inside = False
    for number, line in enumerate(lines, start=1):
        if table.match(line):
            return number
        if line.lstrip().startswith("["):
            inside = line.strip() in ("[tool.cuda-constraints]", "[tool]")
        elif inside and assignment.match(line):
            return number
    return 0


def _parse(table: dict[str, Any], path: Path) -> Config:
    reader = _Reader(table, path)
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise reader.fail(unknown[0], f"unknown key (known: {', '.join(sorted(CONFIG_KEYS))})")
    allow_sdist = table.get("allow-sdist", False)
    if not isinstance(allow_sdist, (bool, list)) or (isinstance(allow_sdist, list) and not all(isinstance(p, str) for p in allow_sdist)):
        raise reader.fail("allow-sdist", "must be true, false, or a list of project names")
    families = reader.families()
    return Config(
        root=path.parent,
        path=path,
        requirements=tuple(Path(p) for p in reader.strings("requirements", DEFAULT_REQUIREMENTS)),
        cuda=reader.majors(),
        python_versions=tuple(reader.each("python-versions", DEFAULT_PYTHON_VERSIONS, PythonVersion.parse)),
        platforms=tuple(reader.each("platforms", DEFAULT_PLATFORMS, Platform.parse)),
        output_dir=Path(reader.string("output-dir", "constraints")),
        index_url=reader.string("index-url", DEFAULT_INDEX_URL) if "index-url" in table else None,
        pre=reader.boolean("pre"),
        allow_sdist=allow_sdist is True,
        allow_sdist_packages=tuple(allow_sdist) if isinstance(allow_sdist, list) else (),
        exclude_newer=reader.date("exclude-newer"),
        generate_hashes=reader.boolean("generate-hashes"),
        canaries=tuple(reader.strings("canaries", ("nixl",))),
        rocm_requirements=Path(table["rocm-requirements"]) if "rocm-requirements" in table else None,
        extra_families=families,
        families_text=json.dumps(table.get("families", {}), sort_keys=True) if families else "",
    )


@dataclass
class _Reader:
    table: dict[str, Any]
    path: Path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem, key_line(self.path, key))

    def string(self, key: str, default: str) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> list[str]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of strings")
        return value

    def boolean(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def each(self, key: str, default: tuple[str, ...], parse: Any) -> list[Any]:
        values = self.strings(key, default)
        try:
            return [parse(v) for v in values]
        except UsageError as error:
            raise self.fail(key, error.problem) from None

    def majors(self) -> tuple[int, ...] | str:
        value = self.table.get("cuda", list(DEFAULT_MAJORS))
        if value == "auto":
            return "auto"
        if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
            raise self.fail("cuda", 'must be "auto" or a list of CUDA majors such as [12, 13]')
        try:
            return tuple(sorted({parse_major(v, "cuda =") for v in value}))
        except UsageError as error:
            raise self.fail("cuda", error.problem) from None

    def date(self, key: str) -> datetime | None:
        if key not in self.table:
            return None
        value = self.table[key]
        try:
            return parse_date(str(value))
        except UsageError as error:
            raise self.fail(key, error.problem) from None

    def families(self) -> tuple[Family, ...]:
        families = self.table.get("families", {})
        if not isinstance(families, dict):
            raise self.fail("families", "must be a table of families")
        parsed = []
        for name, entry in families.items():
            key = f"families.{name}"
            if not isinstance(entry, dict):
                raise self.fail(key, "must be a table")
            unknown = sorted(set(entry) - _FAMILY_KEYS)
            if unknown:
                raise self.fail(key, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_FAMILY_KEYS))})")
            members = entry.get("members")
            if members is not None and (not isinstance(members, str) or "{major}" not in members):
                raise self.fail(key, "members must be a name pattern containing {major}, e.g. 'nixl-cu{major}'")
            if entry.get("meta") and members is None:
                raise self.fail(key, "a meta package needs a members pattern")
            if "default-major" in entry and (not isinstance(entry["default-major"], int) or members is None):
                raise self.fail(key, "default-major must be a CUDA major, next to a members pattern")
            if not isinstance(entry.get("version-major", []), list) or not isinstance(entry.get("fixed-major", {}), dict):
                raise self.fail(key, "version-major must be a list of projects; fixed-major a table of project = major")
            parsed.append(family_from_config(name, entry))
        return tuple(parsed)


def parse_date(text: str) -> datetime:
    """`2026-11-01` (end of that day, UTC) or an RFC 3339 timestamp."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d")
            return day.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a date: {text!r} (give YYYY-MM-DD or an RFC 3339 timestamp)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
