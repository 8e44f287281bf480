"""`compile`: resolve every CUDA major and write one constraints file per major.

Orchestration only: read the input, swap per major, start the prefetch crawl, resolve every target
(majors in parallel; the platforms of a major one after another, each preferring the pins of the first
so a major's file agrees across platforms wherever it can), merge, and write at the edge. Nothing is
written unless every major resolved (with `keep_going`, the majors that did are); unchanged files are
not rewritten; writes are atomic. Each major's plan and resolution are in major_plan.py.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import (
    CudaConstraintsError,
    SeveralFailed,
    UsageError,
)
from ..files.constraints import ConstraintsDocument, render
from ..files.output_dir import OutputDirectory
from ..files.pylock import render_lock
from ..files.requirements import RequirementsInput, digest_of, digest_parts
from ..files.sets import display_path
from ..model.families import FamilyTable
from ..model.targets import (
    Environment,
    Target,
    describe_environments,
    environment_grid,
)
from ..resolve.merge import lock_of, merge
from ..resolve.resolution import TargetResolution
from ..resolve.source import Index, Indexes
from ..resolve.swaps import settle_swaps
from ..resolve.watch import Reporter
from .major_plan import MajorPlan, TargetLog, plan_major, resolve_major
from .options import CompileRequest, describe_options
from .routing import IndexChoice, describe_sources, index_lines, routing_for

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
DISCOVERY_MAJORS = range(11, 20)
Failures = dict[int, CudaConstraintsError]


@dataclass(frozen=True)
class LockOutcome:
    """The lock file of a major (`--pylock`): its path, its new text, and whether that differs from the old."""

    path: Path
    text: str
    created: bool
    changed: bool


@dataclass(frozen=True)
class MajorOutcome:
    major: int
    path: Path
    old: ConstraintsDocument | None
    new: ConstraintsDocument
    text: str
    changed: bool
    lock: LockOutcome | None = None


@dataclass
class CompileResult:
    outcomes: list[MajorOutcome]
    skipped_majors: dict[int, str]
    seconds: float
    # With --keep-going: the majors that failed, and why (the others were written).
    failures: Failures = field(default_factory=dict)
    # The sources the environment named (`find-links /opt/wheels (from PIP_FIND_LINKS)`), for the summary.
    environment_sources: tuple[str, ...] = ()


def compile_constraints(
    request: CompileRequest,
    requirements_input: RequirementsInput,
    index: Indexes,
    progress: Progress = lambda message: None,
    reporter_for: Callable[[Target], Reporter] | None = None,
) -> CompileResult:
    started = time.monotonic()
    families = request.config.family_table()
    majors, skipped = _majors(request, requirements_input, index, families, progress)
    environments = environment_grid(request.python_versions, request.platforms)
    output = OutputDirectory(request.output_dir)
    # Held from reading the existing files to writing the new ones: a second run waits, then starts
    # from what the first wrote.
    with contextlib.nullcontext() if request.dry_run else output.locked():
        plans = {major: plan_major(request, requirements_input, families, major, environments, index) for major in majors}
        _check_upgrade_packages(request, plans)
        for plan in plans.values():
            logger.debug("CUDA %s asks, in order: %s", plan.major, "; ".join(describe_sources(plan.routing)))
        for plan in plans.values():
            plan.crawl.start([(plan.policy(env, plan.preferred[env]), plan.roots[env]) for env in environments])
        log = TargetLog(progress, [Target(major, environment) for major in majors for environment in environments])
        results, failures = _resolve_every_major(plans, environments, log, reporter_for, request.keep_going)
        outcomes = [_outcome(request, plans[major], results[major], environments) for major in results]
        changed = {o.path.name: o.text for o in outcomes if o.changed}
        changed.update({o.lock.path.name: o.lock.text for o in outcomes if o.lock is not None and o.lock.changed})
        if not request.dry_run:
            written = ", ".join(display_path(request.output_dir / name) for name in sorted(changed))
            output.replace(changed, f"{written} were written" if len(changed) > 1 else f"{written} was written")
    from_environment = (line for plan in plans.values() for line in describe_sources(plan.routing, environment_only=True))
    return CompileResult(outcomes, skipped, time.monotonic() - started, failures, tuple(dict.fromkeys(from_environment)))


def _check_upgrade_packages(request: CompileRequest, plans: Mapping[int, MajorPlan]) -> None:
    """`-P NAME` must name a project a file pins: anything else is a typo that would upgrade nothing."""
    pinned = {pin.name for plan in plans.values() if plan.old is not None for pin in plan.old.pins}
    for name in request.upgrade_packages:
        if name not in pinned:
            raise UsageError(f"--upgrade-package {name}: no constraints file pins {name}, so there is nothing to upgrade "
                             "(a typo? to add a project, name it in the requirements)")


def _majors(
    request: CompileRequest, requirements_input: RequirementsInput, index: Indexes, families: FamilyTable, progress: Progress
) -> tuple[list[int], dict[int, str]]:
    """The majors to resolve: as configured, or (`auto`) those every family of the input has on the index."""
    if not isinstance(request.majors, str):
        return list(request.majors), {}
    shared = index.routed(routing_for(request.config, IndexChoice.of(request, requirements_input), 0))
    majors, skipped = discover_majors(shared, requirements_input, families)
    progress(f"CUDA majors on the index: {', '.join(map(str, majors)) or 'none'}")
    if not majors:
        raise UsageError("--cuda auto found no CUDA major for which every variant family of the input has a member")
    return majors, skipped


def _resolve_every_major(
    plans: Mapping[int, MajorPlan],
    environments: tuple[Environment, ...],
    log: TargetLog,
    reporter_for: Callable[[Target], Reporter] | None,
    keep_going: bool,
) -> tuple[dict[int, list[TargetResolution]], Failures]:
    """The majors in parallel (the platforms of one after another); every failing major is reported, and
    unless `keep_going`, one failure stops them all (nothing is written)."""
    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = {major: pool.submit(resolve_major, plan, environments, log, reporter_for) for major, plan in plans.items()}
        try:
            results, errors = _gather(futures)
        except KeyboardInterrupt:
            for plan in plans.values():
                plan.source.cancel()  # the resolver threads stop at their next request, not after their work
            raise
    if errors and not (keep_going and results):
        raise next(iter(errors.values())) if len(errors) == 1 else SeveralFailed(list(errors.values()))
    return results, errors


def _outcome(
    request: CompileRequest,
    plan: MajorPlan,
    resolutions: list[TargetResolution],
    environments: tuple[Environment, ...],
) -> MajorOutcome:
    header = ConstraintsDocument(
        cuda_major=plan.major,
        command=request.command,
        inputs=plan.requirements_input.top_level_files,
        digest=digest_of(plan.requirements_input, request.config.digest_text(plan.major)),
        targets=describe_environments(environments),
        options=describe_options(request),
        index_strategy=plan.routing.strategy,
        indexes=index_lines(plan.routing),
    )
    swaps = settle_swaps(plan.major_input.swaps, (missing for r in resolutions for missing in r.missing_extras))
    document = merge(plan.major, resolutions, header, swaps, request.generate_hashes, plan.selection.exclude_newer)
    parts = digest_parts(plan.requirements_input, request.config.digest_text(plan.major))
    document = replace(document, input_digests=parts if len(parts) > 1 else ())
    text = render(document)
    if text != plan.old_text:  # said once, when the file changes (the header keeps it; -v says it every run)
        for line in (line for line in document.torch_builds if line.untagged):
            logger.warning("%s: %s: %s; whether it loads with the torch pinned here is not checked",
                           display_path(plan.path), line.pin, line.builds)
        if not request.pylock and plan.old_lock_text is not None:
            logger.warning("%s is left as it was (pylock is not set), so it no longer matches %s: delete it, or compile "
                           "with --pylock (`pylock = true`)", display_path(plan.lock_path), display_path(plan.path))
    lock = None
    if request.pylock:
        lock_text = render_lock(lock_of(document, resolutions, plan.selection.exclude_newer))
        lock = LockOutcome(plan.lock_path, lock_text, plan.old_lock_text is None, lock_text != plan.old_lock_text)
    return MajorOutcome(plan.major, plan.path, plan.old, document, text, text != plan.old_text, lock)


def _gather(futures: Mapping[int, Future[list[TargetResolution]]]) -> tuple[dict[int, list[TargetResolution]], Failures]:
    """Every major's result, and every major's error (all are reported, not just the first)."""
    results: dict[int, list[TargetResolution]] = {}
    errors: Failures = {}
    for major, future in futures.items():
        try:
            results[major] = future.result()
        except CudaConstraintsError as error:
            errors[major] = error
    return results, errors


def discover_majors(index: Index, requirements_input: RequirementsInput, families: FamilyTable) -> tuple[list[int], dict[int, str]]:
    """Majors for which every variant family named by the input has a member on the index."""
    named = families.families_named_by(r.requirement.name for r in requirements_input.requirements)
    if not named:
        raise UsageError("--cuda auto: the input names no CUDA variant family; give --cuda 12,13")
    probes = {(family.name, major): family.member_name(major) for family in named for major in DISCOVERY_MAJORS}
    found = index.existing(member for member in probes.values() if member)
    majors, skipped = [], {}
    for major in DISCOVERY_MAJORS:
        present = {family.name for family in named if probes[(family.name, major)] in found}
        missing = sorted({family.name for family in named} - present)
        if present and missing:
            skipped[major] = f"no CUDA {major} member of {', '.join(missing)}"
        elif present:
            majors.append(major)
    return majors, skipped
