"""What changed between two constraints documents: the reviewer's view (`diff`) and `compile`'s summary."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from .constraints import ConstraintsDocument, ExcludedLine, IndexLine, SourceBuild, SwapLine


@dataclass(frozen=True)
class VersionChange:
    name: str
    marker: str
    old: Version | None
    new: Version | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "upgraded" if self.new > self.old else "downgraded"

    def describe(self) -> str:
        where = f"  ; {self.marker}" if self.marker else ""
        if self.old is None:
            return f"{self.name} {self.new}{where}"
        if self.new is None:
            return f"{self.name} {self.old}{where}"
        return f"{self.name} {self.old} -> {self.new}{where}"


@dataclass(frozen=True)
class HeaderChange:
    """A header line that changed between two files of one major: inputs, targets, options or command."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Changes:
    versions: tuple[VersionChange, ...] = ()
    excluded_added: tuple[ExcludedLine, ...] = ()
    excluded_removed: tuple[ExcludedLine, ...] = ()
    swapped_added: tuple[SwapLine, ...] = ()
    swapped_removed: tuple[SwapLine, ...] = ()
    source_builds_added: tuple[SourceBuild, ...] = ()
    source_builds_removed: tuple[SourceBuild, ...] = ()
    # The `indexes` block's lines (what install asks), each with the pins it serves.
    indexes_added: tuple[IndexLine, ...] = ()
    indexes_removed: tuple[IndexLine, ...] = ()
    header: tuple[HeaderChange, ...] = ()

    def of_kind(self, kind: str) -> list[VersionChange]:
        return [c for c in self.versions if c.kind == kind]

    @property
    def empty(self) -> bool:
        return not (
            self.versions or self.excluded_added or self.excluded_removed or self.swapped_added
            or self.swapped_removed or self.source_builds_added or self.source_builds_removed or self.header
            or self.indexes_added or self.indexes_removed
        )

    def counts(self) -> str:
        parts = [f"{len(self.of_kind(k))} {k}" for k in ("added", "removed", "upgraded", "downgraded") if self.of_kind(k)]
        return ", ".join(parts) if parts else "no version changes"


def compare(old: ConstraintsDocument | None, new: ConstraintsDocument | None) -> Changes:
    """Changes from `old` to `new`; either may be missing (a file added or removed)."""
    old_pins = {(p.name, p.marker): p.version for p in old.pins} if old else {}
    new_pins = {(p.name, p.marker): p.version for p in new.pins} if new else {}
    changes = []
    for key in sorted(old_pins.keys() | new_pins.keys()):
        before, after = old_pins.get(key), new_pins.get(key)
        if before == after:
            continue
        name, marker = key
        changes.append(VersionChange(name, marker, before, after))
    changes = _pair_marker_moves(changes)
    old_excluded, new_excluded = set(old.excluded if old else ()), set(new.excluded if new else ())
    old_swapped, new_swapped = set(old.swapped if old else ()), set(new.swapped if new else ())
    old_builds, new_builds = set(old.source_builds if old else ()), set(new.source_builds if new else ())
    old_indexes, new_indexes = old.indexes if old else (), new.indexes if new else ()
    return Changes(
        versions=tuple(changes),
        excluded_added=tuple(sorted(new_excluded - old_excluded)),
        excluded_removed=tuple(sorted(old_excluded - new_excluded)),
        swapped_added=tuple(sorted(new_swapped - old_swapped)),
        swapped_removed=tuple(sorted(old_swapped - new_swapped)),
        source_builds_added=tuple(sorted(new_builds - old_builds)),
        source_builds_removed=tuple(sorted(old_builds - new_builds)),
        indexes_added=tuple(line for line in new_indexes if line not in old_indexes),
        indexes_removed=tuple(line for line in old_indexes if line not in new_indexes),
        header=tuple(_header_changes(old, new)) if old and new else (),
    )


def _header_changes(old: ConstraintsDocument, new: ConstraintsDocument) -> list[HeaderChange]:
    def inputs(document: ConstraintsDocument) -> str:
        return f"{', '.join(document.inputs)} (sha256 {document.digest})"

    fields = (
        ("command", old.command, new.command),
        ("inputs", inputs(old), inputs(new)),
        ("targets", old.targets, new.targets),
        ("options", old.options, new.options),
        ("index strategy", old.index_strategy, new.index_strategy),
    )
    return [HeaderChange(name, before, after) for name, before, after in fields if before != after]


def _pair_marker_moves(changes: list[VersionChange]) -> list[VersionChange]:
    """A project whose only line changed its marker and version reads better as one change."""
    by_name: dict[str, list[VersionChange]] = {}
    for change in changes:
        by_name.setdefault(change.name, []).append(change)
    paired: list[VersionChange] = []
    for name, group in by_name.items():
        removed = [c for c in group if c.kind == "removed"]
        added = [c for c in group if c.kind == "added"]
        if len(group) == 2 and len(removed) == 1 and len(added) == 1:
            paired.append(VersionChange(name, added[0].marker, removed[0].old, added[0].new))
        else:
            paired.extend(group)
    return paired
