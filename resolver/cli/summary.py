"""The lines `compile` prints when it is done: per major, what was written and what changed."""

from __future__ import annotations

from collections.abc import Iterator

from ..commands.compile import CompileResult, LockOutcome
from ..commands.options import CompileRequest
from ..files.changes import compare
from ..files.sets import display_path
from ..index.http import Stats


def summarize(result: CompileResult, request: CompileRequest) -> Iterator[str]:
    for outcome in result.outcomes:
        changes = compare(outcome.old, outcome.new)
        if not outcome.changed:
            status = "unchanged"
        elif request.dry_run:
            status = "would change (dry run)" if outcome.old else "would be created (dry run)"
        else:
            status = "written" if outcome.old else "created"
        packages = len({pin.name for pin in outcome.new.pins})
        yield f"CUDA {outcome.major}: {display_path(outcome.path)} {status}: {packages} packages; {changes.counts()}"
        if outcome.old is not None:  # a new file's every line is an addition: the count says enough
            for change in changes.versions:
                yield f"  {change.kind:<10} {change.describe()}"
        for excluded in changes.excluded_added:
            yield f"  excluded   {excluded.name} (required by {excluded.required_by})"
        for swap in changes.swapped_added:
            yield f"  swapped    {swap.original} -> {swap.replacement}"
        if outcome.lock is not None:
            yield f"CUDA {outcome.major}: {display_path(outcome.lock.path)} {_lock_status(outcome.lock, request.dry_run)}"
    for major, reason in sorted(result.skipped_majors.items()):
        yield f"CUDA {major}: skipped ({reason})"
    if result.environment_sources:
        yield f"from the environment: {'; '.join(result.environment_sources)}"


def _lock_status(lock: LockOutcome, dry_run: bool) -> str:
    if not lock.changed:
        return "unchanged"
    if dry_run:
        return "would be created (dry run)" if lock.created else "would change (dry run)"
    return "created" if lock.created else "written"


def network_line(stats: Stats, seconds: float | None = None) -> str:
    """What the network did: requests, megabytes, metadata reads (and the time taken, at the end)."""
    reads = sum(stats.metadata_reads.values())
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    return f"{stats.requests} requests, {stats.bytes / 1e6:.1f} MB, {reads} metadata reads{took}"

