"""What a refreeze of a recorded case would change in its expectation, and whether it may (tests/frozen.py).

A case's expectation is per CUDA major: its pin lines, exclusions and swaps. A refreeze that gives other
ones does not overwrite them: `differences` says what changed, per major (pins added, removed, changed;
exclusions and swaps added or removed; majors that appeared or went), and `merged` keeps the recorded
expectation unless the change is accepted. A case without an expectation gets the new one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from packaging.requirements import Requirement

Expectation = Mapping[str, Mapping[str, Any]]  # major -> {"pins": [...], "excluded": [...], "swapped": [...]}


def differences(old: Expectation, new: Expectation) -> list[str]:
    """One line per change from `old` to `new`, majors in order: `CUDA 12: + name==1.0`, `- name==1.0`,
    `~ name==1.0 -> name==2.0`, `+ excluded: ...`, `- swapped: ...`, `CUDA 14: new` / `CUDA 11: gone`."""
    lines = []
    for major in sorted(set(old) | set(new), key=int):
        if major not in old:
            lines.append(f"CUDA {major}: new ({len(new[major].get('pins', []))} pins)")
        elif major not in new:
            lines.append(f"CUDA {major}: gone")
        else:
            lines += [f"CUDA {major}: {change}" for change in _major_changes(old[major], new[major])]
    return lines


def merged(document: Mapping[str, Any], new: Expectation, accept: bool) -> tuple[dict[str, Any], list[str]]:
    """The case document with the expectation a refreeze may write, and what changed. Without one
    recorded, `new` is written; a changed one only when `accept` is given (else it is kept as it was)."""
    old = document.get("expected")
    if not old:
        return {**document, "expected": new}, []
    changes = differences(old, new)
    return ({**document, "expected": new} if changes and accept else dict(document)), changes


def _major_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    before, after = _by_name(old.get("pins", [])), _by_name(new.get("pins", []))
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(f"+ {', '.join(after[name])}")
        elif name not in after:
            changes.append(f"- {', '.join(before[name])}")
        elif before[name] != after[name]:
            changes.append(f"~ {', '.join(before[name])} -> {', '.join(after[name])}")
    for key in ("excluded", "swapped"):
        was, now = old.get(key, []), new.get(key, [])
        changes += [f"+ {key}: {line}" for line in now if line not in was]
        changes += [f"- {key}: {line}" for line in was if line not in now]
    return changes


def _by_name(pins: Iterable[str]) -> dict[str, list[str]]:
    """Pin lines by project (a project pinned differently per platform has a line per marker)."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in pins:
        found[Requirement(line).name].append(line)
    return {name: sorted(lines) for name, lines in found.items()}
