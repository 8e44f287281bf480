"""`check --online`: what `compile --upgrade` would change today, per file, without writing anything.

A dry-run resolution of each file's own header command with `--upgrade`, so only the pins that would
really move are reported: a newer release that the resolution cannot use (lmcache 0.5.6 needs CUDA 13,
so it is never news for the CUDA 12 file) is not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ..errors import Finding
from ..files.changes import VersionChange, compare
from ..files.sets import display_path
from ..resolve.source import Indexes
from .check import CheckedFile
from .compile import compile_constraints
from .major_plan import read_input
from .options import CompileRequest


@dataclass(frozen=True)
class Upgrade:
    """The pins of one file that `compile --upgrade` would change."""

    shown: str
    major: int
    command: str
    changes: tuple[VersionChange, ...]


def would_upgrade(checked_files: Sequence[CheckedFile], index: Indexes, flags: CompileRequest | None = None) -> list[Upgrade]:
    """Each file's changes under `--upgrade` (files compiled by one command are resolved together).
    `flags`: index settings given to `check` that replace the files' own."""
    by_command: dict[str, list[CheckedFile]] = defaultdict(list)
    for checked in checked_files:
        if checked.document is not None and checked.request is not None:
            by_command[checked.document.command].append(checked)
    found = []
    for command, files in by_command.items():
        request = files[0].request
        assert request is not None
        request = replace(request, majors=tuple(sorted(c.major for c in files)), upgrade=True, dry_run=True, keep_going=False)
        if flags is not None:
            request = _with_index_flags(request, flags)
        result = compile_constraints(request, read_input(request), index)
        for outcome in result.outcomes:
            changes = compare(outcome.old, outcome.new).versions
            if changes:
                found.append(Upgrade(display_path(outcome.path), outcome.major, command, changes))
    return sorted(found, key=lambda u: u.major)


def _with_index_flags(request: CompileRequest, flags: CompileRequest) -> CompileRequest:
    return replace(
        request,
        index_url=flags.index_url_flag or request.index_url,
        index_url_flag=flags.index_url_flag or request.index_url_flag,
        extra_index_urls=(*flags.extra_index_urls, *request.extra_index_urls),
        find_links=(*flags.find_links, *request.find_links),
        no_index=flags.no_index or request.no_index,
        index_strategy=flags.index_strategy or request.index_strategy,
    )


def upgrade_findings(upgrades: Iterable[Upgrade]) -> list[Finding]:
    """`--strict`: each change as a finding whose fix is the file's command with --upgrade."""
    return [Finding(u.shown, change.describe(), f"{u.command} --upgrade") for u in upgrades for change in u.changes]
