"""What changed between two constraints documents: the reviewer's view (`diff`) and `compile`'s summary."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
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
    # The change in words, where the lines alone would say it in digests (inputs whose content changed).
    words: str = ""


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
    changes = [HeaderChange("command", old.command, new.command)]
    if old.inputs != new.inputs:
        changes.append(HeaderChange("inputs", ", ".join(old.inputs), ", ".join(new.inputs)))
    elif old.digest != new.digest:
        before, after = recorded_parts(old), recorded_parts(new)
        words = "; ".join(input_changes(before, after)) if before is not None and after is not None else ""
        changes.append(HeaderChange("inputs", old.digest, new.digest, words or "the content of an input changed"))
    changes += [HeaderChange("targets", old.targets, new.targets), HeaderChange("options", old.options, new.options)]
    changes.append(HeaderChange("index strategy", old.index_strategy, new.index_strategy))
    return [change for change in changes if change.old != change.new]


Parts = Sequence[tuple[str, str]]


def recorded_parts(document: ConstraintsDocument) -> Parts | None:
    """The digest of each input (file, or the configuration) a header records; one input file and nothing
    else is its `inputs` digest itself. None for a header that cannot say (an older release's)."""
    if document.input_digests:
        return document.input_digests
    if document.outdated_header or len(document.inputs) != 1 or document.inputs[0].startswith("-c "):
        return None
    return ((document.inputs[0], document.digest),)


def input_changes(before: Parts, after: Parts) -> list[str]:
    """Which inputs changed, in words: `requirements/common.txt changed`, `… is read now`, `… is no longer read`."""
    old, new = _by_name(before), _by_name(after)
    words = []
    for name in dict.fromkeys((*old, *new)):
        what = "the configuration in pyproject.toml" if name.startswith("[tool.") else name
        if name not in old:
            words.append(f"{what} {'is read' if what == name else 'shapes it'} now")
        elif name not in new:
            words.append(f"{what} {'is no longer read' if what == name else 'no longer shapes it'}")
        elif old[name] != new[name]:
            words.append(f"{what} ({name}) changed" if what != name else f"{name} changed")
    return words


def _by_name(parts: Parts) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, digest in parts:
        found[name] = (*found.get(name, ()), digest)
    return found


def option_changes(before: str, after: str) -> list[str]:
    """An `options:` line's change in words: `--pre added`, `--allow-sdist removed`, `--exclude-newer
    2026-02-01 (was 2026-01-01)`."""
    old, new = _option_groups(before), _option_groups(after)
    words = []
    for flag in dict.fromkeys((*old, *new)):
        if flag not in old:
            words.append(f"{_shown(flag, new[flag])} added")
        elif flag not in new:
            words.append(f"{_shown(flag, old[flag])} removed")
        elif old[flag] != new[flag]:
            added, removed = [v for v in new[flag] if v not in old[flag]], [v for v in old[flag] if v not in new[flag]]
            if len(added) == len(removed) == 1:
                words.append(f"{flag} {added[0]} (was {removed[0]})")
            else:
                words += [f"{flag} {value} added" for value in added] + [f"{flag} {value} removed" for value in removed]
    return words


def _option_groups(line: str) -> dict[str, list[str]]:
    """`--a x --a y --b` -> {"--a": ["x", "y"], "--b": [""]}."""
    groups: dict[str, list[str]] = {}
    flag = ""
    for word in shlex.split(line):
        if word.startswith("--"):
            flag = word
            groups.setdefault(flag, [])
            groups[flag].append("")
        elif flag:
            groups[flag][-1] = word
    return groups


def _shown(flag: str, values: list[str]) -> str:
    return ", ".join(f"{flag} {value}".rstrip() for value in values)


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
