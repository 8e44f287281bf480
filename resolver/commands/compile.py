"""`compile`: resolve every CUDA major and write one constraints file per major.

Orchestration only: read the input, swap per major, start the prefetch crawl, resolve every target
(majors in parallel; the platforms of a major one after another, each preferring the pins of the first
so a major's file agrees across platforms wherever it can), merge, and write at the edge. Nothing is
written unless every major resolved; unchanged files are not rewritten; writes are atomic.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import (
    ConstraintsFileError,
    CudaConstraintsError,
    NotOurFile,
    RequirementsFileError,
    ResolutionFailed,
    SeveralFailed,
    UsageError,
)
from ..files.constraints import ConstraintsDocument, render
from ..files.output_dir import OutputDirectory
from ..files.requirements import RequirementsInput, digest_of, load_requirements
from ..files.sets import display_path, read_file
from ..model.families import FamilyTable
from ..model.indexes import PYTORCH_PROJECTS, Routing
from ..model.targets import (
    Environment,
    Target,
    describe_environments,
    environment_grid,
)
from ..resolve.candidates import Req
from ..resolve.merge import merge
from ..resolve.policy import Policy
from ..resolve.provider import CudaProvider
from ..resolve.resolution import Reporter, TargetResolution, resolve_target
from ..resolve.selection import SelectionOptions, Selector
from ..resolve.source import Index, Indexes
from ..resolve.swaps import MajorInput, roots_for, settle_swaps, swap_for_major
from .options import CompileRequest, describe_options, input_files
from .routing import IndexChoice, index_lines, routing_for

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
DISCOVERY_MAJORS = range(11, 20)
Failures = dict[int, CudaConstraintsError]


@dataclass(frozen=True)
class MajorOutcome:
    major: int
    path: Path
    old: ConstraintsDocument | None
    new: ConstraintsDocument
    text: str
    changed: bool


@dataclass
class CompileResult:
    outcomes: list[MajorOutcome]
    skipped_majors: dict[int, str]
    seconds: float
    # With --keep-going: the majors that failed, and why (the others were written).
    failures: Failures = field(default_factory=dict)


def read_input(request: CompileRequest, major: int = 0) -> RequirementsInput:
    """The requirements to compile for one major (0: the shared ones); an input without any is refused:
    it would empty every file."""
    requirements, constraints = input_files(request, major)
    requirements_input = load_requirements(list(requirements), root=request.config.root, constraints=constraints)
    if not requirements_input.requirements:
        shown = ", ".join(requirements_input.top_level_files)
        raise RequirementsFileError(
            Path(shown), 0, "", "names no requirement; compiling it would empty every constraints file (nothing was written)"
        )
    for sourced in requirements_input.requirements:
        if canonicalize_name(sourced.requirement.name) in request.selection.exclude_dependencies:
            raise RequirementsFileError(
                Path(sourced.path), sourced.line_number, str(sourced.requirement),
                "names a project that exclude-dependencies drops everywhere; remove one or the other",
            )
    return requirements_input


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
        plans = {major: _plan(request, requirements_input, families, major, environments, index) for major in majors}
        for plan in plans.values():
            plan.source.start_crawl([(plan.policy(env, plan.preferred[env]), plan.roots[env]) for env in environments])
        results, failures = _resolve_every_major(plans, environments, progress, reporter_for, request.keep_going)
        outcomes = [_outcome(request, plans[major], results[major], environments) for major in results]
        changed = {o.path.name: o.text for o in outcomes if o.changed}
        if not request.dry_run:
            written = ", ".join(display_path(request.output_dir / name) for name in sorted(changed))
            output.replace(changed, f"{written} were written" if len(changed) > 1 else f"{written} was written")
    return CompileResult(outcomes, skipped, time.monotonic() - started, failures)


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
    plans: Mapping[int, _MajorPlan],
    environments: tuple[Environment, ...],
    progress: Progress,
    reporter_for: Callable[[Target], Reporter] | None,
    keep_going: bool,
) -> tuple[dict[int, list[TargetResolution]], Failures]:
    """The majors in parallel (the platforms of one after another); every failing major is reported, and
    unless `keep_going`, one failure stops them all (nothing is written)."""
    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = {major: pool.submit(_resolve_major, plan, environments, progress, reporter_for) for major, plan in plans.items()}
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
    plan: _MajorPlan,
    resolutions: list[TargetResolution],
    environments: tuple[Environment, ...],
) -> MajorOutcome:
    header = ConstraintsDocument(
        cuda_major=plan.major,
        command=request.command,
        inputs=plan.requirements_input.top_level_files,
        digest=digest_of(plan.requirements_input, request.config.families_text),
        targets=describe_environments(environments),
        options=describe_options(request),
        index_strategy=plan.routing.strategy,
        indexes=index_lines(plan.routing),
    )
    swaps = settle_swaps(plan.major_input.swaps, (missing for r in resolutions for missing in r.missing_extras))
    document = merge(plan.major, resolutions, header, swaps, request.generate_hashes, plan.selection.exclude_newer)
    text = render(document)
    return MajorOutcome(plan.major, plan.path, plan.old, document, text, text != plan.old_text)


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


@dataclass
class _MajorPlan:
    major: int
    requirements_input: RequirementsInput  # the major's own files, or the shared ones
    major_input: MajorInput
    path: Path
    old: ConstraintsDocument | None
    old_text: str | None
    families: FamilyTable
    selection: SelectionOptions
    roots: dict[Environment, list[Req]]
    constraints: dict[Environment, dict[NormalizedName, list[Req]]]
    preferred: dict[Environment, dict[NormalizedName, Version]]
    environments: tuple[Environment, ...]
    routing: Routing
    source: Index  # the indexes as this routing sees them

    def siblings(self, environment: Environment) -> tuple[Environment, ...]:
        return tuple(e for e in self.environments if e.python == environment.python)

    def policy(self, environment: Environment, preferred: Mapping[NormalizedName, Version]) -> Policy:
        """The rules of one target."""
        selector = Selector(self.major, environment, self.siblings(environment), self.families, self.selection)
        return Policy(selector, self.constraints[environment], preferred, pre=self.selection.pre)

    def provider(self, environment: Environment, preferred: Mapping[NormalizedName, Version]) -> CudaProvider:
        """A provider for one target, whose pinned candidates' subtrees are crawled ahead."""
        policy = self.policy(environment, preferred)
        crawl_rules, source = policy.fork(), self.source
        return CudaProvider(policy, source, on_dependencies=lambda requirements: source.start_crawl([(crawl_rules, requirements)]))


def _plan(
    request: CompileRequest,
    requirements_input: RequirementsInput,
    families: FamilyTable,
    major: int,
    environments: tuple[Environment, ...],
    index: Indexes,
) -> _MajorPlan:
    if input_files(request, major) != input_files(request):
        requirements_input = read_input(request, major)
    major_input = swap_for_major(requirements_input, families, major)
    routing = routing_for(request.config, IndexChoice.of(request, requirements_input), major)
    path = request.output_dir / f"cu{major}.txt"
    old_text, old = _existing(path)
    roots, constraints, preferred = {}, {}, {}
    for environment in environments:
        roots[environment], constraints[environment] = roots_for(major_input, environment)
        for name, version in request.upgrade_packages.items():
            if version is not None:
                pinned = Req(name, SpecifierSet(f"=={version}"), origin="--upgrade-package")
                constraints[environment] = {**constraints[environment], name: [*constraints[environment].get(name, []), pinned]}
        kept = {} if (old is None or request.upgrade) else old.pins_for(environment.markers)
        preferred[environment] = {n: v for n, v in kept.items() if n not in request.upgrade_packages}
    selection = request.selection if not requirements_input.pre else replace(request.selection, pre=True)
    return _MajorPlan(
        major, requirements_input, major_input, path, old, old_text, families, selection, roots, constraints, preferred,
        environments, routing, index.routed(routing),
    )


def _existing(path: Path) -> tuple[str | None, ConstraintsDocument | None]:
    """The file a compile replaces (its text, to tell whether anything changed), and its pins.

    A file that is not a cuda-constraints file (or not text) is never overwritten: it is not ours. One
    whose header is ours but whose lines are damaged is regenerated from scratch, with a warning.
    """
    try:
        named = read_file(path)
    except FileNotFoundError:
        return None, None
    except ConstraintsFileError as error:
        if error.foreign:
            raise NotOurFile(error.path, error.line_number, error.problem) from None
        logger.warning("%s: its pins are not kept (%s)", error.path, error.problem)
        return path.read_text(encoding="utf-8"), None
    return path.read_text(encoding="utf-8"), named.document


def _resolve_major(
    plan: _MajorPlan,
    environments: Sequence[Environment],
    progress: Progress,
    reporter_for: Callable[[Target], Reporter] | None,
) -> list[TargetResolution]:
    resolutions: list[TargetResolution] = []
    for environment in environments:
        target = Target(plan.major, environment)
        preferred = dict(plan.preferred[environment])
        if resolutions:
            first = {name: pin.version for name, pin in resolutions[0].pins.items()}
            preferred = {**first, **preferred}
        progress(f"Resolving CUDA {plan.major} for {environment}")
        provider = plan.provider(environment, preferred)
        try:
            resolution = resolve_target(provider, target, plan.roots[environment], reporter_for(target) if reporter_for else None)
        except ResolutionFailed as error:
            raise _with_pytorch_hint(error, plan.routing) from None
        resolutions.append(resolution)
    return resolutions


def _with_pytorch_hint(error: ResolutionFailed, routing: Routing) -> ResolutionFailed:
    """A failure that involves PyPI's torch (built for one CUDA version) points at the PyTorch index."""
    involved = re.search(rf"^  ({'|'.join(map(re.escape, PYTORCH_PROJECTS))}) ", error.explanation, re.MULTILINE)
    if involved is None or involved.group(1) in routing.routes:
        return error
    major = error.cuda_major
    backend = "cu129" if major == 12 else f"cu{major}0"  # the PyTorch index's name of a CUDA version
    hint = (f"hint: {involved.group(1)} on PyPI is built for one CUDA version; for CUDA {major}, take it from the PyTorch "
            f"index with `torch-backend = \"{backend}\"` in [tool.cuda-constraints.cuda.{major}] (see the README, "
            "\"Using the PyTorch index\")")
    return ResolutionFailed(major, error.target, f"{error.explanation}\n{hint}")


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
