"""The rules of one target (a CUDA major in one environment), as pure functions: no resolvelib, no I/O.

- Candidates: the releases of a project a set of requirements admits, most preferred first (a preferred
  pin, then newest); a release of another CUDA major is not a candidate (the Selector says why), so the
  resolver backtracks to releases whose whole tree fits the major. Pre-releases only when a specifier
  names one, `--pre` is given, or no final release can be installed (PEP 440, as pip and uv).
- Dependencies: a release's requirements whose markers hold here; a meta package's edges to members of
  another major are dropped (recorded as exclusions) and its member for the major is required at its
  own version (through its `[cuM]` extra when it declares one). A release that hard-requires another
  major's member and declares an extra selecting this major (`nvidia-cutlass-dsl`: `-libs-cu12`, and
  `[cu13]` adding `-libs-cu13`) is a meta package without configuration: the same rule applies. An
  extra that selects another major on a release's requirement is spelled for this one, as on a
  top-level requirement (`nvidia-cudnn-frontend` asks `nvidia-cutlass-dsl[cu13]`: `[cu12]` on CUDA 12,
  which is the plain package where no such extra exists); the members the asked extra would add are
  recorded as exclusions, with the release that asked.

The resolvelib provider (provider.py), the prefetch crawl (prefetch.py), `check` and `inspect`
ask these same rules. Everything learnt on the way goes into the policy's `Record`, for the result and
for error messages; `fork` gives another thread the same rules with a record of its own.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import NoMemberForMajor, ProjectNotFound
from ..files.constraints import ExcludedLine
from ..model.distributions import CoreMetadata, Project, Release, parse_requirement
from ..model.families import Family, FamilyTable, extra_major, extras_for_major
from ..model.targets import Environment, environment_of
from .candidates import PYTHON, UNREADABLE, Asker, Candidate, Req
from .selection import Choice, Selector, Unavailable, requires_python_ok
from .torch_builds import TorchBuilds, read_torch_builds

logger = logging.getLogger(__name__)
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
CandidateKey = tuple[NormalizedName, Version, frozenset[NormalizedName]]


@dataclass
class Record:
    """What the rules met during one resolution."""

    # name -> version -> why it was not a candidate
    unavailable: dict[NormalizedName, dict[Version, Unavailable]] = field(default_factory=lambda: defaultdict(dict))
    # (name, version, extras) -> dropped edges of that meta release (or of its extras)
    exclusions: dict[CandidateKey, tuple[ExcludedLine, ...]] = field(default_factory=dict)
    # name -> the other CUDA major of a project that was required but is named for that major
    mismatched: dict[NormalizedName, int] = field(default_factory=dict)
    # name -> why a required project has no releases at all: no index has it
    missing: dict[NormalizedName, ProjectNotFound] = field(default_factory=dict)
    # name -> the last query for it: (project, requirements, excluded versions)
    queries: dict[NormalizedName, tuple[Project, tuple[Req, ...], frozenset[Version]]] = field(default_factory=dict)
    # (name, version, extras) -> requirements that candidate declared for this target
    dependencies: dict[CandidateKey, tuple[Req, ...]] = field(default_factory=dict)
    # (name, extra): a CUDA selector extra asked of a release that does not declare it (a swapped
    # `pkg[cu12]` whose release has no such extra: the plain package is meant)
    missing_extras: set[tuple[NormalizedName, NormalizedName]] = field(default_factory=set)
    # (name, version) -> the builds per torch version its wheel for this target ships
    torch_builds: dict[tuple[NormalizedName, Version], TorchBuilds] = field(default_factory=dict)
    # (name, version, extras) -> what is worth a warning about that candidate, if it is pinned (a release only
    # tried while backtracking is not worth one)
    notes: dict[CandidateKey, list[str]] = field(default_factory=dict)
    # (name, version, extra) -> another major's members that extra of the release adds (`[cu13]` on CUDA 12)
    selector_members: dict[tuple[NormalizedName, Version, NormalizedName], tuple[NormalizedName, ...]] = field(default_factory=dict)


class Policy:
    def __init__(
        self,
        selector: Selector,
        constraints: Mapping[NormalizedName, Sequence[Req]] | None = None,
        preferred: Mapping[NormalizedName, Version] | None = None,
        pre: bool = False,
    ) -> None:
        self.selector = selector
        self.families: FamilyTable = selector.families
        self.major = selector.cuda_major
        self.environment = selector.environment
        self.constraints = constraints or {}
        self.preferred = preferred or {}
        self.pre = pre
        self.record = Record()
        self._admitted: dict[int, dict[Version, bool]] = {}  # this target's memo of `admits`, by `Req.serial`
        # allow-torch-build-mismatch took effect: the builds of the families it names no longer hold torch.
        self.torch_builds_relaxed = False

    def fork(self) -> Policy:
        """The same rules with a record of their own (for another thread, such as the crawl)."""
        return Policy(self.selector.copy(), self.constraints, self.preferred, self.pre)

    # -- which releases ---------------------------------------------------------------------------------

    def mismatched_major(self, name: NormalizedName) -> int | None:
        """The other CUDA major a project belongs to by its name alone (any version), if any."""
        major = self.families.major_of(name)
        return major if major is not None and major != self.major else None

    def python_candidates(self, requested: Iterable[Req]) -> list[Candidate]:
        """The target's Python as the one candidate of PYTHON, if every `requires-python` admits it."""
        python = Version(f"{self.environment.python}.0")
        ok = all(r.specifier.contains(python, prereleases=True) for r in requested)
        return [Candidate(PYTHON, python, frozenset(), None)] if ok else []

    def candidates_in(self, project: Project, requested: Sequence[Req], excluded: frozenset[Version] = frozenset()) -> Iterator[Candidate]:
        """The candidates of a project for these requirements, most preferred first, lazily.

        PEP 440: pre-releases only when allowed, or when no final release satisfies the requirements; as
        pip and uv, a final release counts only if it can be installed here (a wheel for every platform
        the requirements need it on), and one the resolver has ruled out still counts. The pre-releases
        are held back until the releases show that none does, in one pass over them.
        """
        name, extras = requested[0].name, requested[0].extras
        serves = _needed_in(requested)
        applied = (*requested, *self.constraints.get(name, ()))
        allow_yanked = any(r.pinned_exactly for r in applied)
        allow_pre = self.pre or any(spec.prereleases for r in applied for spec in r.specifier)
        checks = [(requirement, self._versions_admitted(requirement)) for requirement in applied]
        releases: Iterable[Release] = project.releases
        preferred = project.release(self.preferred[name]) if name in self.preferred else None
        if preferred is not None:
            releases = itertools.chain((preferred,), (r for r in project.releases if r is not preferred))
        held_back: list[Release] = []
        final_found = False
        for release in releases:
            if not all(_admitted(memo, requirement, release.version) for requirement, memo in checks):
                continue
            if release.version.is_prerelease and not allow_pre:
                held_back.append(release)
                continue
            choice = self._choice(release, allow_yanked, excluded, serves)
            final_found = final_found or choice is not None
            if choice is not None and release.version not in excluded:
                yield Candidate(name, release.version, extras, choice, serves)
        if not final_found:
            for release in held_back:
                choice = self._choice(release, allow_yanked, excluded, serves)
                if choice is not None and release.version not in excluded:
                    yield Candidate(name, release.version, extras, choice, serves)

    def _choice(
        self, release: Release, allow_yanked: bool, excluded: frozenset[Version], serves: frozenset[Environment] | None = None
    ) -> Choice | None:
        """What the target installs of a release; None if it cannot, recorded (unless the resolver ruled
        the release out itself). A release whose dependencies turned out unreadable is no candidate again:
        else the resolver, backtracking elsewhere, would pin it again and again (as pip's resolver skips a
        candidate that failed to build)."""
        known = self.record.unavailable.get(release.name, {}).get(release.version)
        if known is not None and known.kind == "unreadable":
            return None
        choice = self.selector.select(release, allow_yanked, serves)
        if not isinstance(choice, Unavailable):
            return choice
        if release.version not in excluded:
            if release.version not in self.record.unavailable[release.name]:
                target = f"CUDA {self.major} {self.environment}"
                logger.debug("%s: passed over %s %s: %s", target, release.name, release.version, choice.detail)
            self.record.unavailable[release.name][release.version] = choice
        return None

    def remember_query(self, project: Project, requested: tuple[Req, ...], excluded: frozenset[Version]) -> None:
        self.record.queries[project.name] = (project, requested, excluded)

    def offered(self, name: NormalizedName) -> list[Version]:
        """Every version the last query for a project offered, in the resolver's order."""
        query = self.record.queries.get(name)
        return [c.version for c in self.candidates_in(*query)] if query else []

    def missing_member(self, name: NormalizedName) -> NoMemberForMajor | None:
        """For a project the index does not have: the error when it is this major's member of a family."""
        variant = self.families.classify(name)
        if variant is not None and variant.role == "member" and variant.major == self.major:
            return NoMemberForMajor(variant.family.meta or variant.family.name, self.major, name)
        return None

    # -- what a release requires ------------------------------------------------------------------------

    def torch_layout(self, candidate: Candidate) -> tuple[str, int] | None:
        """Where the wheel with the candidate's builds per torch version keeps them, if its family says (and
        the major): a member's own wheel; for the family's meta package, its member's for this major."""
        if candidate.extras:
            return None
        meta = self.families.meta_family(candidate.name)
        if meta is not None:
            return (meta.torch_builds, self.major) if meta.torch_builds else None
        return self.families.torch_builds(candidate.name)

    def builds_member(self, candidate: Candidate) -> Req | None:
        """For a meta release whose family keeps builds per torch version: its member for this major at
        its version (`nixl-cu12==1.5.1`), whose wheel has them; None for any other release."""
        meta = self.families.meta_family(candidate.name)
        member = meta.member_name(self.major) if meta is not None and meta.torch_builds and not candidate.extras else None
        return Req(canonicalize_name(member), SpecifierSet(f"=={candidate.version}")) if member else None

    def dependencies_from(self, candidate: Candidate, metadata: CoreMetadata, extensions: Sequence[str] | None = None) -> Iterator[Req]:
        """What a candidate requires here, meta rules applied; with the extension modules of the wheel
        `torch_layout` names (`extensions`), also the torch its builds per torch version serve.

        A meta package requires that torch too, on its member's behalf: it stands for its member on this
        target, and a conflict over torch then reaches it. Else the resolver, backjumping from torch past
        the meta package (which requires its member only), blames whatever else requires torch
        (lmcache), and walks all its releases before the meta package's.
        """
        for requirement in self._dependencies(candidate, metadata):
            # What a release requires on its own behalf (its base release, its member) is needed wherever it is.
            unplaced = requirement.environments is None and candidate.serves is not None
            yield replace(requirement, environments=candidate.serves) if unplaced else requirement
        layout = self.torch_layout(candidate)
        builds = read_torch_builds(*layout, extensions) if layout is not None and extensions is not None else None
        if builds is None:
            return
        member = self.builds_member(candidate)
        self.record.torch_builds[(candidate.name if member is None else member.name, candidate.version)] = builds
        if member is None:
            if builds.untagged:  # the file's header records it; compile warns when the file changes
                logger.debug("%s: %s; whether it loads with the torch pinned here is not checked", candidate, builds.describe())
            for name in builds.unrecognised:
                logger.warning("%s: %s looks like a build for one torch version, but not as %s lays them out; it is not checked",
                               candidate, name, layout[0] if layout else "its family")
        if builds.specifier is not None and not (self.torch_builds_relaxed and self.mismatch_allowed(candidate.name)):
            asker = Asker.of(candidate if member is None else (member.name, candidate.version), builds.describe())
            torch = canonicalize_name("torch")
            yield Req(torch, builds.specifier, asked_by=asker, on_behalf=member is not None, environments=candidate.serves)

    def may_relax_torch_builds(self) -> bool:
        """Whether a failed resolution may be tried again with torch no longer held to the builds of a family
        allow-torch-build-mismatch names (only once, and only where such builds were met)."""
        return not self.torch_builds_relaxed and any(self.mismatch_allowed(name) for name, _ in self.record.torch_builds)

    def relax_torch_builds(self) -> None:
        """From now on, the builds of the families allowed do not hold torch; what was learnt starts over."""
        self.torch_builds_relaxed = True
        self.record = Record()

    def mismatch_allowed(self, name: NormalizedName) -> bool:
        """Whether a project's builds per torch version may miss the pinned torch (`allow-torch-build-mismatch`
        names it, or its family, or the family's meta package): the mismatch is recorded, not enforced."""
        allowed = self.selector.options.allow_torch_build_mismatch
        if not allowed or name in allowed:
            return bool(allowed)
        variant = self.families.classify(name)
        family = variant.family if variant is not None else self.families.meta_family(name)
        return family is not None and bool({canonicalize_name(n) for n in (family.name, family.meta) if n} & allowed)

    def _dependencies(self, candidate: Candidate, metadata: CoreMetadata) -> Iterator[Req]:
        asker = Asker.of(candidate)
        if candidate.extras:
            # The extras candidate stands for the base release plus what the extras add.
            yield Req(candidate.name, SpecifierSet(f"=={candidate.version}"), asked_by=asker)
            for extra in sorted(candidate.extras - declared_extras(metadata)):
                if extra_major(extra) is None:
                    self.note(candidate, f"{candidate} has no extra named {extra!r}; it adds nothing")
                else:
                    self.record.missing_extras.add((candidate.name, extra))
        if metadata.requires_python and not requires_python_ok(metadata.requires_python, self.environment):
            yield Req(PYTHON, SpecifierSet(metadata.requires_python), asked_by=asker)
        declared = list(self._declared(candidate, metadata))
        self._other_selector_members(candidate, metadata)
        excluded = self.selector.options.exclude_dependencies
        if excluded and any(r.name in excluded for r in declared):
            self._exclude(candidate, [r for r in declared if r.name in excluded], "; exclude-dependencies")
            declared = [r for r in declared if r.name not in excluded]
        meta = self.families.meta_family(candidate.name)
        if meta is None:
            yield from self._implicit_meta(candidate, metadata, declared)
            return
        kept: list[Req] = []
        dropped: list[Req] = []
        for requirement in declared:
            member_major = meta.member_major(requirement.name)
            (dropped if member_major is not None and member_major != self.major else kept).append(requirement)
        self._exclude(candidate, dropped)
        yield from kept
        if not candidate.extras:
            yield self._member_requirement(candidate, metadata, meta)

    def _implicit_meta(self, candidate: Candidate, metadata: CoreMetadata, declared: list[Req]) -> Iterator[Req]:
        """A release's requirements; for one that hard-requires another major's member and declares an
        extra selecting this major, those edges dropped (recorded) and that extra required instead."""
        selector = None if candidate.extras else self._selector_extra(metadata)
        dropped = [r for r in declared if self.mismatched_major(r.name) is not None] if selector else []
        if not dropped:
            yield from declared
            return
        self._exclude(candidate, dropped)
        yield from (r for r in declared if r not in dropped)
        assert selector is not None
        yield Req(candidate.name, SpecifierSet(f"=={candidate.version}"), frozenset({selector}), asked_by=Asker.of(candidate))

    def note(self, candidate: Candidate, message: str) -> None:
        """A warning about a candidate, given if it is pinned (`-v` shows every one as it is met)."""
        logger.debug("%s", message)
        self.record.notes.setdefault((candidate.name, candidate.version, candidate.extras), []).append(message)

    def _other_selector_members(self, candidate: Candidate, metadata: CoreMetadata) -> None:
        """Record, for each extra of the release that selects another major, the members it would add: the
        edges dropped when another release asks for that extra (see `asked_exclusions`)."""
        for extra in declared_extras(metadata):
            if extra_major(extra) in (None, self.major):
                continue
            key = (candidate.name, candidate.version, extra)
            if key not in self.record.selector_members:
                added = ((text, parse_requirement(text)) for text in metadata.requires_dist)
                self.record.selector_members[key] = tuple(sorted({
                    canonicalize_name(r.name) for text, r in added
                    if r.marker is not None and _applies(self.selector.memo.applies[self.environment], self.environment, text, r.marker,
                                                         frozenset({extra}))
                    and self.mismatched_major(canonicalize_name(r.name)) is not None
                }))

    def asked_exclusions(self, requirement: Req, parent: Candidate, candidate: Candidate) -> Iterator[ExcludedLine]:
        """The members another major's selector extra would have added, where `parent` asked for it on
        `requirement` (spelled for this major) and `candidate` was pinned for it."""
        for extra in sorted(requirement.asked_extras - requirement.extras):
            for name in self.record.selector_members.get((candidate.name, candidate.version, extra), ()):
                yield ExcludedLine(name, f"{candidate.name}[{extra}]=={candidate.version}, which {parent} asks for")

    def _exclude(self, candidate: Candidate, dropped: Iterable[Req], why: str = "") -> None:
        """Record edges of a candidate that are dropped (installers drop them too)."""
        key = (candidate.name, candidate.version, candidate.extras)
        lines = (ExcludedLine(r.name, f"{candidate}{why}") for r in dropped)
        self.record.exclusions[key] = tuple(dict.fromkeys((*self.record.exclusions.get(key, ()), *lines)))

    def _selector_extra(self, metadata: CoreMetadata) -> NormalizedName | None:
        """The extra of a release that selects this major (`cu13`), if it declares one."""
        return next((e for e in sorted(declared_extras(metadata)) if extra_major(e) == self.major), None)

    def unreadable(self, candidate: Candidate, problem: str) -> tuple[Req, ...]:
        """A release whose dependencies cannot be read: unusable, and recorded as such."""
        reason = Unavailable("unreadable", f"its dependencies cannot be read ({problem})")
        self.record.unavailable[candidate.name][candidate.version] = reason
        return (Req(UNREADABLE, asked_by=Asker.of(candidate)),)

    def _member_requirement(self, candidate: Candidate, metadata: CoreMetadata, meta: Family) -> Req:
        pinned = SpecifierSet(f"=={candidate.version}")
        extra = canonicalize_name(meta.meta_extra.format(major=self.major))
        if extra in declared_extras(metadata):
            return Req(candidate.name, pinned, frozenset({extra}), asked_by=Asker.of(candidate))
        member = meta.member_name(self.major)
        if member is None:
            raise NoMemberForMajor(candidate.name, self.major, f"{meta.name} (no member pattern)")
        return Req(canonicalize_name(member), pinned, asked_by=Asker.of(candidate))

    def _declared(self, candidate: Candidate, metadata: CoreMetadata) -> Iterator[Req]:
        """The release's requirements whose markers hold here (for its extras only, on an extras candidate),
        each with the environments the candidate serves where its markers hold too."""
        serves = candidate.serves if candidate.serves is not None else self.selector.environments
        here = self.selector.memo.applies[self.environment]
        memos = [(environment, self.selector.memo.applies[environment]) for environment in serves]
        for text in metadata.requires_dist:
            requirement = parse_requirement(text)  # valid: metadata is checked as it is read
            if not _applies(here, self.environment, text, requirement.marker, candidate.extras):
                continue
            asked = frozenset(canonicalize_name(e) for e in requirement.extras)
            extras = frozenset(canonicalize_name(e) for e in extras_for_major(asked, self.major))
            needed_in = frozenset(e for e, memo in memos if _applies(memo, e, text, requirement.marker, candidate.extras))
            yield Req(canonicalize_name(requirement.name), requirement.specifier, extras, Asker.of(candidate),
                      asked_extras=asked if extras != asked else frozenset(), environments=needed_in)

    def admits(self, requirement: Req, version: Version) -> bool:
        """Whether a requirement's specifier admits a version (pre-releases are decided apart), remembered: a
        resolution asks it hundreds of thousands of times."""
        try:  # (subscripts, not calls: resolvelib asks this more than anything else, and mostly again)
            return self._admitted[requirement.serial][version]
        except KeyError:
            return _admitted(self._versions_admitted(requirement), requirement, version)

    def _versions_admitted(self, requirement: Req) -> dict[Version, bool]:
        """The target's memo of which versions a requirement admits."""
        memo = self._admitted.get(requirement.serial)
        if memo is None:
            memo = self._admitted[requirement.serial] = {}
        return memo


def _admitted(memo: dict[Version, bool], requirement: Req, version: Version) -> bool:
    try:
        return memo[version]
    except KeyError:
        admitted = memo[version] = requirement.admits(version)
        return admitted


def _applies(memo: dict[tuple[str, frozenset[str]], bool], environment: Environment, text: str, marker: Marker | None,
             extras: frozenset[NormalizedName]) -> bool:
    """Whether a requirement line holds in an environment for a candidate's extras (`memo`: the target's, for
    that environment)."""
    key = (text, extras)
    if key not in memo:  # (not try/except: a new target's lookups miss, and raising costs)
        memo[key] = not extras if marker is None else _holds(text, tuple(sorted(extras)), *environment.key)
    return memo[key]


@functools.lru_cache(maxsize=1 << 16)
def _holds(text: str, extras: tuple[str, ...], python: str, platform: str) -> bool:
    """Whether a requirement line with a marker holds in an environment for these extras, for every target
    (behind each target's own memo; keyed by text, which the garbage collector need not look at)."""
    environment = environment_of(python, platform)
    marker = parse_requirement(text).marker
    base = environment.evaluate(marker)
    return base if not extras else not base and any(environment.evaluate(marker, extra) for extra in extras)


def _needed_in(requested: Iterable[Req]) -> frozenset[Environment] | None:
    """Where a set of requirements needs their project: every environment one of them is needed in."""
    found: set[Environment] = set()
    for requirement in requested:
        if requirement.environments is None:
            return None
        found |= requirement.environments
    return frozenset(found)


def merged(requirements: Iterable[Req]) -> tuple[Req, ...]:
    """One requirement per project (and extras) a release names, its specifiers joined: the same candidates.

    resolvelib re-checks every requirement on a project as it adds each: a release naming one project in
    16,000 lines (a hostile index) made a resolution quadratic in their number.
    """
    groups: dict[tuple[str, Asker, bool, frozenset[NormalizedName]], list[Req]] = {}
    for requirement in requirements:
        key = (requirement.identifier, requirement.asked_by, requirement.on_behalf, requirement.asked_extras)
        groups.setdefault(key, []).append(requirement)
    return tuple(group[0] if len(group) == 1 else _joined(group) for group in groups.values())


def _joined(group: Sequence[Req]) -> Req:
    first = group[0]
    specifier = SpecifierSet(spec for requirement in group for spec in requirement.specifier)
    return Req(first.name, specifier, first.extras, first.asked_by, first.on_behalf, first.asked_extras, _needed_in(group))


def declared_extras(metadata: CoreMetadata) -> frozenset[NormalizedName]:
    """The extras a release offers: `Provides-Extra`, and (for old metadata without it) the `extra` markers."""
    found = {canonicalize_name(extra) for extra in metadata.provides_extra}
    for text in metadata.requires_dist:
        found.update(canonicalize_name(extra) for extra in _EXTRA_MARKER.findall(text))
    return frozenset(found)
