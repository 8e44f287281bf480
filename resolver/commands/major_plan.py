"""One CUDA major of a compile: its plan (input, swaps, routing, the existing file's pins as preferences,
the rules of each target) and the resolution of its targets, one platform after another."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import ConstraintsFileError, NotOurFile, ProjectNotFound, RequirementsFileError, ResolutionFailed
from ..files.constraints import ConstraintsDocument
from ..files.requirements import RequirementsInput, load_requirements
from ..files.sets import existing_lock_text, lock_path, read_file
from ..model.distributions import close_names
from ..model.families import FamilyTable
from ..model.indexes import PYTORCH_PROJECTS, Routing
from ..model.targets import Environment, Target
from ..resolve.candidates import Asker, Req
from ..resolve.policy import Policy
from ..resolve.prefetch import Crawl, TargetPrefetch
from ..resolve.provider import CudaProvider
from ..resolve.resolution import TargetResolution, resolve_target
from ..resolve.selection import SelectionOptions, Selector
from ..resolve.source import Index, Indexes
from ..resolve.swaps import MajorInput, roots_for, swap_for_major
from ..resolve.watch import Reporter
from .options import CompileRequest, input_files
from .routing import IndexChoice, routing_for

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


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


@dataclass
class MajorPlan:
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
    lock_path: Path  # pylock.cuNN.toml beside the file
    old_lock_text: str | None  # its text, when there is one (and it is ours)
    crawl: Crawl  # the walks ahead of this major's resolvers
    torch_backend: str  # the PyTorch index build a failure over the PyTorch family points at

    def siblings(self, environment: Environment) -> tuple[Environment, ...]:
        return tuple(e for e in self.environments if e.python == environment.python)

    def policy(self, environment: Environment, preferred: Mapping[NormalizedName, Version]) -> Policy:
        """The rules of one target."""
        selector = Selector(self.major, environment, self.siblings(environment), self.families, self.selection)
        return Policy(selector, self.constraints[environment], preferred, pre=self.selection.pre)

    def provider(self, environment: Environment, preferred: Mapping[NormalizedName, Version]) -> CudaProvider:
        """A provider for one target, which fetches ahead what its resolver will most likely ask for."""
        policy = self.policy(environment, preferred)
        return CudaProvider(policy, self.source, TargetPrefetch(policy, self.source, self.crawl))


def plan_major(
    request: CompileRequest,
    requirements_input: RequirementsInput,
    families: FamilyTable,
    major: int,
    environments: tuple[Environment, ...],
    index: Indexes,
) -> MajorPlan:
    if input_files(request, major) != input_files(request):
        requirements_input = read_input(request, major)
    major_input = swap_for_major(requirements_input, families, major)
    routing = routing_for(request.config, IndexChoice.of(request, requirements_input), major)
    path = request.output_dir / f"cu{major}.txt"
    old_text, old = _existing(path)
    old_lock_text = _existing_lock(lock_path(path))
    roots, constraints, preferred = {}, {}, {}
    for environment in environments:
        siblings = tuple(e for e in environments if e.python == environment.python)
        roots[environment], constraints[environment] = roots_for(major_input, environment, siblings)
        for name, version in request.upgrade_packages.items():
            if version is not None:
                pinned = Req(name, SpecifierSet(f"=={version}"), asked_by=Asker("--upgrade-package"))
                constraints[environment] = {**constraints[environment], name: [*constraints[environment].get(name, []), pinned]}
        kept = {} if (old is None or request.upgrade) else old.pins_for(environment.markers)
        preferred[environment] = {n: v for n, v in kept.items() if n not in request.upgrade_packages}
    selection = request.selection if not requirements_input.pre else replace(request.selection, pre=True)
    source = index.routed(routing)
    return MajorPlan(
        major, requirements_input, major_input, path, old, old_text, families, selection, roots, constraints, preferred,
        environments, routing, source, lock_path(path), old_lock_text, Crawl(source), request.config.torch_backend(major),
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


def _existing_lock(path: Path) -> str | None:
    """The lock file a compile replaces (its text); one this tool did not write is never overwritten."""
    try:
        return existing_lock_text(path)
    except ConstraintsFileError as error:
        raise NotOurFile(error.path, error.line_number, error.problem) from None


class TargetLog:
    """One line per resolved target, in a fixed order whichever major's thread finishes first: a target's
    line is printed once every target before it has printed its own (and the first failure ends it)."""

    def __init__(self, progress: Progress, targets: Sequence[Target]) -> None:
        self.progress, self.order = progress, list(targets)
        self._lines: dict[Target, str] = {}
        self._printed = 0
        self._lock = threading.Lock()

    def finished(self, target: Target, resolution: TargetResolution, seconds: float) -> None:
        with self._lock:
            self._lines[target] = f"CUDA {target.cuda_major} {target.environment}: {len(resolution.pins)} pins ({seconds:.1f}s)"
            while self._printed < len(self.order) and self.order[self._printed] in self._lines:
                self.progress(self._lines[self.order[self._printed]])
                self._printed += 1


def resolve_major(
    plan: MajorPlan,
    environments: Sequence[Environment],
    log: TargetLog,
    reporter_for: Callable[[Target], Reporter] | None,
) -> list[TargetResolution]:
    resolutions: list[TargetResolution] = []
    for environment in environments:
        target = Target(plan.major, environment)
        preferred = dict(plan.preferred[environment])
        if resolutions:
            first = {name: pin.version for name, pin in resolutions[0].pins.items()}
            preferred = {**first, **preferred}
        started = time.monotonic()
        provider = plan.provider(environment, preferred)
        try:
            resolution = resolve_target(provider, target, plan.roots[environment], reporter_for(target) if reporter_for else None)
        except ResolutionFailed as error:
            raise _with_pytorch_hint(error, plan.routing, plan.torch_backend) from None
        except ProjectNotFound as missing:
            raise _placed(missing, plan, environment) from None
        resolutions.append(resolution)
        log.finished(target, resolution, time.monotonic() - started)
    return resolutions


def _placed(missing: ProjectNotFound, plan: MajorPlan, environment: Environment) -> ProjectNotFound:
    """The error with the requirement that named the project, and the close names the indexes list and the
    inputs, the existing file and the family table know."""
    root = next((r for r in plan.roots[environment] if r.name == missing.name), None)
    origin = missing.origin or (f"{root.asked_by}: {root}" if root is not None else "")
    known = {
        *missing.suggestions, *plan.source.close_names(canonicalize_name(missing.name)),
        *(canonicalize_name(r.requirement.name) for r in plan.requirements_input.requirements),
        *(canonicalize_name(r.requirement.name) for r in plan.requirements_input.constraints),
        *(pin.name for pin in (plan.old.pins if plan.old is not None else ())), *plan.families.names((plan.major,)),
    }
    return ProjectNotFound(missing.name, missing.where, missing.answered_empty, origin, close_names(missing.name, known))


def _with_pytorch_hint(error: ResolutionFailed, routing: Routing, backend: str) -> ResolutionFailed:
    """A failure that involves PyPI's torch (built for one CUDA version) points at the PyTorch index build
    `backend` of the major's configuration."""
    involved = next((name for name in PYTORCH_PROJECTS if name in error.projects), None)
    if involved is None or involved in routing.routes:
        return error
    major = error.cuda_major
    hint = (f"hint: {involved} on PyPI is built for one CUDA version; for CUDA {major}, take it from the PyTorch "
            f"index with `torch-backend = \"{backend}\"` in [tool.cuda-constraints.cuda.{major}] (see docs/indexes.md, "
            "\"Using the PyTorch index\")")
    return ResolutionFailed(major, error.target, f"{error.explanation}\n{hint}", error.projects)
