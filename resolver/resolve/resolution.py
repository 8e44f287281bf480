"""Resolve one target, and translate a failure into a message a CI maintainer can act on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.version import Version
from resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.structs import RequirementInformation

from ..errors import ResolutionFailed
from ..model.distributions import DistFile, Release
from ..model.targets import Target
from .provider import (
    PYTHON,
    UNREADABLE,
    Candidate,
    CudaProvider,
    Exclusion,
    Record,
    Req,
)

MAX_ROUNDS = 20000
MAX_REASON_GROUPS = 5


@dataclass(frozen=True)
class Pin:
    name: str
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
    pins: Mapping[str, Pin]
    exclusions: frozenset[Exclusion]


def resolve_target(
    provider: CudaProvider, target: Target, roots: Sequence[Req], reporter: BaseReporter | None = None
) -> TargetResolution:
    """Pins for one target; raises ResolutionFailed with an explanation when none exist."""
    settled = settle_on_preferred(provider, roots)
    if settled is not None:
        return _collect(target, *settled, provider.record)
    resolver = Resolver(provider, reporter or BaseReporter())
    try:
        result = resolver.resolve(list(roots), max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as error:
        raise ResolutionFailed(
            target.cuda_major, str(target), explain(error.causes, provider, roots, target.cuda_major)
        ) from None
    except ResolutionTooDeep:
        raise ResolutionFailed(
            target.cuda_major, str(target), f"gave up after {MAX_ROUNDS} rounds of backtracking; pin some requirements tighter"
        ) from None
    information = [(identifier, info) for identifier, criterion in result.criteria.items() for info in criterion.information]
    return _collect(target, result.mapping, information, provider.record)


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
    if not provider.preferred:
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
    if identifier == UNREADABLE or (identifier != PYTHON and requirement.name not in provider.preferred):
        return None
    matches = provider.find_matches(identifier, {identifier: iter([requirement])}, {identifier: iter(())})
    first = next(iter(matches() if callable(matches) else matches), None)
    if first is None or (identifier != PYTHON and first.version != provider.preferred[requirement.name]):
        return None
    return first


def _collect(target: Target, mapping: Mapping[str, Candidate], information: Information, record: Record) -> TargetResolution:
    parents: dict[str, set[str]] = defaultdict(set)
    for identifier, info in information:
        name = identifier.split("[", 1)[0]
        if info.parent is None:
            parents[name].add("-r " + info.requirement.origin.rsplit(":", 1)[0])
        elif info.parent.name != name:
            parents[name].add(info.parent.name)
    pins: dict[str, Pin] = {}
    exclusions: set[Exclusion] = set()
    for identifier, candidate in mapping.items():
        if identifier == PYTHON:
            continue
        exclusions.update(record.exclusions.get((candidate.name, candidate.version, candidate.extras), ()))
        if candidate.extras:
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
    return TargetResolution(target, pins, frozenset(exclusions))


# -- explaining a failure ----------------------------------------------------------------------------------


def explain(
    causes: Sequence[RequirementInformation[Req, Candidate]],
    provider: CudaProvider,
    roots: Sequence[Req],
    major: int,
) -> str:
    """Who wanted what, and why nothing fit: one line per requirer group, one per unsatisfiable project."""
    record = provider.record
    lines: list[str] = []
    by_name: dict[str, list[RequirementInformation[Req, Candidate]]] = defaultdict(list)
    for cause in causes:
        by_name[cause.requirement.name].append(cause)
    for name, infos in by_name.items():
        if name == PYTHON:
            lines += [f"  {info.parent} requires Python {info.requirement.specifier}" for info in infos]
            continue
        if name == UNREADABLE:
            for info in infos:
                reason = record.unavailable.get(info.parent.name, {}).get(info.parent.version, "unreadable")
                lines.append(f"  {info.parent}: its dependencies cannot be read ({reason.removeprefix('unreadable: ')})")
            continue
        for parent_name, group in _group_by_parent(infos).items():
            lines.append("  " + _describe_requirers(parent_name, group, provider, roots))
        lines.append("  " + _describe_availability(name, infos, provider, major))
    return "\n".join(dict.fromkeys(lines))


def _group_by_parent(infos: Iterable[RequirementInformation[Req, Candidate]]) -> dict[str | None, list]:
    groups: dict[str | None, list] = defaultdict(list)
    for info in infos:
        groups[info.parent.name if info.parent is not None else None].append(info)
    return groups


def _describe_requirers(parent_name: str | None, group: list, provider: CudaProvider, roots: Sequence[Req]) -> str:
    wanted = " and ".join(sorted({str(info.requirement) for info in group}))
    if parent_name is None:
        origins = sorted({info.requirement.origin for info in group})
        return f"{wanted} is required by {', '.join(origins)}"
    versions = sorted({info.parent.version for info in group})
    how = _how_required(parent_name, roots, provider.record)
    if len(versions) > 1 and set(provider.offered(parent_name)) <= set(versions):
        span = f"{versions[0]} … {versions[-1]}" if len(versions) > 2 else " and ".join(map(str, versions))
        return f"every {parent_name} that fits ({span}){how} requires {wanted}"
    return f"{parent_name} {', '.join(map(str, versions))}{how} requires {wanted}"


def _how_required(name: str, roots: Sequence[Req], record: Record) -> str:
    for root in roots:
        if root.name == name:
            return f", wanted as {root} by {root.origin},"
    for (parent, version, _), requirements in record.dependencies.items():
        if parent != name and any(r.name == name for r in requirements):
            return f" (required by {parent} {version})"
    return ""


def _describe_availability(name: str, infos: list, provider: CudaProvider, major: int) -> str:
    if name in provider.record.mismatched:
        return f"{name}: no release fits CUDA {major}: it is a CUDA {provider.record.mismatched[name]} package"
    offered = provider.offered(name)
    unavailable = provider.record.unavailable.get(name, {})
    if offered:
        span = ", ".join(str(v) for v in offered[:5]) + (" …" if len(offered) > 5 else "")
        return f"{name}: the releases that fit CUDA {major} ({span}) satisfy none of these together"
    if not unavailable:
        specifiers = sorted({str(i.requirement.specifier) or "any version" for i in infos})
        return f"{name}: no release matches {' and '.join(specifiers)}"
    groups: dict[str, list[Version]] = defaultdict(list)
    for version, reason in unavailable.items():
        groups[reason].append(version)
    if len(groups) == 1:
        return f"{name}: no release fits CUDA {major}: every matching release is {_as_phrase(next(iter(groups)))}"
    # The groups with the newest releases first: those are the ones a reader expected to be picked.
    ordered = sorted(groups.items(), key=lambda item: max(item[1]), reverse=True)
    parts = [f"{_span(versions)} {_as_phrase(reason)}" for reason, versions in ordered[:MAX_REASON_GROUPS]]
    rest = [version for _, versions in ordered[MAX_REASON_GROUPS:] for version in versions]
    if rest:
        parts.append(f"{_span(rest)} for other reasons")
    return f"{name}: no release fits CUDA {major}: " + "; ".join(parts)


def _span(versions: list[Version]) -> str:
    """`3 (0.18.9 … 0.18.11)`: how many releases, newest and oldest."""
    ordered = sorted(versions)
    if len(ordered) == 1:
        return f"1 ({ordered[0]})"
    return f"{len(ordered)} ({ordered[0]} … {ordered[-1]})"


def _as_phrase(reason: str) -> str:
    if reason.startswith(("a CUDA", "not a", "yanked", "uploaded")):
        return reason
    return f"unusable here: {reason}"
