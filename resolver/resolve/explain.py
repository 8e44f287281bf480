"""Explaining a resolution failure: who wanted what, and why nothing fit, in words a CI maintainer can act on.

One line per group of requirers, one per project that could not be satisfied; releases that were passed
over are grouped by why (newest first), from the policy's typed reasons.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from packaging.utils import NormalizedName
from packaging.version import Version
from resolvelib.structs import RequirementInformation

from .candidates import PYTHON, UNREADABLE, Candidate, Req
from .policy import Policy, Record
from .selection import Unavailable
from .torch_builds import TorchBuilds

MAX_REASON_GROUPS = 5
NEWEST_SHOWN = 5  # releases named when none matches
Information = RequirementInformation[Req, Candidate]


def explain(causes: Sequence[Information], policy: Policy, roots: Sequence[Req]) -> str:
    """Who wanted what, and why nothing fit: one line per requirer group, one per unsatisfiable project."""
    record, major = policy.record, policy.major
    lines: list[str] = []
    by_name: dict[str, list[Information]] = defaultdict(list)
    for cause in causes:
        by_name[cause.requirement.name].append(cause)
    for name, infos in by_name.items():
        if name == PYTHON:
            lines += [f"  {info.parent} requires Python {info.requirement.specifier}" for info in infos]
            continue
        if name == UNREADABLE:
            for info in infos:
                if info.parent is not None:
                    reason = record.unavailable.get(info.parent.name, {}).get(info.parent.version)
                    lines.append(f"  {info.parent}: {reason.detail if reason else 'its dependencies cannot be read'}")
            continue
        for parent_name, group in _group_by_parent(infos).items():
            lines.append("  " + _describe_requirers(parent_name, group, policy, roots))
            if parent_name is not None:
                lines += ["  " + line for line in _passed_over(parent_name, policy)]
        lines.append("  " + _describe_availability(name, infos, policy, major))
    if "torch" in by_name:
        lines += ["  " + line for line in _torch_builds_hint(by_name["torch"], policy)]
    return "\n".join(dict.fromkeys(lines))


def _torch_builds_hint(infos: list[Information], policy: Policy) -> list[str]:
    """Where builds per torch version took part: the release whose builds come nearest the torch asked for,
    and the option that writes the file anyway (its module then will not load)."""
    pinned = [Version(s.version) for info in infos for s in info.requirement.specifier if s.operator == "==" and "*" not in s.version]
    builds = {key: found for key, found in policy.record.torch_builds.items() if found.minors}
    if not pinned or not builds:
        return []
    wanted = (pinned[0].major, pinned[0].minor)
    # The builds nearest the torch asked for; of those, the newest release.
    (name, version), nearest = min(builds.items(), key=lambda item: (_distance(item[1].minors, wanted), [-p for p in item[0][1].release]))
    variant = policy.families.classify(name)
    allow = (variant.family.meta or variant.family.name) if variant is not None else name
    per_release = "; ".join(
        f"{member} {', '.join(f'{v} ({_minors(found.minors)})' for v, found in sorted(releases, reverse=True))}"
        for member, releases in _by_member(builds).items()
    )
    return [
        f"builds per torch version, newest releases first: {per_release}",
        f"no {allow} release has a build for torch {pinned[0]} (nearest: {name} {version}, {nearest.describe()}); to write the "
        f"file anyway, where those builds will not load, pass --allow-torch-build-mismatch {allow} (allow-torch-build-mismatch "
        f"= [\"{allow}\"] in [tool.cuda-constraints])",
    ]


def _by_member(builds: Mapping[tuple[NormalizedName, Version], TorchBuilds]) -> dict[str, list[tuple[Version, TorchBuilds]]]:
    found: dict[str, list[tuple[Version, TorchBuilds]]] = defaultdict(list)
    for (name, version), value in sorted(builds.items()):
        found[name].append((version, value))
    return dict(found)


def _minors(minors: Sequence[tuple[int, int]]) -> str:
    """`2.11–2.13` (`2.11, 2.13` where one is missing between)."""
    if len(minors) > 2 and all(b == (a[0], a[1] + 1) for a, b in itertools.pairwise(minors)):
        return f"{minors[0][0]}.{minors[0][1]}–{minors[-1][0]}.{minors[-1][1]}"
    return ", ".join(f"{major}.{minor}" for major, minor in minors)


def _distance(minors: Sequence[tuple[int, int]], wanted: tuple[int, int]) -> int:
    return min(abs((major - wanted[0]) * 100 + minor - wanted[1]) for major, minor in minors)


# Releases passed over for these reasons could be admitted by a flag, so a failure names them.
_ADMISSIBLE = ("no-wheel", "requires-python", "uploaded-after", "yanked")


def _passed_over(name: str, policy: Policy) -> list[str]:
    """The releases of a requirer that were passed over for a reason a flag could change, grouped."""
    groups: dict[Unavailable, list[Version]] = defaultdict(list)
    for version, reason in policy.record.unavailable.get(NormalizedName(name), {}).items():
        if reason.kind in _ADMISSIBLE:
            groups[reason].append(version)
    ordered = sorted(groups.items(), key=lambda item: max(item[1]), reverse=True)[:MAX_REASON_GROUPS]
    return [f"{name}: passed over {_span(versions)}: {reason.phrase()}" for reason, versions in ordered]


def _group_by_parent(infos: Iterable[Information]) -> dict[str | None, list[Information]]:
    groups: dict[str | None, list[Information]] = defaultdict(list)
    for info in infos:
        groups[info.parent.name if info.parent is not None else None].append(info)
    return groups


def _describe_requirers(parent_name: str | None, group: list[Information], policy: Policy, roots: Sequence[Req]) -> str:
    wanted = " and ".join(sorted({str(info.requirement) for info in group}))
    # Why a release requires it, when the requirement is derived (from a wheel's builds per torch version).
    own = sorted({info.requirement.asked_by.builds for info in group
                  if info.parent is not None and info.requirement.asked_by.builds and info.requirement.asked_by.is_release(info.parent)})
    members = sorted({f"{info.requirement.asked_by.release[0]}=={info.requirement.asked_by.release[1]}'s wheel has "
                      f"{info.requirement.asked_by.builds}" for info in group
                      if info.requirement.on_behalf and info.requirement.asked_by.release is not None})
    notes = ([f"its wheel has {'; '.join(own)}"] if own else []) + members
    if notes:
        wanted += f" ({'; '.join(notes)})"
    if parent_name is None:
        origins = sorted({str(info.requirement.asked_by) for info in group})
        return f"{wanted} is required by {', '.join(origins)}"
    versions = sorted({info.parent.version for info in group if info.parent is not None})
    how = _how_required(parent_name, versions, roots, policy.record)
    if len(versions) > 1 and set(policy.offered(NormalizedName(parent_name))) <= set(versions):
        span = f"{versions[0]} … {versions[-1]}" if len(versions) > 2 else " and ".join(map(str, versions))
        return f"every {parent_name} that fits ({span}){how} requires {wanted}"
    return f"{parent_name} {', '.join(map(str, versions))}{how} requires {wanted}"


def _how_required(name: str, versions: Sequence[Version], roots: Sequence[Req], record: Record) -> str:
    for root in roots:
        if root.name == name:
            return f", wanted as {root} by {root.asked_by},"
    for (parent, version, _), requirements in record.dependencies.items():
        if parent != name and any(r.name == name and any(r.admits(v) for v in versions) for r in requirements):
            return f" (required by {parent} {version})"
    return ""


def _describe_availability(name: str, infos: list[Information], policy: Policy, major: int) -> str:
    project = NormalizedName(name)
    if project in policy.record.missing:
        return f"{name}: {policy.record.missing[project].absence()}"
    if project in policy.record.mismatched:
        return f"{name}: no release fits CUDA {major}: it is a CUDA {policy.record.mismatched[project]} package"
    offered = policy.offered(project)
    unavailable = policy.record.unavailable.get(project, {})
    if offered:
        span = ", ".join(str(v) for v in offered[:5]) + (" …" if len(offered) > 5 else "")
        return f"{name}: the releases that fit CUDA {major} ({span}) satisfy none of these together"
    if not unavailable:
        specifiers = sorted({str(i.requirement.specifier) or "any version" for i in infos})
        return f"{name}: no release matches {' and '.join(specifiers)}{_releases_there_are(project, infos, policy)}"
    groups: dict[Unavailable, list[Version]] = defaultdict(list)
    for version, reason in unavailable.items():
        groups[reason].append(version)
    head = _no_release(name, groups, policy, major)
    if len(groups) == 1:
        return f"{head}: every matching release is {next(iter(groups)).phrase()}{_yanked_hint(groups)}"
    # The groups with the newest releases first: those are the ones a reader expected to be picked.
    ordered = sorted(groups.items(), key=lambda item: max(item[1]), reverse=True)
    parts = [f"{_span(versions)} {reason.phrase()}" for reason, versions in ordered[:MAX_REASON_GROUPS]]
    rest = [version for _, versions in ordered[MAX_REASON_GROUPS:] for version in versions]
    if rest:
        parts.append(f"{_span(rest)} for other reasons")
    return f"{head}: " + "; ".join(parts) + _yanked_hint(groups)


_CUDA_REASONS = frozenset({"other-major", "no-major"})


def _no_release(name: str, groups: Mapping[Unavailable, list[Version]], policy: Policy, major: int) -> str:
    """`no release fits CUDA 13` only where the major is why; else what the releases lack, for the target."""
    kinds = {reason.kind for reason in groups}
    if kinds <= _CUDA_REASONS:
        return f"{name}: no release fits CUDA {major}"
    where = f"Python {policy.environment.python}" if kinds == {"requires-python"} else str(policy.environment)
    return f"{name}: no release can be installed on {where}" + (f" for CUDA {major}" if kinds & _CUDA_REASONS else "")


def _yanked_hint(groups: Mapping[Unavailable, list[Version]]) -> str:
    if not any(reason.kind == "yanked" for reason in groups):
        return ""
    return " (a yanked release is used only where a requirement pins it with ==, as pip and uv do)"


def _releases_there_are(name: NormalizedName, infos: list[Information], policy: Policy) -> str:
    """` (releases: 1.5.1, 1.4.0, …; nearest to 9.9.9: 1.5.1)`: the newest releases the index has, and
    those on either side of a version pinned with `==`."""
    query = policy.record.queries.get(name)
    versions = sorted({release.version for release in query[0].releases}, reverse=True) if query else []
    if not versions:
        return ""
    shown = ", ".join(map(str, versions[:NEWEST_SHOWN])) + (f" … ({len(versions)} in all)" if len(versions) > NEWEST_SHOWN else "")
    nearest = []
    for pinned in sorted({Version(s.version) for i in infos for s in i.requirement.specifier
                          if s.operator == "==" and not s.version.endswith(".*")}):
        below, above = [v for v in versions if v < pinned][:1], [v for v in versions if v > pinned][-1:]
        nearest.append(f"nearest to {pinned}: {' and '.join(map(str, (*below, *above)))}")
    return f" (releases, newest first: {shown}{''.join(f'; {n}' for n in nearest)})"


def _span(versions: list[Version]) -> str:
    """`3 (0.18.9 … 0.18.11)`: how many releases, newest and oldest."""
    ordered = sorted(versions)
    if len(ordered) == 1:
        return f"1 ({ordered[0]})"
    return f"{len(ordered)} ({ordered[0]} … {ordered[-1]})"
