"""Top-level requirements for one CUDA major: swapped where they name another major's member.

`cupy-cuda13x != 14.1.0` becomes `cupy-cuda12x != 14.1.0` for CUDA 12, with the same specifier, extras and
markers, and the swap is recorded for the constraints file and for `install`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ..files.constraints import SwapLine
from ..files.requirements import RequirementsInput, SourcedRequirement
from ..model.families import FamilyTable
from ..model.targets import Environment
from .candidates import Req


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
        if target is None:
            return sourced
        replacement = Requirement(str(sourced.requirement))
        replacement.name = target
        swaps.append(SwapLine(str(sourced.requirement), str(replacement), sourced.origin))
        return SourcedRequirement(replacement, sourced.path, sourced.line_number)

    requirements = tuple(swapped(r) for r in requirements_input.requirements)
    constraints = tuple(swapped(c) for c in requirements_input.constraints)
    return MajorInput(requirements, constraints, tuple(swaps))


def roots_for(major_input: MajorInput, environment: Environment) -> tuple[list[Req], dict[NormalizedName, list[Req]]]:
    """Resolver requirements and constraints whose markers hold in this environment."""
    roots = [_req(r) for r in major_input.requirements if environment.evaluate(r.requirement.marker)]
    constraints: dict[NormalizedName, list[Req]] = defaultdict(list)
    for sourced in major_input.constraints:
        if environment.evaluate(sourced.requirement.marker):
            constraints[canonicalize_name(sourced.requirement.name)].append(_req(sourced))
    return roots, dict(constraints)


def _req(sourced: SourcedRequirement) -> Req:
    requirement = sourced.requirement
    return Req(
        canonicalize_name(requirement.name),
        requirement.specifier,
        frozenset(canonicalize_name(e) for e in requirement.extras),
        sourced.origin,
    )

