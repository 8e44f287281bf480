"""Resolve one target: a walk of preferred pins when nothing conflicts, else resolvelib; a failure is explained."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib import ResolutionImpossible, ResolutionTooDeep, Resolver
from resolvelib.structs import RequirementInformation

from ..errors import OfflineCacheMiss, ResolutionFailed
from ..files.constraints import WILL_NOT_LOAD, ExcludedLine
from ..model.distributions import DistFile, Release
from ..model.targets import Target
from .candidates import PYTHON, UNREADABLE, Candidate, Req, name_of
from .explain import explain
from .policy import Policy
from .provider import CudaProvider
from .torch_builds import TorchBuilds, builds_module
from .watch import STUCK_WINDOW, Reporter, Stuck, TooBroad, Watch

logger = logging.getLogger(__name__)
MAX_ROUNDS = 20000
# resolvelib keeps a copy of its state for every project it pins, each copy naming every project known by
# then: its memory grows with the square of a resolution's breadth (3,000 projects took 725 MB). A wider
# resolution is settled by a walk, when nothing in it conflicts, or refused. Real inputs need a few hundred.
MAX_BREADTH = 1000


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
    # name -> why its module will not load with the pinned torch (allowed by allow-torch-build-mismatch)
    torch_mismatches: Mapping[NormalizedName, str] = field(default_factory=dict)


def resolve_target(
    provider: CudaProvider, target: Target, roots: Sequence[Req], reporter: Reporter | None = None
) -> TargetResolution:
    """Pins for one target; raises ResolutionFailed with an explanation when none exist."""
    settled = settle_by_walk(provider, roots)
    if settled is not None:
        return _collect(target, *settled, provider.policy)
    watch = Watch(reporter or Reporter(), MAX_BREADTH)
    resolver = Resolver(provider, watch)
    try:
        result = resolver.resolve(list(roots), max_rounds=MAX_ROUNDS)
    except TooBroad:
        walked = walk_through(provider, roots)
        if walked is None:
            raise ResolutionFailed(
                target.cuda_major, str(target),
                f"it reaches more than {MAX_BREADTH:,} projects (and extras), and they do not settle without backtracking; "
                "a resolution that wide is refused (the resolver's memory grows with the square of its breadth)",
            ) from None
        return _collect(target, *walked, provider.policy)
    except ResolutionImpossible as error:
        missing = next((provider.policy.record.missing[r.name] for r in roots if r.name in provider.policy.record.missing), None)
        if missing is not None:
            raise missing from None  # a project the user names and no index has: a usage error
        if any(cause.requirement.name == "torch" for cause in error.causes):
            provider.survey_torch_builds()  # the builds of the releases not tried, for the explanation
        # The projects the conflict involves, for whoever handles the failure (a hint names the PyTorch index).
        involved = frozenset({c.requirement.name for c in error.causes} | {c.parent.name for c in error.causes if c.parent is not None})
        if provider.policy.may_relax_torch_builds():
            # allow-torch-build-mismatch: a builds-per-torch family stood in the way; resolve once more without
            # holding torch to those builds (the mismatch is recorded). If that fails too, its failure is
            # the one to explain: the builds were allowed to miss, so something else stands in the way.
            provider.policy.relax_torch_builds()
            return resolve_target(provider, target, roots, reporter)
        raise ResolutionFailed(
            target.cuda_major, str(target), explain(list(error.causes), provider.policy, roots), involved
        ) from None
    except ResolutionTooDeep:
        too_deep = f"gave up after {MAX_ROUNDS} rounds of backtracking"
        raise ResolutionFailed(target.cuda_major, str(target), _gave_up(too_deep, watch)) from None
    except Stuck:
        stuck = f"stopped backtracking: its last {STUCK_WINDOW} conflicts were all over the same projects"
        raise ResolutionFailed(target.cuda_major, str(target), _gave_up(stuck, watch)) from None
    information = [(identifier, info) for identifier, criterion in result.criteria.items() for info in criterion.information]
    return _collect(target, result.mapping, information, provider.policy)


Information = list[tuple[str, RequirementInformation[Req, Candidate]]]


def _gave_up(why: str, watch: Watch) -> str:
    """A resolution that backtracked without end, named by what it backtracked over."""
    lines = [f"  {why}; what it kept backtracking over:"]
    lines += [f"    {line}" for line in watch.backtracking.summary()]
    lines.append("  a pin or a tighter bound on these (in the requirements, or a -c constraints file) lets it settle")
    return "\n".join(lines)


def settle_by_walk(provider: CudaProvider, roots: Sequence[Req]) -> tuple[dict[str, Candidate], Information] | None:
    """With preferred pins, one walk of the closure in place of a resolution, when nothing in it conflicts.

    The preferred pins are an existing file's and, for a major's later platforms, the first platform's.
    The walk takes, for each project it meets, the first candidate for the requirements it knows on it
    (the one it meets it by, and the input's own): the one resolvelib tries first, the preferred pin when
    they admit it, else the newest release they admit. Requirements pinned exactly are met first, as the
    provider has resolvelib decide them first. None as soon as a requirement met later is not satisfied
    by what was taken, or a project has no candidate; then resolvelib decides.

    A walk that gets through is a resolution: every requirement in the closure is satisfied. It is
    taken when each pin is also the first candidate for all the requirements on it in the closure:
    resolvelib, trying the same first candidates, then meets no conflict to backtrack from and settles
    on the same pins. So one walk replaces a resolution when regenerating an unchanged input, and on a
    platform that agrees with the first but for projects of its own (sglang's `decord2` on aarch64).
    Without preferred pins the first platform's tree conflicts somewhere on every real input measured
    (a `cuda-toolkit` pin, a `grpcio` release pair), so it is not walked.
    """
    if not provider.policy.preferred:
        return None
    return walk_through(provider, roots)


def walk_through(provider: CudaProvider, roots: Sequence[Req]) -> tuple[dict[str, Candidate], Information] | None:
    """The walk of the closure's first candidates, when it is a resolution (see `settle_by_walk`); else None."""
    try:
        walked = _walk(provider, roots)
    except OfflineCacheMiss:
        return None  # the walk went where resolvelib might not: that data may never have been fetched
    if walked is None or not _first_for_all(provider, *walked):
        return None
    return walked


def _walk(provider: CudaProvider, roots: Sequence[Req]) -> tuple[dict[str, Candidate], Information] | None:
    """The first candidates of the closure and the requirements met; None at the first that do not fit."""
    top_level: dict[str, list[Req]] = defaultdict(list)
    for root in roots:
        top_level[root.identifier].append(root)
    mapping: dict[str, Candidate] = {}
    information: Information = []
    pending: list[tuple[Req, Candidate | None]] = [(root, None) for root in roots]
    exact: list[tuple[Req, Candidate | None]] = []
    while pending or exact:
        requirement, parent = exact.pop() if exact else pending.pop()
        identifier = requirement.identifier
        information.append((identifier, RequirementInformation(requirement, parent)))
        candidate = mapping.get(identifier)
        if candidate is None:
            candidate = _first_candidate(provider, identifier, (requirement, *top_level.get(identifier, ())))
            if candidate is None:
                return None
            mapping[identifier] = candidate
            for dependency in provider.get_dependencies(candidate):
                (exact if dependency.pinned_exactly else pending).append((dependency, candidate))
        elif not provider.is_satisfied_by(requirement, candidate):
            return None
    return mapping, information


def _first_for_all(provider: CudaProvider, mapping: Mapping[str, Candidate], information: Information) -> bool:
    """Whether each pin is the first candidate for all the requirements on it that the walk met."""
    requirements: dict[str, list[Req]] = defaultdict(list)
    for identifier, info in information:
        requirements[identifier].append(info.requirement)
    for identifier, candidate in mapping.items():
        first = _first_candidate(provider, identifier, requirements[identifier])
        if first is None or first.version != candidate.version:
            return False
    return True


def _first_candidate(provider: CudaProvider, identifier: str, requirements: Sequence[Req]) -> Candidate | None:
    if identifier == UNREADABLE:
        return None
    matches = provider.find_matches(identifier, {identifier: iter(requirements)}, {identifier: iter(())})
    return next(iter(matches() if callable(matches) else matches), None)


def _collect(target: Target, mapping: Mapping[str, Candidate], information: Information, policy: Policy) -> TargetResolution:
    record = policy.record
    parents: dict[str, set[str]] = defaultdict(set)
    top_level: dict[str, set[str]] = defaultdict(set)  # name -> where the input requires it (file:line)
    asked: set[ExcludedLine] = set()
    for identifier, info in information:
        name = name_of(identifier)
        if info.parent is None:
            top_level[name].add(str(info.requirement.asked_by))
        if info.parent is not None and info.requirement.asked_extras and identifier in mapping:
            asked.update(policy.asked_exclusions(info.requirement, info.parent, mapping[identifier]))
        if info.parent is None:
            parents[name].add("-r " + info.requirement.asked_by.file)
        elif info.parent.name != name and not info.requirement.on_behalf:
            parents[name].add(info.parent.name)
    pins: dict[NormalizedName, Pin] = {}
    exclusions: set[ExcludedLine] = set()
    missing: set[tuple[NormalizedName, NormalizedName]] = set()
    for identifier, candidate in mapping.items():
        if identifier == PYTHON:
            continue
        exclusions.update(record.exclusions.get((candidate.name, candidate.version, candidate.extras), ()))
        for note in record.notes.get((candidate.name, candidate.version, candidate.extras), ()):
            logger.warning("%s", note)
        if candidate.extras:
            missing.update((candidate.name, extra) for extra in candidate.extras if (candidate.name, extra) in record.missing_extras)
            continue
        choice = candidate.choice
        assert choice is not None
        if choice.file.yanked:
            reason = f" (reason: {choice.file.yank_reason})" if choice.file.yank_reason else ""
            logger.warning("%s %s is yanked%s; it is pinned because a requirement asks for it with ==",
                           candidate.name, candidate.version, reason)
        pins[candidate.name] = Pin(
            candidate.name,
            candidate.version,
            choice.release,
            choice.file,
            frozenset(parents[candidate.name]),
            choice.sdist_platforms,
        )
    builds = {name: record.torch_builds[(name, pin.version)] for name, pin in pins.items() if (name, pin.version) in record.torch_builds}
    mismatches = {name: _mismatch(policy, mapping[name], found, pins, top_level, parents) for name, found in builds.items()}
    return TargetResolution(
        target, pins, frozenset(exclusions | asked), frozenset(missing), builds,
        {name: text for name, text in mismatches.items() if text},
    )


def _mismatch(
    policy: Policy, candidate: Candidate, builds: TorchBuilds, pins: Mapping[NormalizedName, Pin],
    top_level: Mapping[str, set[str]], parents: Mapping[str, set[str]],
) -> str:
    """Why a pin's module will not load with the torch pinned beside it ("" when it will, or cannot tell):
    only where allow-torch-build-mismatch let the builds miss the pinned torch."""
    torch = pins.get(NormalizedName("torch"))
    layout = policy.torch_layout(candidate)
    if torch is None or builds.specifier is None or layout is None or builds.specifier.contains(torch.version, prereleases=True):
        return ""
    where = ", ".join(sorted(top_level.get("torch", ()))) or "required by " + ", ".join(sorted(parents.get("torch", ())))
    text = f"{builds_module(layout[0])}{WILL_NOT_LOAD}{builds.describe()}; torch {torch.version} pinned by {where}"
    logger.warning("%s==%s: %s (allow-torch-build-mismatch)", candidate.name, candidate.version, text)
    return text
