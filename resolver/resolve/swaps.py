"""Top-level requirements for one CUDA major: swapped where they name another major's member, or select
another major through an extra.

`cupy-cuda13x != 14.1.0` becomes `cupy-cuda12x != 14.1.0` for CUDA 12, with the same specifier, extras and
markers; `humming-kernels[cu13]==0.1.19` becomes `humming-kernels[cu12]==0.1.19` (vLLM's Dockerfile does
that with sed), and the plain `nvidia-cutlass-dsl==4.8.0` when the release pinned has no `cu12` extra
(`settle_swaps`, after the resolution knows). Each swap is recorded for the constraints file and for
`install`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ..files.constraints import SwapLine
from ..files.requirements import RequirementsInput, SourcedRequirement
from ..model.families import FamilyTable, extra_major, extras_for_major
from ..model.targets import Environment
from .candidates import Asker, Req


@dataclass(frozen=True)
class MajorInput:
    """The input as one CUDA major sees it."""

    requirements: tuple[SourcedRequirement, ...]
    constraints: tuple[SourcedRequirement, ...]
    swaps: tuple[SwapLine, ...]


def swap_for_major(requirements_input: RequirementsInput, families: FamilyTable, major: int) -> MajorInput:
    swaps: list[SwapLine] = []

    def swapped(sourced: SourcedRequirement) -> SourcedRequirement:
        target = families.swap_target(sourced.requirement.name, major)
        extras = set(extras_for_major(sourced.requirement.extras, major))
        if target is None and extras == sourced.requirement.extras:
            return sourced
        replacement = Requirement(str(sourced.requirement))
        replacement.name = target or replacement.name
        replacement.extras = extras
        swaps.append(SwapLine(str(sourced.requirement), str(replacement), sourced.origin))
        return SourcedRequirement(replacement, sourced.path, sourced.line_number)

    requirements = tuple(swapped(r) for r in requirements_input.requirements)
    constraints = tuple(swapped(c) for c in requirements_input.constraints)
    return MajorInput(requirements, constraints, tuple(swaps))


def settle_swaps(swaps: Iterable[SwapLine], missing: Iterable[tuple[NormalizedName, NormalizedName]]) -> tuple[SwapLine, ...]:
    """The swaps, without the selector extras the pinned releases turned out not to declare (`missing`:
    project and extra): `nvidia-cutlass-dsl[cu12]` is recorded, and installed, as `nvidia-cutlass-dsl`."""
    absent = set(missing)
    settled = []
    for swap in swaps:
        replacement = Requirement(swap.replacement)
        name = canonicalize_name(replacement.name)
        kept = {e for e in replacement.extras if (name, canonicalize_name(e)) not in absent or extra_major(e) is None}
        if kept == replacement.extras:
            settled.append(swap)
        else:
            replacement.extras = kept
            settled.append(SwapLine(swap.original, str(replacement), swap.origin))
    return tuple(settled)


def roots_for(
    major_input: MajorInput, environment: Environment, siblings: Sequence[Environment] = ()
) -> tuple[list[Req], dict[NormalizedName, list[Req]]]:
    """Resolver requirements and constraints whose markers hold in this environment; each requirement
    says which of the `siblings` (the other platforms of its Python) need it too (none given: all)."""
    roots = []
    for sourced in major_input.requirements:
        marker = sourced.requirement.marker
        if environment.evaluate(marker):
            roots.append(_req(sourced, frozenset(e for e in (environment, *siblings) if e.evaluate(marker)) if siblings else None))
    constraints: dict[NormalizedName, list[Req]] = defaultdict(list)
    for sourced in major_input.constraints:
        if environment.evaluate(sourced.requirement.marker):
            constraints[canonicalize_name(sourced.requirement.name)].append(_req(sourced))
    return roots, dict(constraints)


def _req(sourced: SourcedRequirement, environments: frozenset[Environment] | None = None) -> Req:
    requirement = sourced.requirement
    return Req(
        canonicalize_name(requirement.name),
        requirement.specifier,
        frozenset(canonicalize_name(e) for e in requirement.extras),
        Asker(sourced.path, sourced.line_number),
        environments=environments,
    )

