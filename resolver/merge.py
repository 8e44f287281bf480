"""Merge one CUDA major's per-target resolutions into one constraints document.

Where every target pins the same version, the line has no marker; where pins differ (or a project is
needed on some targets only), each line carries a PEP 508 marker naming the targets it is for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from packaging.version import Version

from .candidates import compatible_rank
from .constraints_file import ConstraintsDocument, ExcludedLine, PinLine, SourceBuild, SwapLine
from .resolution import Pin, TargetResolution
from .swaps import Swap
from .targets import Environment


def merge(
    cuda_major: int,
    resolutions: Sequence[TargetResolution],
    header: ConstraintsDocument,
    swaps: Iterable[Swap],
    generate_hashes: bool = False,
) -> ConstraintsDocument:
    """`header` gives command, inputs, digest, targets and options; the rest comes from the resolutions."""
    grid = tuple(r.target.environment for r in resolutions)
    by_name: dict[str, dict[Environment, Pin]] = defaultdict(dict)
    for resolution in resolutions:
        for name, pin in resolution.pins.items():
            by_name[name][resolution.target.environment] = pin
    pins: list[PinLine] = []
    builds: list[SourceBuild] = []
    for name in sorted(by_name):
        per_environment = by_name[name]
        versions: dict[Version, list[Environment]] = defaultdict(list)
        for environment, pin in per_environment.items():
            versions[pin.version].append(environment)
        for version, environments in sorted(versions.items()):
            selected = [per_environment[e] for e in environments]
            marker = "" if set(environments) == set(grid) else environments_marker(environments, grid)
            via = sorted({parent for pin in selected for parent in pin.parents}, key=_via_order)
            hashes = _hashes(selected, environments) if generate_hashes else ()
            pins.append(PinLine(name, version, marker, tuple(via), hashes))
            sdist_platforms = sorted({p for pin in selected for p in pin.builds_from_sdist})
            if sdist_platforms:
                builds.append(SourceBuild(name, str(version), ", ".join(sdist_platforms)))
    excluded = sorted({ExcludedLine(e.name, e.required_by) for r in resolutions for e in r.exclusions})
    return ConstraintsDocument(
        cuda_major=cuda_major,
        command=header.command,
        inputs=header.inputs,
        digest=header.digest,
        targets=header.targets,
        options=header.options,
        excluded=tuple(excluded),
        swapped=tuple(sorted({SwapLine(s.original, s.replacement, s.origin) for s in swaps})),
        source_builds=tuple(sorted(set(builds))),
        pins=tuple(pins),
    )


def environments_marker(selected: Sequence[Environment], grid: Sequence[Environment]) -> str:
    """A PEP 508 marker true in exactly the selected environments of the grid."""
    pythons = sorted({e.python for e in grid})
    platforms = sorted({e.platform for e in grid})
    chosen_pythons = sorted({e.python for e in selected})
    chosen_platforms = sorted({e.platform for e in selected})
    mixed_systems = len({p.system for p in platforms}) > 1
    rectangle = {(e.python, e.platform) for e in selected} == {(p, q) for p in chosen_pythons for q in chosen_platforms}
    if rectangle:
        parts = []
        if chosen_pythons != pythons:
            parts.append(_any_of([f'python_version == "{p}"' for p in chosen_pythons]))
        if chosen_platforms != platforms:
            parts.append(_any_of([_platform_marker(p, mixed_systems) for p in chosen_platforms]))
        return " and ".join(parts)
    return " or ".join(
        f'(python_version == "{e.python}" and {_platform_marker(e.platform, mixed_systems)})' for e in sorted(selected)
    )


def _platform_marker(platform, mixed_systems: bool) -> str:  # noqa: ANN001
    machine = f'platform_machine == "{platform.machine}"'
    return f'sys_platform == "{platform.sys_platform}" and {machine}' if mixed_systems else machine


def _any_of(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _hashes(pins: Sequence[Pin], environments: Sequence[Environment]) -> tuple[str, ...]:
    """sha256 of every file an installer could pick for these environments."""
    digests = set()
    for pin in pins:
        for file in pin.release.files:
            usable = any(compatible_rank(file, e) is not None for e in environments) or (
                file.is_sdist and pin.builds_from_sdist
            )
            if usable and file.sha256:
                digests.add(file.sha256)
    return tuple(sorted(digests))


def _via_order(parent: str) -> tuple[int, str]:
    return (0 if parent.startswith("-") else 1, parent)
