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
    pylock = false                                        # also write pylock.cuNN.toml (PEP 751) files
    canaries = ["nixl", "nixl_ep?"]                       # modules `install` imports to verify (`?`: where installed)
    rocm-requirements = "requirements/rocm.txt"           # optional: what `install` uses on ROCm
    [tool.cuda-constraints.verify]
    strict = false                                        # a library nothing provides that is not CUDA's: an error
    ignore-libraries = ["libibverbs.so.*"]                # libraries nothing provides that are not reported
    [tool.cuda-constraints.families.mooncake-transfer-engine]
    members = "mooncake-transfer-engine-cuda{major}"
    default-major = 12

A flag on the command line wins over the file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from ..errors.display import redact_text
from ..model.distributions import DEFAULT_INDEX_URL
from ..model.families import BUILTIN_FAMILIES, Family, FamilyTable, family_from_config
from ..model.indexes import default_torch_backend
from ..model.targets import (
    DEFAULT_PLATFORMS,
    DEFAULT_PYTHON_VERSIONS,
    Platform,
    PythonVersion,
    parse_major,
)
from .config_indexes import IndexConfig, MajorSettings, read_index_config, read_majors
from .config_reader import TableReader, key_line, toml_error
from .local import read_limited
from .options import CONFIG_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_REQUIREMENTS = ("requirements/kv_connectors.txt",)
DEFAULT_MAJORS = (12, 13)
# `nixl_ep?`: imported where the installed nixl ships it (a canary ending in `?` is optional).
DEFAULT_CANARIES = ("nixl", "nixl_ep?")
_VERIFY_KEYS = ("strict", "ignore-libraries")
_FAMILY_KEYS = {"members", "meta", "meta-extra", "default-major", "version-major", "fixed-major", "torch-builds"}


@dataclass(frozen=True)
class EnvironmentIndexes:
    """What the environment says about indexes, as pip and uv read it."""

    index_url: str | None = None
    index_source: str = ""  # the variable that named it
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    strategy: str | None = None
    no_index: bool = False  # UV_NO_INDEX, PIP_NO_INDEX
    # Each URL or find-links location above -> the variable that named it (for messages and -v).
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Config:
    root: Path
    path: Path | None = None
    requirements: tuple[Path, ...] = tuple(Path(p) for p in DEFAULT_REQUIREMENTS)
    constraints: tuple[Path, ...] = ()
    cuda: tuple[int, ...] | str = DEFAULT_MAJORS
    python_versions: tuple[PythonVersion, ...] = tuple(PythonVersion.parse(v) for v in DEFAULT_PYTHON_VERSIONS)
    platforms: tuple[Platform, ...] = tuple(Platform(p) for p in DEFAULT_PLATFORMS)
    output_dir: Path = Path("constraints")
    # `index-url` as configured; None when [tool.cuda-constraints] does not set it.
    index_url: str | None = None
    indexes: IndexConfig = field(default_factory=IndexConfig)
    no_index: bool = False
    # `[tool.cuda-constraints.cuda.N]` tables (when `cuda` is given that way): what each major does differently.
    majors: Mapping[int, MajorSettings] = field(default_factory=dict, hash=False)
    environment: EnvironmentIndexes = field(default_factory=EnvironmentIndexes, compare=False)
    pre: bool = False
    allow_sdist: bool = False
    allow_sdist_packages: tuple[str, ...] = ()
    exclude_newer: datetime | None = None
    exclude_dependencies: tuple[str, ...] = ()
    allow_torch_build_mismatch: tuple[str, ...] = ()
    generate_hashes: bool = False
    pylock: bool = False  # write pylock.cuNN.toml beside each cuNN.txt
    canaries: tuple[str, ...] = DEFAULT_CANARIES
    # [tool.cuda-constraints.verify]: how a library nothing here provides is reported
    verify_strict: bool = False
    ignore_libraries: tuple[str, ...] = ()
    rocm_requirements: Path | None = None
    extra_families: tuple[Family, ...] = ()
    # The configuration that shapes results beyond the options line (families, indexes, per-major tables),
    # as written, for the input digest (empty when none is configured); `digest_text` gives a major's.
    families_text: str = field(default="", compare=False)
    major_texts: Mapping[int, str] = field(default_factory=dict, compare=False, hash=False)
    configured: bool = field(default=False, compare=False)  # a [tool.cuda-constraints] table was found

    def missing_note(self) -> str | None:
        """When no [tool.cuda-constraints] was found: where it was looked for, and which defaults apply."""
        if self.configured:
            return None
        return f"{self.looked_for()}: the defaults apply ({self.defaults()})"

    def looked_for(self) -> str:
        return f"{self.path} has no [tool.cuda-constraints] table" if self.path else f"no pyproject.toml in {self.root} or above"

    def defaults(self) -> str:
        pythons = ", ".join(str(p) for p in self.python_versions)
        platforms = ", ".join(p.tag for p in self.platforms)
        majors = ", ".join(map(str, self.cuda)) if isinstance(self.cuda, tuple) else self.cuda
        return (f"requirements {', '.join(p.as_posix() for p in self.requirements)}; "
                f"CUDA {majors}; Python {pythons}; {platforms}; output {self.output_dir.as_posix()}/")

    @property
    def default_index_url(self) -> str:
        """The index when no flag or requirements-file line names one: configuration, environment, PyPI."""
        named = next((index.url for index in self.indexes.named if index.default), None)
        return self.index_url or named or self.environment.index_url or DEFAULT_INDEX_URL

    def digest_text(self, major: int) -> str:
        """The configuration a major's input digest covers: the shared keys that shape results, and that
        major's own table only (editing the CUDA 12 table leaves the CUDA 13 file current)."""
        return self.major_texts.get(major, self.families_text)

    def major(self, major: int) -> MajorSettings:
        return self.majors.get(major, MajorSettings())

    def torch_backend(self, major: int) -> str:
        """The PyTorch index build a major takes torch from: its `torch-backend`, else the default for it."""
        return self.major(major).torch_backend or default_torch_backend(major)

    def input_files(
        self, major: int, requirements: tuple[Path, ...], constraints: tuple[Path, ...], given: bool = False
    ) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """The requirements and constraints files of one major: the shared ones (`requirements` and
        `constraints`), unless the major's table names its own `requirements` (and `-r` was not `given`
        on the command line), with the major's `extra-requirements` and `constraints` added."""
        settings = self.major(major)
        if settings.requirements is not None and not given:
            requirements = tuple(self.resolve_path(p) for p in settings.requirements)
        requirements = (*requirements, *(self.resolve_path(p) for p in settings.extra_requirements))
        constraints = (*constraints, *(self.resolve_path(p) for p in settings.constraints))
        return tuple(dict.fromkeys(requirements)), tuple(dict.fromkeys(constraints))

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
                tool = tomllib.loads(read_limited(candidate).decode("utf-8")).get("tool", {})
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                return candidate  # load_config names the problem
            if not isinstance(tool, dict) or "cuda-constraints" in tool:
                return candidate
    return nearest


# Where pip and uv read their indexes from the environment, in the order this tool asks them.
# The keys whose values shape what a compile produces (the `families` digest in each header covers them).
SHAPING_KEYS = ("families", "index", "sources", "cuda", "extra-index-url", "find-links", "index-strategy", "pytorch-index")
ENVIRONMENT_INDEX_VARIABLES = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
ENVIRONMENT_EXTRA_INDEX_VARIABLES = ("UV_INDEX", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL")
ENVIRONMENT_FIND_LINKS_VARIABLES = ("UV_FIND_LINKS", "PIP_FIND_LINKS")


def read_environment(environ: Mapping[str, str]) -> EnvironmentIndexes:
    source = next((name for name in ENVIRONMENT_INDEX_VARIABLES if environ.get(name, "").strip()), "")
    # UV_INDEX entries may be `name=url`; only the URL matters here.
    extra = tuple((url.split("=", 1)[-1] if "=" in url.split("://", 1)[0] else url, name)
                  for name in ENVIRONMENT_EXTRA_INDEX_VARIABLES for url in environ.get(name, "").split())
    links = tuple((place, name) for name in ENVIRONMENT_FIND_LINKS_VARIABLES for place in environ.get(name, "").replace(",", " ").split())
    origins = dict(reversed([*([(environ[source].strip(), source)] if source else []), *extra, *links]))  # the first names it
    no_index = any(environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in ("UV_NO_INDEX", "PIP_NO_INDEX"))
    return EnvironmentIndexes(
        environ[source].strip() if source else None, source, tuple(url for url, _ in extra), tuple(place for place, _ in links),
        environ.get("UV_INDEX_STRATEGY") or None, no_index, origins,
    )


def project_values(start: Path) -> dict[str, str]:
    """The keys `[tool.cuda-constraints]` of the project here sets, each value as written (URLs with their
    credentials masked), for `--help` to show beside the built-in defaults; nothing when there is no such
    table or it cannot be read (the command itself then says why)."""
    path = find_pyproject(start)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("cuda-constraints") if path else None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return {}
    if not isinstance(table, dict):
        return {}
    values = {}
    for key, value in table.items():
        if key in CONFIG_KEYS and isinstance(value, (str, int, bool, list)) and not isinstance(value, dict):
            items = value if isinstance(value, list) else [value]
            text = ", ".join(str(item).lower() if isinstance(item, bool) else str(item) for item in items)
            values[key] = redact_text(text)
    return values


def load_config(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """`[tool.cuda-constraints]` of the nearest pyproject.toml, and the indexes the environment names."""
    config = _load_file((start or Path.cwd()).resolve())
    return replace(config, environment=read_environment(os.environ if environ is None else environ))


def _load_file(start: Path) -> Config:
    path = find_pyproject(start)
    if path is None:
        return Config(root=start)
    try:
        document = tomllib.loads(read_limited(path).decode("utf-8"))
    except OSError as error:
        raise ConfigError(path, "", f"cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(path, "", f"cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise toml_error(path, error) from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(path, "", "[tool] must be a table")
    table = tool.get("cuda-constraints")
    if table is None:
        return Config(root=path.parent, path=path)
    if not isinstance(table, dict):
        raise ConfigError(path, "", f"tool.cuda-constraints must be a table, not {table!r}", key_line(path, "cuda-constraints"))
    return _parse(table, path)


def _parse(table: dict[str, Any], path: Path) -> Config:
    reader = TableReader(table, path)
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise reader.fail(unknown[0], f"unknown key (known: {', '.join(sorted(CONFIG_KEYS))})")
    allow_sdist = table.get("allow-sdist", False)
    if not isinstance(allow_sdist, (bool, list)) or (isinstance(allow_sdist, list) and not all(isinstance(p, str) for p in allow_sdist)):
        raise reader.fail("allow-sdist", "must be true, false, or a list of project names")
    families = _families(reader)
    verify = reader.nested("verify")
    verify.known(_VERIFY_KEYS)
    indexes = read_index_config(reader)
    majors = read_majors(reader, {index.name for index in indexes.named})
    shaping: dict[str, Any] = {key: table[key] for key in SHAPING_KEYS if key in table and (key != "cuda" or majors)}
    return Config(
        root=path.parent,
        path=path,
        requirements=tuple(Path(p) for p in reader.strings("requirements", DEFAULT_REQUIREMENTS)),
        constraints=tuple(Path(p) for p in reader.strings("constraints")),
        cuda=tuple(majors) if majors else _majors(reader),
        python_versions=tuple(reader.each("python-versions", DEFAULT_PYTHON_VERSIONS, PythonVersion.parse)),
        platforms=tuple(reader.each("platforms", DEFAULT_PLATFORMS, Platform.parse)),
        output_dir=Path(reader.string("output-dir", "constraints")),
        index_url=reader.string("index-url", DEFAULT_INDEX_URL) if "index-url" in table else None,
        pre=reader.boolean("pre"),
        allow_sdist=allow_sdist is True,
        allow_sdist_packages=tuple(allow_sdist) if isinstance(allow_sdist, list) else (),
        exclude_newer=reader.date("exclude-newer"),
        exclude_dependencies=tuple(reader.strings("exclude-dependencies")),
        allow_torch_build_mismatch=tuple(reader.strings("allow-torch-build-mismatch")),
        generate_hashes=reader.boolean("generate-hashes"),
        pylock=reader.boolean("pylock"),
        canaries=tuple(reader.strings("canaries", DEFAULT_CANARIES)),
        verify_strict=verify.boolean("strict"),
        ignore_libraries=tuple(verify.strings("ignore-libraries")),
        rocm_requirements=Path(table["rocm-requirements"]) if "rocm-requirements" in table else None,
        extra_families=families,
        indexes=indexes,
        no_index=reader.boolean("no-index"),
        majors=majors or {},
        families_text=_families_text(table, shaping),
        major_texts=_major_texts(table, shaping) if majors else {},
        configured=True,
    )


def _families_text(table: dict[str, Any], shaping: dict[str, Any]) -> str:
    """The digest's part of the configuration: the families table alone as it always was, else all of it."""
    if set(shaping) <= {"families"}:
        return json.dumps(table.get("families", {}), sort_keys=True) if shaping else ""
    return json.dumps(shaping, sort_keys=True, default=str)


def _major_texts(table: dict[str, Any], shaping: dict[str, Any]) -> dict[int, str]:
    """Each major's part of the digest: the shared keys, with only that major's own `cuda.N` table."""
    return {parse_major(key, "cuda."): _families_text(table, {**shaping, "cuda": {key: value}}) for key, value in table["cuda"].items()}


def _families(reader: TableReader) -> tuple[Family, ...]:
    families = reader.table.get("families", {})
    if not isinstance(families, dict):
        raise reader.fail("families", "must be a table of families")
    parsed = []
    for name, entry in families.items():
        key = f"families.{name}"
        if not isinstance(entry, dict):
            raise reader.fail(key, "must be a table")
        unknown = sorted(set(entry) - _FAMILY_KEYS)
        if unknown:
            raise reader.fail(key, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_FAMILY_KEYS))})")
        members = entry.get("members")
        if members is not None and (not isinstance(members, str) or "{major}" not in members):
            raise reader.fail(key, "members must be a name pattern containing {major}, e.g. 'nixl-cu{major}'")
        if entry.get("meta") and members is None:
            raise reader.fail(key, "a meta package needs a members pattern")
        if "default-major" in entry and (not isinstance(entry["default-major"], int) or members is None):
            raise reader.fail(key, "default-major must be a CUDA major, next to a members pattern")
        if not isinstance(entry.get("version-major", []), list) or not isinstance(entry.get("fixed-major", {}), dict):
            raise reader.fail(key, "version-major must be a list of projects; fixed-major a table of project = major")
        builds = entry.get("torch-builds")
        if builds is not None and (not isinstance(builds, str) or "{torch}" not in builds or members is None):
            raise reader.fail(key, "torch-builds must be a member path with {torch} (and {major}), e.g. "
                                   "'nixl_ep_cu{major}/nixl_ep_cpp_torch{torch}', next to a members pattern")
        parsed.append(family_from_config(name, entry))
    return tuple(parsed)


def _majors(reader: TableReader) -> tuple[int, ...] | str:
    value = reader.table.get("cuda", list(DEFAULT_MAJORS))
    if value == "auto":
        return "auto"
    if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
        raise reader.fail("cuda", 'must be "auto" or a list of CUDA majors such as [12, 13]')
    try:
        return tuple(sorted({parse_major(v, "cuda =") for v in value}))
    except UsageError as error:
        raise reader.fail("cuda", error.problem) from None
