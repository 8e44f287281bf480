"""`check --online`: releases newer than the pins that a file's top-level requirements allow for its
major (project pages only), asked of the same rules `compile` resolves with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import Version

from ..errors import Finding, ProjectNotFound
from ..model.targets import environment_grid
from ..resolve.candidates import Req
from ..resolve.policy import Policy
from ..resolve.selection import Selector
from ..resolve.source import MetadataSource
from ..resolve.swaps import roots_for
from .check import CheckedFile


@dataclass(frozen=True)
class NewerRelease:
    """A release newer than the pin that the file's requirements allow for its major."""

    shown: str
    major: int
    name: str
    pinned: tuple[Version, ...]
    newest: Version
    wanted_by: str  # "lmcache>=0.3.9 (requirements/kv_connectors.txt:3)"


def newer_releases(checked: CheckedFile, source: MetadataSource) -> list[NewerRelease]:
    """Releases newer than the pins that the file's top-level requirements allow (project pages only).

    The newest candidate is what the target's own rules (the same `Policy` compile resolves with) offer
    first for the requirement and its `-c` constraints, with no pin preferred.
    """
    if checked.document is None or checked.request is None or checked.major_input is None:
        return []
    document, request, major_input = checked.document, checked.request, checked.major_input
    environments = environment_grid(request.python_versions, request.platforms)
    families = request.config.family_table()
    pre = request.selection.pre or bool(checked.requirements_input and checked.requirements_input.pre)
    found: dict[str, NewerRelease] = {}
    for environment in environments:
        siblings = tuple(e for e in environments if e.python == environment.python)
        roots, constraints = roots_for(major_input, environment)
        selector = Selector(document.cuda_major, environment, siblings, families, request.selection)
        policy = Policy(selector, constraints, pre=pre)
        pins = document.pins_for(environment.markers)
        for root in roots:
            if root.name not in pins:
                continue
            newest = _newest(source, policy, root)
            if newest is None or newest <= pins[root.name]:
                continue
            earlier = found.get(root.name)
            pinned = tuple(sorted({pins[root.name], *(earlier.pinned if earlier else ())}))
            best = max(newest, earlier.newest) if earlier else newest
            found[root.name] = NewerRelease(checked.shown, document.cuda_major, root.name, pinned, best, f"{root} ({root.origin})")
    return [found[name] for name in sorted(found)]


def _newest(source: MetadataSource, policy: Policy, requirement: Req) -> Version | None:
    try:
        project = source.project(requirement.name)
    except ProjectNotFound:
        return None
    first = next(policy.candidates_in(project, [requirement]), None)
    return first.version if first is not None else None


def newer_findings(newer: Iterable[NewerRelease], commands: dict[str, str]) -> list[Finding]:
    """`--strict`: each newer release as a finding whose fix upgrades exactly those projects."""
    by_file: dict[str, list[NewerRelease]] = defaultdict(list)
    for release in newer:
        by_file[release.shown].append(release)
    findings = []
    for shown, releases in by_file.items():
        upgrade = " ".join(f"--upgrade-package {r.name}" for r in releases)
        findings += [Finding(shown, describe_newer(r), f"{commands[shown]} {upgrade}") for r in releases]
    return findings


def describe_newer(release: NewerRelease) -> str:
    pinned = ", ".join(map(str, release.pinned))
    return f"{release.name} {pinned} -> {release.newest} (allowed by {release.wanted_by})"
