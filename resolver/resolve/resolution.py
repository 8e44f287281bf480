"""Resolve one target: the preferred pins when they still fit, else resolvelib; a failure is explained."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.structs import RequirementInformation

from ..errors import ResolutionFailed
from ..files.constraints import ExcludedLine
from ..model.distributions import DistFile, Release
from ..model.targets import Target
from .candidates import PYTHON, UNREADABLE, Candidate, Req, name_of
from .explain import explain
from .policy import Record
from .provider import CudaProvider
from .torch_builds import TorchBuilds

MAX_ROUNDS = 20000
Reporter = BaseReporter[Req, Candidate, str]


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: Version
    release: Release
    # The file this target installs.
    file: DistFile
    # Project names that required it; "-r <file>" for a top-level requirement.
    parents: frozenset[str]
    builds_from_sdist: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetResolution:
    target: Target
    pins: Mapping[NormalizedName, Pin]
    exclusions: frozenset[ExcludedLine]
    # (project, extra): CUDA selector extras asked of a pinned release that does not declare them
    missing_extras: frozenset[tuple[NormalizedName, NormalizedName]] = frozenset()
    # name -> the builds per torch version the pinned wheel ships (families that keep them)
    torch_builds: Mapping[NormalizedName, TorchBuilds] = field(default_factory=dict)


def resolve_target(
    provider: CudaProvider, target: Target, roots: Sequence[Req], reporter: Reporter | None = None
) -> TargetResolution:
    """Pins for one target; raises ResolutionFailed with an explanation when none exist."""
    settled = settle_on_preferred(provider, roots)
    if settled is not None:
        return _collect(target, *settled, provider.policy.record)
    resolver = Resolver(provider, reporter or Reporter())
    try:
        result = resolver.resolve(list(roots), max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as error:
        raise ResolutionFailed(
            target.cuda_major, str(target), explain(list(error.causes), provider.policy, roots)
        ) from None
    except ResolutionTooDeep:
        raise ResolutionFailed(
            target.cuda_major, str(target), f"gave up after {MAX_ROUNDS} rounds of backtracking; pin some requirements tighter"
        ) from None
    information = [(identifier, info) for identifier, criterion in result.criteria.items() for info in criterion.information]
    return _collect(target, result.mapping, information, provider.policy.record)


Information = list[tuple[str, RequirementInformation[Req, Candidate]]]


def settle_on_preferred(provider: CudaProvider, roots: Sequence[Req]) -> tuple[dict[str, Candidate], Information] | None:
    """The preferred pins, when they satisfy every requirement of their closure; else None.

    The preferred pins are an existing file's (and, for a major's later platforms, the first
    platform's). When each requirement met on a walk of the closure is satisfied by the preferred
    release, and every such release is a candidate here, that is exactly the resolution resolvelib
    finds, since it tries the preferred candidate first and meets no conflict. One walk replaces a
    resolution: regenerating an unchanged input, or a second platform that agrees with the first,
    costs a fraction of the time.
    """
    if not provider.policy.preferred:
        return None
    mapping: dict[str, Candidate] = {}
    information: Information = []
    pending: list[tuple[Req, Candidate | None]] = [(root, None) for root in roots]
    while pending:
        requirement, parent = pending.pop()
        identifier = requirement.identifier
        information.append((identifier, RequirementInformation(requirement, parent)))
        candidate = mapping.get(identifier)
        if candidate is None:
            candidate = _preferred_candidate(provider, requirement)
            if candidate is None:
                return None
            mapping[identifier] = candidate
            pending.extend((dependency, candidate) for dependency in provider.get_dependencies(candidate))
        elif not provider.is_satisfied_by(requirement, candidate):
            return None
    return mapping, information


def _preferred_candidate(provider: CudaProvider, requirement: Req) -> Candidate | None:
    identifier = requirement.identifier
    preferred = provider.policy.preferred
    if identifier == UNREADABLE or (identifier != PYTHON and requirement.name not in preferred):
        return None
    matches = provider.find_matches(identifier, {identifier: iter([requirement])}, {identifier: iter(())})
    first = next(iter(matches() if callable(matches) else matches), None)
    if first is None or (identifier != PYTHON and first.version != preferred[requirement.name]):
        return None
    return first


def _collect(target: Target, mapping: Mapping[str, Candidate], information: Information, record: Record) -> TargetResolution:
    parents: dict[str, set[str]] = defaultdict(set)
    for identifier, info in information:
        name = name_of(identifier)
        if info.parent is None:
            parents[name].add("-r " + info.requirement.origin.rsplit(":", 1)[0])
        elif info.parent.name != name and not info.requirement.on_behalf:
            parents[name].add(info.parent.name)
    pins: dict[NormalizedName, Pin] = {}
    exclusions: set[ExcludedLine] = set()
    missing: set[tuple[NormalizedName, NormalizedName]] = set()
    for identifier, candidate in mapping.items():
        if identifier == PYTHON:
            continue
        exclusions.update(record.exclusions.get((candidate.name, candidate.version, candidate.extras), ()))
        if candidate.extras:
            missing.update((candidate.name, extra) for extra in candidate.extras if (candidate.name, extra) in record.missing_extras)
            continue
        choice = candidate.choice
        assert choice is not None
        pins[candidate.name] = Pin(
            candidate.name,
            candidate.version,
            choice.release,
            choice.file,
            frozenset(parents[candidate.name]),
            choice.sdist_platforms,
        )
    builds = {name: record.torch_builds[(name, pin.version)] for name, pin in pins.items() if (name, pin.version) in record.torch_builds}
    return TargetResolution(target, pins, frozenset(exclusions), frozenset(missing), builds)
