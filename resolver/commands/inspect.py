"""`inspect`: what the resolver sees of one release.

Version, files usable per target environment, dependencies with their markers, where the release and
each dependency sit in the variant-family model, and, for each wheel the targets would install, the
extension modules it ships and the torch its builds per torch version hold torch to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from ..errors import MetadataUnavailable, ProjectNotFound, UsageError
from ..errors.display import escape
from ..model.distributions import CoreMetadata, DistFile, Project, Release, close_names
from ..model.families import FamilyTable
from ..model.targets import Environment
from ..resolve.selection import best_wheel, python_ok
from ..resolve.source import Index
from ..resolve.torch_builds import read_torch_builds


@dataclass(frozen=True)
class Dependency:
    requirement: str
    name: str
    marker: str
    family: str | None
    cuda_major: int | None
    role: str | None


@dataclass(frozen=True)
class TorchBuildsSeen:
    builds: str  # "builds for torch 2.12, 2.13, 2.14", or an untagged build
    torch: str | None  # the requirement on torch the resolver adds for this wheel ("torch<2.15,>=2.12"), if any


@dataclass(frozen=True)
class ReleaseReport:
    name: str
    version: str
    yanked: bool
    yank_reason: str | None
    # Why the resolver cannot use the release's dependencies (so never picks it); None when it can.
    unusable: str | None
    requires_python: str | None
    family: str | None
    cuda_major: int | None
    role: str | None
    variant: str
    files: dict[str, str | None]
    dependencies: list[Dependency]
    provides_extra: list[str]
    metadata_file: str
    metadata_source: str
    # Each wheel the targets would install -> its compiled extension modules (None: its file list
    # could not be read), and -> the builds per torch version the resolver holds torch to.
    extension_modules: dict[str, list[str] | None] = field(default_factory=dict)
    torch_builds: dict[str, TorchBuildsSeen] = field(default_factory=dict)
    # A meta package whose family keeps builds per torch version in its members' wheels: those members.
    torch_builds_in: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def pick_release(project: Project, version: Version | None) -> Release:
    if version is not None:
        release = project.release(version)
        if release is None:
            newest = ", ".join(str(r.version) for r in project.releases[:5])
            raise UsageError(f"{project.name} has no release {version} (newest: {newest})")
        return release
    usable = [r for r in project.releases if not r.yanked]
    finals = [r for r in usable if not r.version.is_prerelease]
    if not (finals or usable):
        raise UsageError(f"{project.name} has no release that is not yanked")
    return (finals or usable)[0]


def inspect_release(
    source: Index,
    name: NormalizedName,
    version: Version | None,
    environments: tuple[Environment, ...],
    families: FamilyTable,
) -> ReleaseReport:
    try:
        project = source.project(name)
    except ProjectNotFound as missing:  # with the close names the indexes list
        near = close_names(name, (*missing.suggestions, *source.close_names(name)))
        raise ProjectNotFound(missing.name, missing.where, missing.answered_empty, missing.origin, near) from None
    release = pick_release(project, version)
    files: dict[str, str | None] = {}
    for environment in environments:
        wheel = best_wheel(release.files, environment)
        sdist = next((f for f in release.files if f.is_sdist and python_ok(f, environment)), None)
        files[str(environment)] = wheel.filename if wheel else (f"{sdist.filename} (sdist only)" if sdist else None)
    metadata_file = _metadata_file(release, environments)
    unusable = None
    try:
        metadata = source.metadata(release, metadata_file)
    except MetadataUnavailable as error:  # a property of the release, which is what inspect reports
        metadata, unusable = CoreMetadata(release.name, release.version, source="none"), error.problem
    variant = families.classify(release.name, release.version)
    wheels = dict.fromkeys(wheel for environment in environments if (wheel := best_wheel(release.files, environment)))
    extensions = {wheel.filename: source.extension_modules(wheel) for wheel in wheels}
    return ReleaseReport(
        name=release.name,
        version=str(release.version),
        yanked=release.yanked,
        yank_reason=next((f.yank_reason for f in release.files if f.yank_reason), None) if release.yanked else None,
        unusable=unusable,
        requires_python=metadata.requires_python,
        family=variant.family.name if variant else None,
        cuda_major=variant.major if variant else None,
        role=variant.role if variant else None,
        variant=variant.describe() if variant else "not a CUDA variant (fits every major)",
        files=files,
        dependencies=[_dependency(text, families) for text in metadata.requires_dist],
        provides_extra=list(metadata.provides_extra),
        metadata_file=metadata_file.filename,
        metadata_source=metadata.source,
        extension_modules={filename: list(names) if names is not None else None for filename, names in extensions.items()},
        torch_builds=_torch_builds(release.name, families, extensions),
        torch_builds_in=_members_with_builds(release.name, families),
    )


def _members_with_builds(name: str, families: FamilyTable) -> list[str]:
    meta = families.meta_family(name)
    if meta is None or not meta.torch_builds:
        return []
    return [member for major in (12, 13) if (member := meta.member_name(major))]


def _torch_builds(name: str, families: FamilyTable, extensions: dict[str, tuple[str, ...] | None]) -> dict[str, TorchBuildsSeen]:
    """What the builds per torch version of each wheel (where the release's family keeps them) make the
    resolver require of torch, as it reads them when it resolves."""
    layout = families.torch_builds(name)
    found = {}
    for filename, names in extensions.items():
        builds = read_torch_builds(*layout, names) if layout is not None and names is not None else None
        if builds is not None:
            found[filename] = TorchBuildsSeen(builds.describe(), f"torch{builds.specifier}" if builds.specifier else None)
    return found


def _metadata_file(release: Release, environments: tuple[Environment, ...]) -> DistFile:
    for environment in environments:
        wheel = best_wheel(release.files, environment)
        if wheel is not None:
            return wheel
    wheels = [f for f in release.files if f.is_wheel]
    return (wheels or list(release.files))[0]


def _dependency(text: str, families: FamilyTable) -> Dependency:
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return Dependency(text, "", "", None, None, None)
    name = canonicalize_name(requirement.name)
    variant = families.classify(name, _pinned_version(requirement))
    return Dependency(
        requirement=text,
        name=name,
        marker=str(requirement.marker) if requirement.marker else "",
        family=variant.family.name if variant else None,
        cuda_major=variant.major if variant else None,
        role=variant.role if variant else None,
    )


def _pinned_version(requirement: Requirement) -> Version | None:
    for specifier in requirement.specifier:
        if specifier.operator == "==":
            try:
                return Version(specifier.version.replace(".*", ""))
            except ValueError:
                return None
    return None


def render_text(report: ReleaseReport) -> str:
    yanked = f"  (yanked: {escape(report.yank_reason)})" if report.yank_reason else "  (yanked)" if report.yanked else ""
    lines = [
        f"{report.name} {report.version}{yanked}",
        f"  variant: {report.variant}",
        f"  requires-python: {escape(report.requires_python or 'any')}",
        "  files per target:",
    ]
    lines += [f"    {environment}: {escape(file or 'none usable')}" for environment, file in report.files.items()]
    if report.unusable is not None:
        lines.append(f"  dependencies: unusable, so the resolver never picks this release: {escape(report.unusable)}")
        return "\n".join(lines)
    lines.append(f"  dependencies (from {escape(report.metadata_file)}, read by {report.metadata_source}):")
    if not report.dependencies:
        lines.append("    (none)")
    for dependency in report.dependencies:
        note = ""
        if dependency.role == "meta":
            note = f"  [meta package of {dependency.family}]"
        elif dependency.family is not None:
            major = f"CUDA {dependency.cuda_major}" if dependency.cuda_major else "CUDA major by version"
            note = f"  [{major} member of {dependency.family}]"
        lines.append(f"    {escape(dependency.requirement)}{note}")
    if report.provides_extra:
        lines.append(f"  extras: {escape(', '.join(report.provides_extra))}")
    for filename, modules in report.extension_modules.items():
        if modules is None:
            lines.append(f"  extension modules of {escape(filename)}: its file list cannot be read")
            continue
        lines.append(f"  extension modules of {escape(filename)}:" + ("" if modules else " (none)"))
        lines += [f"    {escape(module)}" for module in modules]
        seen = report.torch_builds.get(filename)
        if seen is not None:
            held = f"; the resolver requires {seen.torch} with it" if seen.torch else "; it bounds nothing (not checked)"
            lines.append(f"  torch builds: {escape(seen.builds)}{held}")
    if report.torch_builds_in:
        members = " or ".join(f"`cuda-constraints inspect {member}=={report.version}`" for member in report.torch_builds_in)
        lines.append(f"  torch builds: in its members' wheels, which the resolver reads for it ({members})")
    return "\n".join(lines)
