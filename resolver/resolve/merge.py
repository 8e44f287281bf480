"""Merge one CUDA major's per-target resolutions into one constraints document.

Where every target pins the same version, the line has no marker; where pins differ (or a project is
needed on some targets only), each line carries a PEP 508 marker naming the targets it is for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from packaging.utils import NormalizedName
from packaging.version import Version

from ..errors import CannotLock
from ..files.constraints import (
    ConstraintsDocument,
    IndexLine,
    PinLine,
    SourceBuild,
    SwapLine,
    TorchBuildLine,
)
from ..files.pylock import LockDocument, LockedFile, LockedPackage, environment_marker, lock_marker, requires_python
from ..model.distributions import DEFAULT_INDEX_URL, DistFile
from ..model.targets import Environment, Platform
from .resolution import Pin, TargetResolution
from .selection import compatible_rank, python_ok, uploaded_by


def merge(
    cuda_major: int,
    resolutions: Sequence[TargetResolution],
    header: ConstraintsDocument,
    swaps: Iterable[SwapLine],
    generate_hashes: bool = False,
    exclude_newer: datetime | None = None,
) -> ConstraintsDocument:
    """`header` gives command, inputs, digest, targets and options; the rest comes from the resolutions.

    With `generate_hashes`, each line hashes the files its environments could install (uploaded by
    `exclude_newer`, when given, so a rerun gives the same hashes).
    """
    pins: list[PinLine] = []
    builds: list[SourceBuild] = []
    for group in _pin_groups(resolutions):
        name, version, chosen = group.name, group.version, group.chosen
        via = sorted({parent for pin in chosen.values() for parent in pin.parents}, key=_via_order)
        hashes = tuple(sorted({file.sha256 for file in installable_files(chosen, exclude_newer) if file.sha256})) if generate_hashes else ()
        pins.append(PinLine(name, version, group.marker, tuple(via), hashes))
        sdist_platforms = sorted({e.platform.tag for e, pin in chosen.items() if _builds_from_sdist(pin, e)})
        if sdist_platforms:
            builds.append(SourceBuild(name, str(version), ", ".join(sdist_platforms)))
    excluded = sorted({exclusion for r in resolutions for exclusion in r.exclusions})
    torch_builds = _torch_build_lines(resolutions)
    served: dict[str, set[str]] = defaultdict(set)
    for resolution in resolutions:
        for name, pin in resolution.pins.items():
            served[pin.file.index].add(name)
    indexes = tuple(
        line if line.kind == "default" else IndexLine(line.kind, line.url, tuple(sorted(served.get(line.url, ()))))
        for line in header.indexes
    )
    # A find-links location that served no pin is not needed to install them (and is often a path of
    # the machine that compiled: PIP_FIND_LINKS); PyPI alone is not recorded.
    indexes = tuple(line for line in indexes if line.kind != "find-links" or line.serves)
    if indexes == (IndexLine("default", DEFAULT_INDEX_URL),) and header.index_strategy == "first-index":
        indexes = ()
    return ConstraintsDocument(
        cuda_major=cuda_major,
        command=header.command,
        inputs=header.inputs,
        digest=header.digest,
        targets=header.targets,
        options=header.options,
        excluded=tuple(excluded),
        swapped=tuple(sorted(set(swaps))),
        source_builds=tuple(sorted(set(builds))),
        pins=tuple(pins),
        index_strategy=header.index_strategy,
        indexes=indexes,
        torch_builds=torch_builds,
    )


@dataclass(frozen=True)
class _PinGroup:
    """The targets that pin one project to one version: one line of the file, one package of the lock."""

    name: NormalizedName
    version: Version
    chosen: Mapping[Environment, Pin]
    marker: str  # "" where every target pins it so


def _pin_groups(resolutions: Sequence[TargetResolution]) -> Iterator[_PinGroup]:
    """Every project's versions in order, each with the targets that pin it (names sorted)."""
    grid = tuple(r.target.environment for r in resolutions)
    by_name: dict[NormalizedName, dict[Environment, Pin]] = defaultdict(dict)
    for resolution in resolutions:
        for name, pin in resolution.pins.items():
            by_name[name][resolution.target.environment] = pin
    for name in sorted(by_name):
        per_environment = by_name[name]
        versions: dict[Version, list[Environment]] = defaultdict(list)
        for environment, pin in per_environment.items():
            versions[pin.version].append(environment)
        for version, environments in sorted(versions.items()):
            marker = "" if set(environments) == set(grid) else environments_marker(environments, grid)
            yield _PinGroup(name, version, {e: per_environment[e] for e in environments}, marker)


def lock_of(document: ConstraintsDocument, resolutions: Sequence[TargetResolution], exclude_newer: datetime | None = None) -> LockDocument:
    """The lock file of a merged document: each of its pins with every file an installer could take on its
    targets (the files `--generate-hashes` hashes), and the index that served it. Raises CannotLock where a
    target would be left without a file that has a sha256 (a lock must hash every file)."""
    find_links = {line.url for line in document.indexes if line.kind == "find-links"}
    packages = []
    for group in _pin_groups(resolutions):
        per_environment = _fitting_files(group.chosen, exclude_newer)
        for environment, fitting in sorted(per_environment.items()):
            if not any(file.sha256 for file in fitting):
                pin = group.chosen[environment]
                raise CannotLock(f"{group.name}=={group.version}", str(environment), pin.file.filename, pin.file.index)
        files = [file for file in _each_once(per_environment) if file.sha256]
        wheels = tuple(sorted({_locked(file) for file in files if file.is_wheel}))
        # One sdist at most (PEP 751): the one a target that builds from source chose.
        built = {pin.file.filename for pin in group.chosen.values() if pin.file.is_sdist}
        sdist = min((file for file in files if file.is_sdist), key=lambda file: (file.filename not in built, file.filename), default=None)
        index = group.chosen[min(group.chosen)].file.index
        packages.append(LockedPackage(group.name, group.version, lock_marker(group.marker), "" if index in find_links else index, wheels,
                                      _locked(sdist) if sdist else None))
    environments = tuple(r.target.environment for r in resolutions)
    return LockDocument(
        header=replace(document, pins=()),
        environments=tuple(environment_marker(e) for e in sorted(environments)),
        requires_python=requires_python(environments),
        packages=tuple(packages),
    )


def _locked(file: DistFile) -> LockedFile:
    assert file.sha256 is not None
    return LockedFile(file.filename, file.url, file.sha256, file.size, file.upload_time)


def _torch_build_lines(resolutions: Sequence[TargetResolution]) -> tuple[TorchBuildLine, ...]:
    """One line per pinned release whose wheels ship builds per torch version; where platforms' wheels
    differ, one per kind of wheel, naming its platforms."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for resolution in resolutions:
        for name, builds in resolution.torch_builds.items():
            pin = f"{name}=={resolution.pins[name].version}"
            mismatch = resolution.torch_mismatches.get(name)
            described = mismatch or builds.describe()
            found[pin][described].add(resolution.target.environment.platform.tag)
    lines = []
    for pin, kinds in sorted(found.items()):
        for description, platforms in sorted(kinds.items()):
            where = f" (on {', '.join(sorted(platforms))})" if len(kinds) > 1 else ""
            lines.append(TorchBuildLine(pin, description + where))
    return tuple(lines)


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


def _platform_marker(platform: Platform, mixed_systems: bool) -> str:
    machine = f'platform_machine == "{platform.machine}"'
    return f'sys_platform == "{platform.sys_platform}" and {machine}' if mixed_systems else machine


def _any_of(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _builds_from_sdist(pin: Pin, environment: Environment) -> bool:
    """Whether this environment installs the pin from its sdist (a Choice names every platform of its Python)."""
    return environment.platform.tag in pin.builds_from_sdist


def installable_files(chosen: Mapping[Environment, Pin], exclude_newer: datetime | None) -> list[DistFile]:
    """Every file an installer could pick in these environments: the wheels whose tags and requires-python
    fit, and the sdist where the environment builds from source (uploaded by `exclude_newer`, when given,
    so a rerun gives the same files), each once."""
    return _each_once(_fitting_files(chosen, exclude_newer))


def _fitting_files(chosen: Mapping[Environment, Pin], exclude_newer: datetime | None) -> dict[Environment, list[DistFile]]:
    return {
        environment: [file for file in pin.release.files if _fits(file, pin, environment) and uploaded_by(file, exclude_newer)]
        for environment, pin in chosen.items()
    }


def _each_once(per_environment: Mapping[Environment, list[DistFile]]) -> list[DistFile]:
    found: dict[str, DistFile] = {}
    for files in per_environment.values():
        for file in files:
            found.setdefault(file.filename, file)
    return list(found.values())


def _fits(file: DistFile, pin: Pin, environment: Environment) -> bool:
    fits = compatible_rank(file, environment) is not None or (file.is_sdist and _builds_from_sdist(pin, environment))
    return fits and python_ok(file, environment)


def _via_order(parent: str) -> tuple[int, str]:
    return (0 if parent.startswith("-") else 1, parent)
