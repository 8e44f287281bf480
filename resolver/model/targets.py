"""Targets: a CUDA major, a Python version and a platform, and what each means for wheels and markers.

Nothing here asks the machine: the environment is built from the target, as packaging's
`cpython_tags(python_version, abis, platforms)` is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from functools import cached_property

from packaging import tags
from packaging.markers import (
    InvalidMarker,
    Marker,
    UndefinedComparison,
    UndefinedEnvironmentName,
)
from packaging.tags import Tag
from packaging.version import InvalidVersion

from ..errors import UsageError

DEFAULT_PYTHON_VERSIONS = ("3.12",)
# CUDA majors are two digits: 10 (2018) to whatever comes; 1-9 and 100+ are typing mistakes.
# The CUDA majors the tool accepts: the ones wheels exist for, and room for those to come.
MAJORS = range(11, 20)
# A CUDA version as tools print it: `13`, `13.0`, `12.9.1`; its first part is the major.
_CUDA_VERSION = re.compile(r"^\s*(\d+)(?:\.\d+)*\s*$")
DEFAULT_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64")

_MANYLINUX = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MACOS = re.compile(r"^macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.+)$")
_WINDOWS = {"win_amd64": "AMD64", "win_arm64": "ARM64", "win32": "x86"}
_PYTHON_VERSION = re.compile(r"^3\.(\d{1,2})$")


def parse_major(text: str | int, what: str) -> int:
    """A CUDA major from `13`, `13.0` or `12.9.1` (the first part); UsageError naming `what` otherwise."""
    match = _CUDA_VERSION.match(str(text))
    major = int(match.group(1)) if match else None
    if major is None or major not in MAJORS or isinstance(text, bool):
        raise UsageError(f"{what} {text!r}: give a CUDA major such as 13 ({MAJORS.start} to {MAJORS.stop - 1})")
    return major


def parse_majors(text: str, what: str) -> tuple[int, ...]:
    """`12,13` (any order, repeats allowed) -> (12, 13)."""
    parts = [part for part in text.replace(" ", "").split(",") if part]
    if not parts:
        raise UsageError(f"{what} {text!r}: give CUDA majors such as 12,13")
    return tuple(sorted({parse_major(part, what) for part in parts}))


def environment_grid(pythons: tuple[PythonVersion, ...], platforms: tuple[Platform, ...]) -> tuple[Environment, ...]:
    """Every (Python, platform) pair, Pythons first: the environments one CUDA major is resolved for."""
    return tuple(Environment(python, platform) for python in pythons for platform in platforms)


@dataclass(frozen=True, order=True)
class Platform:
    """A wheel platform tag such as `manylinux_2_28_x86_64`, with what it implies."""

    tag: str

    @classmethod
    def parse(cls, text: str) -> Platform:
        text = text.strip().replace("-", "_").replace(".", "_")
        for legacy, (major, minor) in _LEGACY_MANYLINUX.items():
            if text.startswith(legacy + "_"):
                text = f"manylinux_{major}_{minor}_{text[len(legacy) + 1:]}"
        if not (_MANYLINUX.match(text) or _MACOS.match(text) or text in _WINDOWS or text.startswith("linux_")):
            raise UsageError(
                f"unknown platform {text!r}: give a wheel platform tag such as "
                "'manylinux_2_28_x86_64', 'manylinux_2_28_aarch64', 'macosx_14_0_arm64' or 'win_amd64'"
            )
        return cls(text)

    def __str__(self) -> str:
        return self.tag

    @cached_property
    def machine(self) -> str:
        if self.tag in _WINDOWS:
            return _WINDOWS[self.tag]
        match = _MANYLINUX.match(self.tag) or _MACOS.match(self.tag)
        if match:
            return match.group("arch")
        return self.tag.removeprefix("linux_")

    @cached_property
    def system(self) -> str:
        if self.tag in _WINDOWS:
            return "Windows"
        return "Darwin" if self.tag.startswith("macosx_") else "Linux"

    @property
    def sys_platform(self) -> str:
        return {"Windows": "win32", "Darwin": "darwin"}.get(self.system, "linux")

    @cached_property
    def compatible_tags(self) -> tuple[str, ...]:
        """Every platform tag a wheel may carry to install here, most specific first."""
        manylinux = _MANYLINUX.match(self.tag)
        if manylinux:
            arch, glibc_major, glibc_minor = (
                manylinux.group("arch"), int(manylinux.group("major")), int(manylinux.group("minor"))
            )
            found = []
            for minor in range(glibc_minor, -1, -1):
                found.append(f"manylinux_{glibc_major}_{minor}_{arch}")
                for legacy, version in _LEGACY_MANYLINUX.items():
                    if version == (glibc_major, minor):
                        found.append(f"{legacy}_{arch}")
            return (*found, f"linux_{arch}")
        macos = _MACOS.match(self.tag)
        if macos:
            version = (int(macos.group("major")), int(macos.group("minor")))
            return tuple(tags.mac_platforms(version, macos.group("arch")))
        return (self.tag,)


@dataclass(frozen=True, order=True)
class PythonVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> PythonVersion:
        match = _PYTHON_VERSION.match(text.strip())
        if not match:
            raise UsageError(f"unknown Python version {text!r}: give a minor version such as '3.12'")
        return cls(3, int(match.group(1)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tag(self) -> str:
        return f"cp{self.major}{self.minor}"


@dataclass(frozen=True, order=True)
class Environment:
    """A (Python version, platform) pair: what decides wheel compatibility and marker values."""

    python: PythonVersion
    platform: Platform
    # An environment keys a target's memos, asked per requirement line: its hash is made once.
    _hash: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.python, self.platform)))

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def tag_priority(self) -> dict[Tag, int]:
        """Every tag a wheel may carry to install here, mapped to its rank (0 is the most specific)."""
        version = (self.python.major, self.python.minor)
        platforms = list(self.platform.compatible_tags)
        supported = list(tags.cpython_tags(version, platforms=platforms))
        supported += list(tags.compatible_tags(version, self.python.tag, platforms))
        priority: dict[Tag, int] = {}
        for rank, tag in enumerate(supported):
            priority.setdefault(tag, rank)
        return priority

    @cached_property
    def markers(self) -> dict[str, str]:
        """PEP 508 marker values for this environment (the lowest patch release of the Python)."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "nt" if self.platform.system == "Windows" else "posix",
            "platform_machine": self.platform.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": self.platform.system,
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": str(self.python),
            "sys_platform": self.platform.sys_platform,
        }

    @cached_property
    def wheel_platforms(self) -> frozenset[str]:
        """The platform tags of `tag_priority`: a wheel that names none of them cannot install here."""
        return frozenset(tag.platform for tag in self.tag_priority)

    @cached_property
    def key(self) -> tuple[str, str]:
        """The environment as text, (Python, platform tag): how caches shared by every target hold it (a key of
        strings the garbage collector need not look at; `environment_of` gives the environment back)."""
        return (str(self.python), self.platform.tag)

    def evaluate(self, marker: Marker | None, extra: str = "") -> bool:
        """Whether a marker holds here; one that cannot be evaluated (bad version literal) does not."""
        if marker is None:
            return True
        try:
            return marker.evaluate({**self.markers, "extra": extra})
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName, InvalidVersion):
            return False

    def __str__(self) -> str:
        return f"{self.python.tag} {self.platform.tag}"


@functools.lru_cache(maxsize=64)
def environment_of(python: str, platform: str) -> Environment:
    """The environment of a `key` (one object per key, so its derived tables are made once)."""
    return Environment(PythonVersion.parse(python), Platform(platform))


@dataclass(frozen=True, order=True)
class Target:
    """What one resolution is for: a CUDA major in one environment."""

    cuda_major: int
    environment: Environment

    def __str__(self) -> str:
        return f"{self.environment}"


def describe_environments(environments: tuple[Environment, ...]) -> str:
    """`cp312 manylinux_2_28 x86_64, aarch64` — the targets line of a constraints file header.

    Pythons in version order, platforms in the order they are configured.
    """
    pythons = ", ".join(sorted({e.python.tag for e in environments}, key=_python_sort_key))
    platforms = list(dict.fromkeys(e.platform.tag for e in environments))
    prefixes = {_manylinux_prefix(p) for p in platforms}
    if len(prefixes) == 1 and None not in prefixes:
        arches = dict.fromkeys(Platform(p).machine for p in platforms)
        return f"{pythons} {prefixes.pop()} {', '.join(arches)}"
    return f"{pythons} {', '.join(platforms)}"


def parse_targets(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """A header's targets line read back: the Python versions (`3.12`) and the machines (`x86_64`)."""
    pythons = frozenset(f"{major}.{minor}" for major, minor in re.findall(r"\bcp(\d)(\d+)\b", text))
    machines = frozenset(re.findall(r"(x86_64|aarch64|ppc64le|s390x|i686|arm64|amd64)\b", text))
    return pythons, machines


def _manylinux_prefix(platform: str) -> str | None:
    match = _MANYLINUX.match(platform)
    return f"manylinux_{match.group('major')}_{match.group('minor')}" if match else None


def _python_sort_key(tag: str) -> int:
    return int(tag[3:])
