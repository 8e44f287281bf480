"""`diff`: the reviewer's view of two constraint sets, as plain text or as a PR body.

Pure: it compares what `constraint_sets` read (per CUDA major, with `changes.compare`) and renders the
result; git and the filesystem stay at that edge. A version change that follows another (its `# via`
parent changed too: the 13 NVIDIA libraries of a torch moved by hand) is listed under that cause. Then,
when this change made them differ, the packages that are not CUDA variants but are pinned differently
across the majors of the new set (a reviewer should see when cu12 and cu13 got different `numpy`). The
output is deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from ..files.changes import Changes, HeaderChange, VersionChange, compare, option_changes
from ..files.constraints import ConstraintsDocument, IndexLine
from ..files.pylock import LockedFile, LockedPackage, disagreements
from ..files.sets import ConstraintSet, NamedDocument, NamedLock
from ..model.families import FamilyTable

KINDS = ("upgraded", "downgraded", "added", "removed")
T = TypeVar("T")


@dataclass(frozen=True)
class MajorDiff:
    major: int
    old: NamedDocument | None
    new: NamedDocument | None
    changes: Changes
    # What changed in the lock file beside it, as (what, detail) rows (see `lock_rows`).
    lock: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "unchanged" if self.changes.empty and not self.lock else "changed"

    @property
    def shown(self) -> str:
        return (self.new or self.old).shown  # type: ignore[union-attr]

    def summary(self) -> str:
        if self.status in ("added", "removed"):
            document = (self.new or self.old).document  # type: ignore[union-attr]
            return f"file {self.status} ({len({p.name for p in document.pins})} packages)"
        if self.status == "unchanged":
            return "no changes"
        parts = [f"{len(self.changes.of_kind(k))} {k}" for k in KINDS if self.changes.of_kind(k)]
        others = len(other_changes(self.changes)) + len(self.lock)
        if others:
            parts.append(f"{others} other change{'s' if others > 1 else ''}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Cause:
    """A version change, and the changes that follow it (whose `# via` leads to it)."""

    change: VersionChange
    followers: tuple[VersionChange, ...] = ()


def causes(major: MajorDiff) -> list[Cause]:
    """The version changes of a major, each follower under the first changed parent its `# via` leads to."""
    versions = _listed_versions(major)
    changed = {c.name for c in versions}
    parents: dict[str, set[str]] = {}
    for named in (major.old, major.new):
        for pin in named.document.pins if named is not None else ():
            parents.setdefault(pin.name, set()).update(p for p in pin.via if not p.startswith("-"))

    def root(name: str, seen: frozenset[str] = frozenset()) -> str:
        for parent in sorted(parents.get(name, set()) & changed - seen - {name}):
            return root(parent, seen | {name})
        return name

    roots = {c.name: root(c.name) for c in versions}
    followers: dict[str, list[VersionChange]] = {}
    for change in versions:
        if roots[change.name] != change.name:
            followers.setdefault(roots[change.name], []).append(change)
    return [Cause(c, tuple(followers.get(c.name, ()))) for c in versions if roots[c.name] == c.name]


def describe_cause(cause: Cause) -> str:
    follow = len(cause.followers)
    if not follow:
        return cause.change.describe()
    return cause.change.describe() + (", and 1 package that follows it" if follow == 1 else f", and {follow} packages that follow it")


@dataclass(frozen=True)
class AcrossMajors:
    """A package that is not a CUDA variant, pinned differently in the majors of the new set."""

    name: str
    # (major, "2.2.6" or "2.2.6 ; marker, 2.3.0 ; marker") for every major that pins it
    pins: tuple[tuple[int, str], ...]
    # True when this change made it differ (or differ otherwise than before)
    changed: bool


@dataclass(frozen=True)
class Diff:
    old_label: str
    new_label: str
    majors: tuple[MajorDiff, ...]
    across_majors: tuple[AcrossMajors, ...]
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return all(m.status == "unchanged" for m in self.majors)


def diff_sets(old: ConstraintSet, new: ConstraintSet, families: FamilyTable) -> Diff:
    majors = tuple(
        MajorDiff(
            major,
            old.files.get(major),
            new.files.get(major),
            compare(_document(old.files.get(major)), _document(new.files.get(major))),
            tuple(lock_rows(old.locks.get(major), new.locks.get(major), new.files.get(major))),
        )
        for major in sorted(old.files.keys() | new.files.keys())
    )
    notes = tuple(note for note in (old.note, new.note) if note)
    return Diff(old.label, new.label, majors, across_majors(old, new, families), notes)


def lock_rows(old: NamedLock | None, new: NamedLock | None, constraints: NamedDocument | None) -> Iterator[tuple[str, str]]:
    """A lock file added or removed; a locked version whose files changed (a file with another sha256 than
    before is the change to look at); and where the new lock does not say what its constraints file says."""
    if new is None:
        if old is not None:
            yield "lock", f"- {old.shown} removed"
        return
    if old is None:
        yield "lock", f"+ {new.shown} added ({len({p.name for p in new.document.packages})} packages)"
    else:
        before = {(p.name, p.version, p.marker): p for p in old.document.packages}
        for package in new.document.packages:
            was = before.get((package.name, package.version, package.marker))
            if was is not None:
                yield from (("lock", row) for row in _file_changes(was, package))
    problems = disagreements(new.document, constraints.document, constraints.shown) if constraints is not None else []
    if new.document.hand_edited:
        problems.insert(0, "was edited by hand")
    yield from (("lock", f"! {new.shown}: {problem}") for problem in problems)


def _file_changes(old: LockedPackage, new: LockedPackage) -> Iterator[str]:
    def files(package: LockedPackage) -> dict[str, LockedFile]:
        return {file.name: file for file in (*package.wheels, *((package.sdist,) if package.sdist else ()))}

    before, after = files(old), files(new)
    pin = f"{new.name}=={new.version}"
    for name in sorted(before.keys() & after.keys()):
        was, now = before[name], after[name]
        if was.sha256 != now.sha256:
            yield f"~ {pin}: {name} has another sha256 ({now.sha256[:16]}…, was {was.sha256[:16]}…)"
        if _host(was.url) != _host(now.url):
            yield f"~ {pin}: {name} is now downloaded from {_host(now.url)} (was {_host(was.url)})"
    added, removed = len(after.keys() - before.keys()), len(before.keys() - after.keys())
    if added or removed:
        yield f"~ {pin}: {added} file{'s' * (added != 1)} added, {removed} removed"


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url
    except ValueError:
        return url


def _document(named: NamedDocument | None) -> ConstraintsDocument | None:
    return named.document if named is not None else None


def across_majors(old: ConstraintSet, new: ConstraintSet, families: FamilyTable) -> tuple[AcrossMajors, ...]:
    new_pins, old_pins = _pins_by_name(new), _pins_by_name(old)
    found = []
    for name in sorted(new_pins):
        per_major = new_pins[name]
        variant = families.classify(name)
        if len(per_major) < 2 or len(set(per_major.values())) < 2 or (variant is not None and variant.role == "member"):
            continue
        before = {major: text for major, text in old_pins.get(name, {}).items() if major in per_major}
        found.append(AcrossMajors(name, tuple(sorted(per_major.items())), before != per_major))
    return tuple(found)


def _pins_by_name(constraint_set: ConstraintSet) -> dict[str, dict[int, str]]:
    found: dict[str, dict[int, list[str]]] = {}
    for major, named in constraint_set.files.items():
        for pin in named.document.pins:
            found.setdefault(pin.name, {}).setdefault(major, []).append(_pin_text(str(pin.version), pin.marker))
    return {name: {major: ", ".join(texts) for major, texts in majors.items()} for name, majors in found.items()}


def _pin_text(version: str, marker: str) -> str:
    return f"{version} ; {marker}" if marker else version


def other_changes(changes: Changes) -> list[tuple[str, str]]:
    """Everything but version changes, as (what, detail) rows, in a fixed order; a line that changed (an
    exclusion now required by the bumped nixl) is one row, not a removal and an addition."""
    rows = [("excluded", detail) for detail in _paired(
        changes.excluded_added, changes.excluded_removed, lambda e: e.name,
        lambda e: f"{e.name} (required by {e.required_by})",
        lambda new, old: f"{new.name} (required by {new.required_by}, was {old.required_by})")]
    rows += [("swapped", detail) for detail in _paired(
        changes.swapped_added, changes.swapped_removed, lambda s: s.original_name,
        lambda s: f"{s.original} -> {s.replacement} ({s.origin})",
        lambda new, old: f"{new.original} -> {new.replacement} ({new.origin}), was {old.original} -> {old.replacement} ({old.origin})")]
    rows += [("from source", detail) for detail in _paired(
        changes.source_builds_added, changes.source_builds_removed, lambda b: b.name,
        lambda b: f"{b.name}=={b.version} on {b.platforms}",
        lambda new, old: f"{new.name}=={new.version} on {new.platforms} (was {old.version} on {old.platforms})")]
    rows += [("index", f"+ {_index_line(line)}") for line in changes.indexes_added]
    rows += [("index", f"- {_index_line(line)}") for line in changes.indexes_removed]
    rows += [(h.field, _header_in_words(h)) for h in changes.header]
    return rows


def _index_line(line: IndexLine) -> str:
    return f"{line.kind} {line.url}" + (f" (serves {', '.join(line.serves)})" if line.serves else "")


def _paired(added: Sequence[T], removed: Sequence[T], key: Callable[[T], str], line: Callable[[T], str],
            changed: Callable[[T, T], str]) -> list[str]:
    """`+ line` and `- line` rows, but one `~` row for a key with exactly one line added and one removed."""
    def count(lines: Sequence[T]) -> Counter[str]:
        return Counter(key(item) for item in lines)

    added_keys, removed_keys = count(added), count(removed)
    pairs = {k for k in added_keys if added_keys[k] == 1 and removed_keys.get(k) == 1}
    old = {key(item): item for item in removed if key(item) in pairs}
    rows = [f"~ {changed(item, old[key(item)])}" if key(item) in pairs else f"+ {line(item)}" for item in added]
    return rows + [f"- {line(item)}" for item in removed if key(item) not in pairs]


def _header_in_words(change: HeaderChange) -> str:
    if change.words:
        return change.words
    if change.field == "command":
        return f"regenerated with `{change.new}` (was `{change.old}`)"
    if change.field == "options":
        return "; ".join(option_changes(change.old, change.new))
    return f"{change.field} now {change.new} (were {change.old})"


def summary_line(diff: Diff) -> str:
    if not diff.majors:
        return "No constraints files on either side."
    if diff.empty:
        return "No changes to the constraints."
    return " · ".join(f"CUDA {m.major}: {m.summary()}" for m in diff.majors)


# -- text -------------------------------------------------------------------------------------------------


def render_text(diff: Diff) -> str:
    return "".join(line + "\n" for line in _text_lines(diff))


def _text_lines(diff: Diff) -> Iterator[str]:
    yield f"{diff.old_label} -> {diff.new_label}: {summary_line(diff)}"
    yield from (f"note: {note}" for note in diff.notes)
    for major in diff.majors:
        yield f"CUDA {major.major} ({major.shown}): {major.summary()}"
        for cause in causes(major):
            yield f"  {cause.change.kind:<12}{describe_cause(cause)}" + (":" if cause.followers else "")
            yield from (f"  {'':<12}  {follower.describe()}" for follower in cause.followers)
        for what, detail in (*other_changes(major.changes), *major.lock):
            yield f"  {what:<12}{detail}"
    if any(entry.changed for entry in diff.across_majors):
        yield "Not CUDA variants, pinned differently across majors:"
        width = max(len(a.name) for a in diff.across_majors) + 2
        for entry in diff.across_majors:
            pins = " | ".join(f"cu{major} {text}" for major, text in entry.pins)
            yield f"  {entry.name:<{width}}{pins}" + ("   (changed here)" if entry.changed else "")


def _listed_versions(major: MajorDiff) -> list[VersionChange]:
    """Version changes grouped by kind; a removed file lists its pins as removed, an added one as added."""
    return [change for kind in KINDS for change in major.changes.of_kind(kind)]


# -- markdown ---------------------------------------------------------------------------------------------


def render_markdown(diff: Diff) -> str:
    return "".join(line + "\n" for line in _markdown_lines(diff))


def _markdown_lines(diff: Diff) -> Iterator[str]:
    yield "## Constraints changes"
    yield ""
    yield f"`{_cell(diff.old_label)}` → `{_cell(diff.new_label)}`: **{_cell(summary_line(diff))}**"
    for note in diff.notes:
        yield ""
        yield f"> {note}"
    for major in diff.majors:
        if major.status == "unchanged":
            continue
        yield ""
        yield f"### CUDA {major.major} — `{_cell(major.shown)}`: {major.summary()}"
        versions = _listed_versions(major)
        if versions:
            yield from _folded(major.status in ("added", "removed"), f"{len(versions)} packages", _version_table(causes(major)))
        others = [*other_changes(major.changes), *major.lock]
        if others:
            yield ""
            yield "| what | change |"
            yield "|---|---|"
            yield from (f"| {what} | {_cell(detail)} |" for what, detail in others)
    if any(entry.changed for entry in diff.across_majors):
        majors = sorted({major for entry in diff.across_majors for major, _ in entry.pins})
        yield ""
        yield "### Not CUDA variants, pinned differently across majors"
        yield ""
        yield "| package | " + " | ".join(f"cu{m}" for m in majors) + " | by this change |"
        yield "|---|" + "---|" * len(majors) + "---|"
        for entry in diff.across_majors:
            pins = dict(entry.pins)
            cells = " | ".join(f"`{_cell(pins[m])}`" if m in pins else "" for m in majors)
            yield f"| `{entry.name}` | {cells} | {'yes' if entry.changed else 'no'} |"


def _version_table(grouped: list[Cause]) -> list[str]:
    """One row per change, followers under their cause (`↳`); a marker column only when a change has one."""
    markers = any(c.marker for cause in grouped for c in (cause.change, *cause.followers))
    rows = ["| change | package | old | new |" + (" marker |" if markers else ""), "|---|---|---|---|" + ("---|" if markers else "")]
    for cause in grouped:
        for change, follows in ((cause.change, False), *((f, True) for f in cause.followers)):
            old = f"`{change.old}`" if change.old is not None else ""
            new = f"`{change.new}`" if change.new is not None else ""
            marker = (f" `{_cell(change.marker)}` |" if change.marker else " |") if markers else ""
            name = f"↳ `{change.name}`" if follows else f"`{change.name}`"
            rows.append(f"| {change.kind} | {name} | {old} | {new} |{marker}")
    return rows


def _folded(fold: bool, title: str, lines: list[str]) -> Iterator[str]:
    yield ""
    if fold:
        yield f"<details><summary>{title}</summary>"
        yield ""
    yield from lines
    if fold:
        yield ""
        yield "</details>"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
