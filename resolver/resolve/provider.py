"""The resolvelib provider: a thin adapter between resolvelib's contract and the target's `Policy`.

It asks the metadata source for projects and dependencies (the only I/O, through the `MetadataSource`
protocol this package owns) and hands every decision to the policy. As pip's provider does, it narrows
the identifiers to decide next to the Python check or the causes of the last backtrack
(`narrow_requirement_selection`), so `get_preference` only orders what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from packaging.utils import NormalizedName
from resolvelib import AbstractProvider
from resolvelib.structs import RequirementInformation

from ..errors import MetadataUnavailable, ProjectNotFound
from ..errors.display import escape
from ..model.distributions import DistFile, Project
from .candidates import PYTHON, UNREADABLE, Candidate, Req, name_of, requirement_for
from .policy import Policy, merged
from .prefetch import TargetPrefetch
from .selection import Unavailable
from .source import MetadataSource
from .torch_builds import read_torch_builds

logger = logging.getLogger(__name__)
# How many older releases' file lists to fetch ahead for a family with builds per torch version.
BUILD_LOOKAHEAD = 8
# The releases of a builds-per-torch member whose builds a failure over torch names.
SURVEYED_RELEASES = 8
Information = RequirementInformation[Req, Candidate]


class CudaProvider(AbstractProvider[Req, Candidate, str]):
    def __init__(self, policy: Policy, source: MetadataSource, prefetch: TargetPrefetch | None = None) -> None:
        self.policy = policy
        self.source = source
        # Told of every release tried: fetches ahead what the resolver will most likely ask for next.
        self.prefetch = prefetch

    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return requirement_or_candidate.identifier

    def narrow_requirement_selection(
        self,
        identifiers: Iterable[str],
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Information]],
        backtrack_causes: Sequence[Information],
    ) -> Iterable[str]:
        """The Python check first; then, after a backtrack, the projects that caused it."""
        identifiers = list(identifiers)
        if PYTHON in identifiers:
            return [PYTHON]
        causes = {info.requirement.name for info in backtrack_causes}
        causes |= {info.parent.name for info in backtrack_causes if info.parent is not None}
        involved = [identifier for identifier in identifiers if name_of(identifier) in causes]
        return involved or identifiers

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Information]],
        backtrack_causes: Sequence[Information],
    ) -> tuple[bool, bool, str]:
        """(not pinned with ==, not required by the user, identifier): the lowest is decided first.

        Exact pins are cheap to settle, and the user's own requirements decide the most.
        """
        infos = list(information[identifier])
        return (
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
            return self.policy.python_candidates(requested)
        if not requested:
            # While backtracking, resolvelib may ask about a project whose requirements were all withdrawn
            # (only incompatibilities are left): any release but those will do.
            requested = (requirement_for(identifier),)
        name = requested[0].name
        major = self.policy.mismatched_major(name)
        if major is not None:
            # Named for another major: no release can fit, and its page need not be fetched.
            self.policy.record.mismatched[name] = major
            return []
        excluded = frozenset(c.version for c in incompatibilities[identifier])
        try:
            project = self._project(name)
        except ProjectNotFound as missing:
            # No candidates: the resolver backtracks past what requires it, as pip and uv do (a project the
            # user names is fatal: resolve_target raises this when nothing resolves).
            if missing.answered_empty and name not in self.policy.record.missing:
                logger.warning("%s; the releases that require it are passed over", missing.absence())
            self.policy.record.missing[name] = missing
            return []
        self.policy.remember_query(project, requested, excluded)
        # resolvelib iterates lazily and usually stops at the first candidate: select no more than needed.
        return lambda: self.policy.candidates_in(project, requested, excluded)

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        return self.policy.admits(requirement, candidate.version)

    def get_dependencies(self, candidate: Candidate) -> list[Req]:
        if candidate.choice is None:
            return []
        record = self.policy.record
        key = (candidate.name, candidate.version, candidate.extras)
        if key not in record.dependencies:
            walked_down = self.prefetch is not None and self.prefetch.trying(candidate)
            record.dependencies[key] = self._read_dependencies(candidate)
            if walked_down and self.prefetch is not None:
                self.prefetch.reached(record.dependencies[key])
        return list(record.dependencies[key])

    def _read_dependencies(self, candidate: Candidate) -> tuple[Req, ...]:
        assert candidate.choice is not None
        try:
            metadata = self.source.metadata(candidate.choice.release, candidate.choice.metadata_file)
        except MetadataUnavailable as error:
            # A property of this release (only a large sdist, invalid metadata): not a candidate, not a
            # failed run; but the result is not what the user would expect, so it is worth a warning.
            logger.warning("skipping %s %s: %s", candidate.name, candidate.version, escape(error.problem))
            return self.policy.unreadable(candidate, error.problem)
        for repair in metadata.repairs:
            self.policy.note(candidate, f"{candidate}: {escape(repair)} (a legacy spelling, read as uv reads it)")
        extensions = None
        wheel = self._builds_wheel(candidate) if self.policy.torch_layout(candidate) is not None else None
        if wheel is not None:
            extensions = self.source.extension_modules(wheel)
            if wheel is candidate.choice.file and self.policy.preferred.get(candidate.name) != candidate.version:
                self._prefetch_older_builds(candidate)  # (a kept pin: no walk is coming)
        return merged(self.policy.dependencies_from(candidate, metadata, extensions))

    def _builds_wheel(self, candidate: Candidate) -> DistFile | None:
        """The wheel whose file list shows the candidate's builds per torch version: its own, or, for a
        meta package, its member's for this major."""
        assert candidate.choice is not None
        member = self.policy.builds_member(candidate)
        if member is not None:
            found = next(self.policy.candidates_in(self._project(member.name), (member,)), None)
            choice = found.choice if found is not None else None
        else:
            choice = candidate.choice
        return choice.file if choice is not None and choice.file.is_wheel else None

    def _prefetch_older_builds(self, candidate: Candidate) -> None:
        """The file lists of the next older releases, fetched ahead: when a torch mismatch makes the
        resolver walk down (nixl-cu12 1.5.1 to 1.3.0 for CUDA 12's torch), each is asked in turn."""
        older = [r for r in self._project(candidate.name).releases if r.version < candidate.version][:BUILD_LOOKAHEAD]
        for release in older:
            choice = self.policy.selector.select(release)
            if not isinstance(choice, Unavailable) and choice.file.is_wheel:
                self.source.prefetch_extension_modules(choice.file)
                self.source.prefetch_metadata(release, choice.metadata_file)

    def survey_torch_builds(self) -> None:
        """After a failure over torch: the builds per torch version of the newest releases of every member
        whose builds took part, recorded for the explanation (those the resolver never reached included)."""
        record = self.policy.record
        for name in sorted({name for name, _ in record.torch_builds}):
            layout = self.policy.families.torch_builds(name)
            if layout is None:
                continue
            wheels = []
            for release in self._project(name).releases[:SURVEYED_RELEASES]:
                choice = self.policy.selector.select(release)
                if (name, release.version) not in record.torch_builds and not isinstance(choice, Unavailable) and choice.file.is_wheel:
                    self.source.prefetch_extension_modules(choice.file)
                    wheels.append((release.version, choice.file))
            for version, wheel in wheels:
                builds = read_torch_builds(*layout, self.source.extension_modules(wheel) or ())
                if builds is not None:
                    record.torch_builds[(name, version)] = builds

    def _project(self, name: NormalizedName) -> Project:
        try:
            return self.source.project(name)
        except ProjectNotFound:
            missing = self.policy.missing_member(name)
            if missing is not None:
                raise missing from None
            raise
