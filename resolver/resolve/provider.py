"""The resolvelib provider for one target: a CUDA major in one environment (DESIGN §3).

A thin provider that hands off to small named functions, as pip's does. What makes it CUDA-aware:

- candidates of another major are not available (the Selector says so), so resolvelib backtracks to
  releases whose whole tree fits the major;
- a meta package's edges to members of another major are dropped and recorded as exclusions, and its
  member for the major is required at the meta's version (through its `[cuM]` extra when it declares one).

Everything the provider learns on the way (why releases were unavailable, which edges were dropped,
who required what) is recorded for the result and for error messages. No I/O except through the
`MetadataSource` it is given.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from ..errors import MetadataUnavailable, NoMemberForMajor, ProjectNotFound
from ..errors.display import escape
from ..model.distributions import CoreMetadata, Project, Release, parse_requirement
from ..model.families import Family, FamilyTable
from .selection import Choice, Selector, requires_python_ok
from .source import MetadataSource

logger = logging.getLogger(__name__)
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
PYTHON = "<python>"
# A requirement nothing satisfies: how a release whose metadata cannot be read is made unusable.
UNREADABLE = "<unreadable-metadata>"
# How many later candidates to prefetch once the resolver starts walking down a project's releases.
BACKTRACK_PREFETCH = 8


@dataclass(frozen=True)
class Req:
    """A requirement as the resolver sees it: markers already evaluated for the target."""

    name: str
    specifier: SpecifierSet = field(default_factory=SpecifierSet)
    extras: frozenset[str] = frozenset()
    # Where it comes from, for messages: "requirements/x.txt:3" or "lmcache==0.4.4".
    origin: str = ""
    _admitted: dict[Version, bool] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def admits(self, version: Version) -> bool:
        """Whether the specifier admits the version (pre-releases are filtered elsewhere); memoised."""
        try:
            return self._admitted[version]
        except KeyError:
            admitted = self._admitted[version] = self.specifier.contains(version, prereleases=True)
            return admitted

    @property
    def identifier(self) -> str:
        return identifier_of(self.name, self.extras)

    @property
    def pinned_exactly(self) -> bool:
        return any(s.operator in ("==", "===") and not s.version.endswith(".*") for s in self.specifier)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"


@dataclass(frozen=True)
class Candidate:
    name: str
    version: Version
    extras: frozenset[str]
    choice: Choice | None  # None for the virtual Python candidate

    @property
    def identifier(self) -> str:
        return identifier_of(self.name, self.extras)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Exclusion:
    """A dropped edge from a meta package to a member of another CUDA major."""

    name: str
    required_by: str  # "nixl==1.5.1"


def identifier_of(name: str, extras: Iterable[str]) -> str:
    extras = sorted(extras)
    return f"{name}[{','.join(extras)}]" if extras else name


def split_identifier(identifier: str) -> tuple[str, SpecifierSet, frozenset[str]]:
    """`name[a,b]` -> (name, no specifier, {a, b}): a requirement for any release of that identifier."""
    name, _, extras = identifier.partition("[")
    return name, SpecifierSet(), frozenset(e for e in extras.rstrip("]").split(",") if e)


@dataclass
class Record:
    """What the provider learned during one resolution."""

    # name -> version -> reason it was not a candidate
    unavailable: dict[str, dict[Version, str]] = field(default_factory=lambda: defaultdict(dict))
    # (name, version, extras) -> dropped edges of that meta release (or of its extras)
    exclusions: dict[tuple[str, Version, frozenset[str]], tuple[Exclusion, ...]] = field(default_factory=dict)
    # name -> the other CUDA major of a project that was required but is named for that major
    mismatched: dict[str, int] = field(default_factory=dict)
    # name -> the last find_matches query for it: (project, requirements, excluded versions)
    queries: dict[str, tuple[Project, tuple[Req, ...], frozenset[Version]]] = field(default_factory=dict)
    # (name, version, extras) -> requirements that candidate declared for this target
    dependencies: dict[tuple[str, Version, frozenset[str]], tuple[Req, ...]] = field(default_factory=dict)


class CudaProvider(AbstractProvider):  # type: ignore[type-arg]
    def __init__(
        self,
        source: MetadataSource,
        selector: Selector,
        constraints: Mapping[str, Sequence[Req]] | None = None,
        preferred: Mapping[str, Version] | None = None,
        pre: bool = False,
        on_dependencies: Callable[[Sequence[Req]], None] | None = None,
    ) -> None:
        self.source = source
        self.selector = selector
        self.families: FamilyTable = selector.families
        self.major = selector.cuda_major
        self.environment = selector.environment
        self.constraints = constraints or {}
        self.preferred = preferred or {}
        self.pre = pre
        self.record = Record()
        self._applies_memo: dict[tuple[str, frozenset[str]], bool] = {}
        # Told the requirements of every candidate the resolver pins (compile starts a crawl from them).
        self.on_dependencies = on_dependencies

    # -- resolvelib contract ------------------------------------------------------------------------------

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[RequirementInformation[Req, Candidate]]],
        backtrack_causes: Sequence[RequirementInformation[Req, Candidate]],
    ) -> tuple[bool, bool, bool, bool, str]:
        """(not the Python check, not a backtrack cause, not pinned with ==, not top-level, name).

        The lowest tuple is resolved first: the Python check, then what caused the last backtrack (so
        conflicts are settled early), exact pins (cheap), and the user's own requirements.
        """
        infos = list(information[identifier])
        causes = {info.requirement.name for info in backtrack_causes} | {
            info.parent.name for info in backtrack_causes if info.parent is not None
        }
        name = identifier.split("[", 1)[0]
        return (
            identifier != PYTHON,
            name not in causes,
            not any(info.requirement.pinned_exactly for info in infos),
            not any(info.parent is None for info in infos),
            identifier,
        )

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Req]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]] | list[Candidate]:
        requested = tuple(requirements[identifier])
        if identifier == UNREADABLE:
            return []
        if identifier == PYTHON:
            python = Version(f"{self.environment.python}.0")
            ok = all(r.specifier.contains(python, prereleases=True) for r in requested)
            return [Candidate(PYTHON, python, frozenset(), None)] if ok else []
        if not requested:
            # While backtracking, resolvelib may ask about a project whose requirements were all withdrawn
            # (only incompatibilities are left): any release but those will do.
            requested = (Req(*split_identifier(identifier)),)
        name = requested[0].name
        major = self.mismatched_major(name)
        if major is not None:
            # Named for another major: no release can fit, and its page need not be fetched.
            self.record.mismatched[name] = major
            return []
        excluded = frozenset(c.version for c in incompatibilities[identifier])
        project = self._project(name)
        self.record.queries[name] = (project, requested, excluded)
        # resolvelib iterates lazily and usually stops at the first candidate: select no more than needed.
        return lambda: self.candidates_in(project, requested, excluded)

    def candidates_in(self, project: Project, requested: Sequence[Req], excluded: frozenset[Version] = frozenset()) -> Iterator[Candidate]:
        """The candidates of a project for these requirements, most preferred first, lazily (no I/O)."""
        name, extras = requested[0].name, requested[0].extras
        applied = (*requested, *self.constraints.get(name, ()))
        allow_yanked = any(r.pinned_exactly for r in applied)
        allow_pre = self.pre or any(spec.prereleases for r in applied for spec in r.specifier)
        if not allow_pre and not any(
            _admits(applied, r.version, False) and not isinstance(self.selector.select(r, allow_yanked), str)
            for r in project.releases
        ):
            # PEP 440: pre-releases are acceptable when no final release satisfies the requirement; as pip
            # and uv, a final release counts only if it can be installed here (a wheel for every target).
            allow_pre = True
        releases: Iterable[Release] = project.releases
        preferred = project.release(self.preferred[name]) if name in self.preferred else None
        if preferred is not None:
            releases = (preferred, *(r for r in project.releases if r is not preferred))
        for release in releases:
            if release.version in excluded or not _admits(applied, release.version, allow_pre):
                continue
            choice = self.selector.select(release, allow_yanked)
            if isinstance(choice, str):
                self.record.unavailable[release.name][release.version] = choice
            else:
                yield Candidate(name, release.version, extras, choice)

    def mismatched_major(self, name: str) -> int | None:
        """The other CUDA major a project belongs to by its name alone (any version), if any."""
        major = self.families.major_of(name)
        return major if major is not None and major != self.major else None

    def offered(self, name: str) -> list[Version]:
        """Every version the last query for a project offered, in the resolver's order."""
        query = self.record.queries.get(name)
        return [c.version for c in self.candidates_in(*query)] if query else []

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        return requirement.admits(candidate.version)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.choice is None:
            return []
        key = (candidate.name, candidate.version, candidate.extras)
        if key not in self.record.dependencies:
            upcoming = self._upcoming(candidate)
            for later in upcoming:
                self.source.prefetch_metadata(later.choice.release, later.choice.metadata_file)  # type: ignore[union-attr]
            try:
                metadata = self.source.metadata(candidate.choice.release, candidate.choice.metadata_file)
            except MetadataUnavailable as error:
                # A property of this release (only a large sdist, invalid metadata): not a candidate, not a
                # failed run; but the result is not what the user would expect, so it is worth a warning.
                self.record.unavailable[candidate.name][candidate.version] = f"unreadable: {error.problem}"
                self.record.dependencies[key] = (Req(UNREADABLE, origin=str(candidate)),)
                logger.warning("skipping %s %s: %s", candidate.name, candidate.version, escape(error.problem))
            else:
                for repair in metadata.repairs:
                    logger.warning("%s: %s (a legacy spelling, read as uv reads it)", candidate, escape(repair))
                self.record.dependencies[key] = tuple(self.dependencies_from(candidate, metadata))
                if upcoming and self.on_dependencies is not None:
                    # A release reached by walking down (torch 2.10 for CUDA 12): its subtree is new.
                    self.on_dependencies(self.record.dependencies[key])
        return list(self.record.dependencies[key])

    # -- named steps --------------------------------------------------------------------------------------

    def _project(self, name: str) -> Project:
        try:
            return self.source.project(name)
        except ProjectNotFound:
            variant = self.families.classify(name)
            if variant is not None and variant.role == "member" and variant.major == self.major:
                raise NoMemberForMajor(variant.family.meta or variant.family.name, self.major, name) from None
            raise

    def dependencies_from(self, candidate: Candidate, metadata: CoreMetadata) -> Iterator[Req]:
        """What a candidate requires here, meta rules applied (no I/O)."""
        origin = str(candidate)
        if candidate.extras:
            # The extras candidate stands for the base release plus what the extras add.
            yield Req(candidate.name, SpecifierSet(f"=={candidate.version}"), origin=origin)
            for extra in sorted(candidate.extras - _declared_extras(metadata)):
                logger.warning("%s has no extra named %r; it adds nothing", candidate, extra)
        if metadata.requires_python and not requires_python_ok(metadata.requires_python, self.environment):
            yield Req(PYTHON, SpecifierSet(metadata.requires_python), origin=origin)
        declared = list(self._declared(candidate, metadata))
        meta = self.families.meta_family(candidate.name)
        if meta is None:
            yield from declared
            return
        kept, dropped = [], []
        for requirement in declared:
            member_major = meta.member_major(requirement.name)
            if member_major is not None and member_major != self.major:
                dropped.append(Exclusion(requirement.name, origin))
            else:
                kept.append(requirement)
        self.record.exclusions[(candidate.name, candidate.version, candidate.extras)] = tuple(dict.fromkeys(dropped))
        yield from kept
        if not candidate.extras:
            yield self._member_requirement(candidate, metadata, meta)

    def _member_requirement(self, candidate: Candidate, metadata: CoreMetadata, meta: Family) -> Req:
        pinned = SpecifierSet(f"=={candidate.version}")
        extra = canonicalize_name(meta.meta_extra.format(major=self.major))
        if extra in _declared_extras(metadata):
            return Req(candidate.name, pinned, frozenset({extra}), origin=str(candidate))
        member = meta.member_name(self.major)
        if member is None:
            raise NoMemberForMajor(candidate.name, self.major, f"{meta.name} (no member pattern)")
        return Req(member, pinned, origin=str(candidate))

    def _declared(self, candidate: Candidate, metadata: CoreMetadata) -> Iterator[Req]:
        """The release's requirements whose markers hold here (for its extras only, on an extras candidate)."""
        for text in metadata.requires_dist:
            requirement = parse_requirement(text)  # valid: metadata is checked as it is read
            key = (text, candidate.extras)
            if key not in self._applies_memo:
                self._applies_memo[key] = self._applies(requirement.marker, candidate.extras)
            if not self._applies_memo[key]:
                continue
            yield Req(canonicalize_name(requirement.name), requirement.specifier, frozenset(canonicalize_name(e) for e in requirement.extras), str(candidate))

    def _applies(self, marker: Marker | None, extras: frozenset[str]) -> bool:
        if marker is None:
            return not extras
        base = self.environment.evaluate(marker)
        if not extras:
            return base
        return not base and any(self.environment.evaluate(marker, extra) for extra in extras)

    def _upcoming(self, candidate: Candidate) -> list[Candidate]:
        """When the resolver walks down a project's releases, the next few it will try (else none)."""
        query = self.record.queries.get(candidate.name)
        if query is None:
            return []
        offered = self.candidates_in(*query)
        first = next(offered, None)
        if first is None or first.version == candidate.version:
            return []  # the first choice: no walk has started
        later = itertools.dropwhile(lambda c: c.version != candidate.version, offered)
        if next(later, None) is None:
            return []
        return list(itertools.islice(later, BACKTRACK_PREFETCH))


def _admits(requirements: Sequence[Req], version: Version, allow_pre: bool) -> bool:
    """Whether every requirement admits the version; pre-releases only when allowed (PEP 440)."""
    if version.is_prerelease and not allow_pre:
        return False
    return all(requirement.admits(version) for requirement in requirements)


def _declared_extras(metadata: CoreMetadata) -> frozenset[str]:
    """The extras a release offers: `Provides-Extra`, and (for old metadata without it) the `extra` markers."""
    found = set(metadata.provides_extra)
    for text in metadata.requires_dist:
        found.update(canonicalize_name(extra) for extra in _EXTRA_MARKER.findall(text))
    return frozenset(found)
