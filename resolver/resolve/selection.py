"""Which releases are candidates for a target, and which file of each the target would install.

A release is a candidate for CUDA major M in an environment when it fits M (families), is not yanked
(unless pinned with `==`), was uploaded before `--exclude-newer`, and has a wheel for the environment
*and* for every other platform of the same Python where the tree requires it (or an sdist, where
allowed) whose `requires-python` admits the Python: a project required only on Windows needs no Linux
wheel. Otherwise the selector says why not: an `Unavailable` with a kind and a detail.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..errors.display import escape
from ..model.distributions import DistFile, Release, wheel_tags
from ..model.families import FamilyTable
from ..model.targets import Environment, Platform, PythonVersion, environment_of

UnavailableKind = Literal[
    "other-major",  # a member of another CUDA major
    "no-major",  # a version-major project whose version names no CUDA major (0.0.0a0 placeholders)
    "yanked",
    "uploaded-after",  # --exclude-newer
    "requires-python",
    "no-wheel",  # no wheel for a platform of the target (and no sdist allowed)
    "unreadable",  # its dependencies cannot be read (invalid metadata, a large sdist)
]
_GLIBC = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
# Kinds that say everything by themselves; the others read "unusable here: <detail>".
_SELF_EXPLAINING = frozenset({"other-major", "no-major", "yanked", "uploaded-after"})


@dataclass(frozen=True)
class Unavailable:
    """Why a release is not a candidate for a target: a kind to decide on, a detail to show."""

    kind: UnavailableKind
    detail: str

    def phrase(self) -> str:
        return self.detail if self.kind in _SELF_EXPLAINING else f"unusable here: {self.detail}"


@dataclass(frozen=True)
class SelectionOptions:
    pre: bool = False
    allow_sdist: bool = False
    allow_sdist_packages: frozenset[str] = frozenset()
    exclude_newer: datetime | None = None
    # Projects no edge may lead to (uv's exclude-dependencies): dropped, and recorded as excluded.
    exclude_dependencies: frozenset[str] = frozenset()
    # Projects (or families) whose builds per torch version may miss the pinned torch: recorded, not enforced.
    allow_torch_build_mismatch: frozenset[str] = frozenset()

    def sdist_allowed(self, name: str) -> bool:
        return self.allow_sdist or name in self.allow_sdist_packages


@dataclass(frozen=True)
class Choice:
    """A usable release: the file for the resolving environment, and where an sdist would be built."""

    release: Release
    file: DistFile
    # Whose METADATA gives the release's dependencies (see Selector.select).
    metadata_file: DistFile
    # Platform tags (of this Python) that have no wheel and would build the sdist.
    sdist_platforms: tuple[str, ...] = ()


class TargetMemo:
    """Answers one target's rules work out again and again, each a pure function of its key: which file of a
    release it would install, a wheel's rank in an environment, whether a requirement line holds there.

    One per target (a `Selector` makes its own; a copy for another thread gets another), never inside a
    value that threads share. A release is a key as itself (held here, so a release freed and another
    allocated at its address can never meet its answer); everything else by value.
    """

    def __init__(self) -> None:
        self.choices: dict[tuple[Release, bool, frozenset[Environment] | None], Choice | Unavailable] = {}
        self.ranks: dict[Environment, dict[str, int | None]] = defaultdict(dict)
        self.applies: dict[Environment, dict[tuple[str, frozenset[str]], bool]] = defaultdict(dict)


@dataclass
class Selector:
    cuda_major: int
    environment: Environment
    # Every environment a release may have to serve (the resolving one included): same Python, all
    # platforms; `select` is told which of them its requirements need it in.
    environments: tuple[Environment, ...]
    families: FamilyTable
    options: SelectionOptions = field(default_factory=SelectionOptions)
    memo: TargetMemo = field(default_factory=TargetMemo, repr=False, compare=False)

    def copy(self) -> Selector:
        """The same selection with a memo of its own (for another thread)."""
        return Selector(self.cuda_major, self.environment, self.environments, self.families, self.options)

    def select(self, release: Release, allow_yanked: bool = False, serves: frozenset[Environment] | None = None) -> Choice | Unavailable:
        """The choice for this release, or the reason it is not a candidate, where it must serve the
        environments `serves` (None: every one of `environments`).

        Dependencies are read per release, as uv and pip read them: from the wheel of the
        first environment (so every platform of a major shares one read), else any wheel (an sdist's
        METADATA cannot be read by ranges); markers carry what differs between platforms.
        """
        key = (release, allow_yanked, serves)
        choices = self.memo.choices
        if key not in choices:
            choices[key] = self._select(release, allow_yanked, serves)
        return choices[key]

    def _select(self, release: Release, allow_yanked: bool, serves: frozenset[Environment] | None) -> Choice | Unavailable:
        if not self.families.fits(release.name, release.version, self.cuda_major):
            major = self.families.major_of(release.name, release.version)
            label = f" build (+{release.version.local})" if release.version.local else " package"
            if major is not None:
                return Unavailable("other-major", f"a CUDA {major}{label}")
            local = f" (+{release.version.local})" if release.version.local else ""
            return Unavailable("no-major", f"not a CUDA {self.cuda_major} release{local}")
        files = [f for f in release.files if allow_yanked or not f.yanked]
        if not files:
            return Unavailable("yanked", "yanked")
        if self.options.exclude_newer is not None:
            files = [f for f in files if uploaded_by(f, self.options.exclude_newer)]
            if not files:
                return Unavailable("uploaded-after", f"uploaded after {self.options.exclude_newer.date().isoformat()}")
        chosen: DistFile | None = None
        sdist_platforms = []
        wheels: list[DistFile] = []
        for environment in self.environments:
            if not self._needed(environment, serves):
                continue
            file = best_wheel(files, environment, self.memo.ranks[environment])
            if file is not None:
                wheels.append(file)
            if file is None and self.options.sdist_allowed(release.name):
                file = next((f for f in files if f.is_sdist and python_ok(f, environment)), None)
                if file is not None:
                    sdist_platforms.append(environment.platform.tag)
            if file is None:
                return self._why_no_file(files, environment, release.name)
            if environment == self.environment:
                chosen = file
        assert chosen is not None
        # The first environment's wheel even where the release need not serve it: one read for every platform.
        first = next(iter(wheels), None) if self._needed(self.environments[0], serves) else best_wheel(
            files, self.environments[0], self.memo.ranks[self.environments[0]]
        )
        metadata_file = first or next(iter(wheels), None) or next((f for f in files if f.is_wheel), chosen)
        return Choice(release, chosen, metadata_file, tuple(sdist_platforms))

    def _needed(self, environment: Environment, serves: frozenset[Environment] | None) -> bool:
        return serves is None or environment in serves or environment == self.environment

    def _why_no_file(self, files: list[DistFile], environment: Environment, name: str) -> Unavailable:
        ranks = self.memo.ranks[environment]
        wheels = [f for f in files if f.is_wheel and compatible_rank(f, environment, ranks) is not None]
        if wheels:
            return Unavailable("requires-python", f"requires Python {_normalized(wheels[0].requires_python)} (target {environment.python})")
        refusing = [f for f in files if not python_ok(f, environment)]
        if refusing and len(refusing) == len(files):  # no file is for this Python: say why, not "no wheel"
            bound = _normalized(refusing[0].requires_python)
            return Unavailable("requires-python", f"requires Python {bound} (target {environment.python})")
        newer = _newer_glibc(files, environment)
        if newer is not None:
            (major, minor), platform = newer
            return Unavailable("no-wheel", f"no wheel for {environment}: its wheels need manylinux_{major}_{minor} "
                                           f"(glibc {major}.{minor}); --platform {platform} would take them, on an image that has it")
        if any(f.is_sdist for f in files) and not self.options.sdist_allowed(name):
            return Unavailable("no-wheel", f"no wheel for {environment} (only an sdist: --allow-sdist-package {name} would admit it)")
        return Unavailable("no-wheel", f"no wheel for {environment}")


def _newer_glibc(files: Iterable[DistFile], environment: Environment) -> tuple[tuple[int, int], str] | None:
    """The oldest manylinux platform newer than the target's for which a wheel would fit: its glibc
    version and its tag (None if there is none)."""
    target = _GLIBC.match(environment.platform.tag)
    if target is None:
        return None
    found = set()
    for file in files:
        for tag in wheel_tags(file.filename) if file.is_wheel else ():
            match = _GLIBC.match(tag.platform)
            if match and match.group(3) == target.group(3) and _glibc(match) > _glibc(target):
                found.add((_glibc(match), tag.platform))
    for glibc, platform in sorted(found):
        candidate = Environment(environment.python, Platform(platform))
        if any(compatible_rank(f, candidate) is not None and python_ok(f, candidate) for f in files):
            return glibc, platform
    return None


def _glibc(match: re.Match[str]) -> tuple[int, int]:
    return int(match.group(1)), int(match.group(2))


def _normalized(requires_python: str | None) -> str:
    """`>=3.7, <3.11` and `<3.11,>=3.7` as one text, so they count as one reason."""
    try:
        return str(SpecifierSet(requires_python or ""))
    except InvalidSpecifier:
        return escape(requires_python or "")


def best_wheel(files: Iterable[DistFile], environment: Environment, ranks: dict[str, int | None] | None = None) -> DistFile | None:
    """The wheel an installer would pick here: highest build number, then the most specific tag (`ranks`: a
    target's memo of `compatible_rank` in this environment)."""
    best: tuple[tuple[int, str], int] | None = None
    chosen = None
    for file in files:
        rank = compatible_rank(file, environment, ranks)
        if rank is None or not python_ok(file, environment):
            continue
        key = (file.build_number, -rank)
        if best is None or key > best:
            best, chosen = key, file
    return chosen


def compatible_rank(file: DistFile, environment: Environment, ranks: dict[str, int | None] | None = None) -> int | None:
    """The rank of the most specific of the wheel's tags supported here, or None (`ranks`: a target's memo of
    it in this environment, by file name)."""
    if not file.is_wheel:
        return None
    if ranks is None:
        return _rank(file.filename, environment)
    if file.filename not in ranks:  # (not try/except: most lookups of a new target miss, and raising costs)
        ranks[file.filename] = _rank(file.filename, environment)
    return ranks[file.filename]


def _rank(filename: str, environment: Environment) -> int | None:
    return _shared_rank(filename, *environment.key)


@functools.lru_cache(maxsize=1 << 16)
def _shared_rank(filename: str, python: str, platform: str) -> int | None:
    """A wheel's rank in an environment, for every target (behind each target's own memo)."""
    environment = environment_of(python, platform)
    platforms = filename[: -len(".whl")].rpartition("-")[2].lower().split(".")
    if environment.wheel_platforms.isdisjoint(platforms):
        return None  # another system's wheel (most of many projects' files): not parsed
    priority = environment.tag_priority
    found = [priority[tag] for tag in wheel_tags(filename) if tag in priority]
    return min(found) if found else None


def uploaded_by(file: DistFile, exclude_newer: datetime | None) -> bool:
    """Whether `--exclude-newer` lets the file be seen (a file without an upload time always is)."""
    return exclude_newer is None or file.upload_time is None or file.upload_time <= exclude_newer


def python_ok(file: DistFile, environment: Environment) -> bool:
    return requires_python_ok(file.requires_python, environment)


def requires_python_ok(requires_python: str | None, environment: Environment) -> bool:
    return not requires_python or _python_admitted(requires_python, environment.python)


@functools.lru_cache(maxsize=4096)
def _python_admitted(requires_python: str, python: PythonVersion) -> bool:
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # as pip does: an invalid requires_python does not exclude a file
    return specifier.contains(Version(f"{python}.0"), prereleases=True)
