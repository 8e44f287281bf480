"""What the resolver works with: requirements with their markers already evaluated, and candidates.

An identifier is a project name, with its extras when a requirement asks for some (`nixl[cu13]`): the
extras candidate stands for the release plus what its extras add, as pip's resolver models it. Two
virtual identifiers are not projects: the target's Python (a release's `requires-python` is a
requirement on it) and an unreadable-metadata marker that nothing satisfies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..model.targets import Environment
from .selection import Choice

PYTHON = NormalizedName("<python>")
_SERIALS = itertools.count()  # (next() on it is atomic: requirements are made in several threads)
# A requirement nothing satisfies: how a release whose metadata cannot be read is made unusable.
UNREADABLE = NormalizedName("<unreadable-metadata>")


@dataclass(frozen=True)
class Asker:
    """Who asked for a requirement: a line of the input (or a flag, `--upgrade-package`), or a release; a
    release asks beyond its metadata for the torch its wheel's builds per torch version serve (`builds`
    says which). Shown as messages name it: `requirements/x.txt:3`, `lmcache==0.4.4`,
    `nixl-cu12==1.5.0 (builds for torch 2.11, 2.12, 2.13)`."""

    file: str = ""  # the input file, or the flag
    line: int = 0  # its line (0: a flag, or a release)
    release: tuple[NormalizedName, Version] | None = None
    builds: str = ""

    @classmethod
    def of(cls, candidate: Candidate | tuple[NormalizedName, Version], builds: str = "") -> Asker:
        """A release (a candidate, or a name and version)."""
        release = (candidate.name, candidate.version) if isinstance(candidate, Candidate) else candidate
        return cls(release=release, builds=builds)

    def is_release(self, candidate: Candidate) -> bool:
        return self.release == (candidate.name, candidate.version)

    def __str__(self) -> str:
        if self.release is not None:
            asked = f"{self.release[0]}=={self.release[1]}"
            return f"{asked} ({self.builds})" if self.builds else asked
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Req:
    """A requirement as the resolver sees it: markers already evaluated for the target."""

    name: NormalizedName
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    extras: frozenset[NormalizedName] = frozenset()
    # Who asked for it: a line of the input, a flag, or a release.
    asked_by: Asker = Asker()
    # Required on behalf of a meta package's member (the torch its builds serve): not the parent's own
    # requirement, so the parent is not named as one that requires it.
    on_behalf: bool = False
    # The extras as a release asked them, where they selected another CUDA major and were spelled for this
    # one (`nvidia-cutlass-dsl[cu13]` asked on CUDA 12 is `[cu12]` here); empty when asked as they are.
    asked_extras: frozenset[NormalizedName] = frozenset()
    # The environments of the target's Python (one per platform) where the tree needs it: where its
    # markers, and those of the chain that leads to it, hold. None: all of them.
    environments: frozenset[Environment] | None = field(default=None, compare=False)
    # Asked hundreds of thousands of times in a resolution (every round looks at every requirement): made once.
    identifier: str = field(init=False, compare=False, repr=False)
    pinned_exactly: bool = field(init=False, compare=False, repr=False)
    # Its hash, made once from the fields it is compared by; and a number of its own, which no other
    # requirement made this run has (a key for a target's memo of what it admits: an int hashes fastest).
    _hash: int = field(init=False, compare=False, repr=False)
    serial: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", identifier_of(self.name, self.extras))
        exact = any(s.operator in ("==", "===") and not s.version.endswith(".*") for s in self.specifier)
        object.__setattr__(self, "pinned_exactly", exact)
        object.__setattr__(self, "_hash", hash((self.name, self.specifier, self.extras, self.asked_by, self.on_behalf, self.asked_extras)))
        object.__setattr__(self, "serial", next(_SERIALS))

    def __hash__(self) -> int:
        return self._hash

    def admits(self, version: Version) -> bool:
        """Whether the specifier admits the version (pre-releases are filtered elsewhere); a target's rules
        remember the answers (`Policy.admits`)."""
        return self.specifier.contains(version, prereleases=True)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class Candidate:
    name: NormalizedName
    version: Version
    extras: frozenset[NormalizedName]
    choice: Choice | None  # None for the virtual Python candidate
    # The environments its requirements need it in, which its file must serve (None: all of them).
    serves: frozenset[Environment] | None = field(default=None, compare=False, repr=False)
    identifier: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identifier", identifier_of(self.name, self.extras))

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def identifier_of(name: str, extras: Iterable[str]) -> str:
    ordered = sorted(extras)
    return f"{name}[{','.join(ordered)}]" if ordered else name


def requirement_for(identifier: str) -> Req:
    """`name[a,b]` -> a requirement for any release of that identifier."""
    name, _, extras = identifier.partition("[")
    return Req(canonicalize_name(name), extras=frozenset(canonicalize_name(e) for e in extras.rstrip("]").split(",") if e))


def name_of(identifier: str) -> NormalizedName:
    return NormalizedName(identifier.split("[", 1)[0])
