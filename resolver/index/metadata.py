"""Core metadata (`METADATA`, `PKG-INFO`, PEP 658 files) read with the semantics of `email.parser`.

The header block goes through `packaging.metadata.parse_email`, which parses with the standard library's
email parser (RFC 822 continuation lines, a header folded over whitespace-only lines included) and sets
aside every field whose bytes are not UTF-8 or that appears more than once where it may appear once. Only
the header block is handed over: the description after the first empty line is where most of the bytes
are, and headers never depend on it.

A release whose metadata cannot be trusted is unusable, never silently shorter: an undecodable or
repeated field the resolver needs, a missing name or version, a `Requires-Dist` line that is not PEP 508,
or a control character left in a field once folded lines are joined (as RFC 5322 unfolds them) raise
`BadMetadata`. An extra whose name is not a valid one (PEP 685) cannot be asked for, and is left out.
A few legacy spellings that old releases published and that uv also reads are repaired, each with a note
the resolver turns into a warning:

- `pytz (>dev)`              -> `pytz>0.0.0dev`      (a bare `dev` version)
- `foo (>=1.0<2.0)`          -> `foo>=1.0,<2.0`      (a missing comma between clauses)
- `foo (>=1.0,)`             -> `foo>=1.0`           (a trailing comma)
- `foo (>=1.9.*)`            -> `foo>=1.9`           (a wildcard on an ordered comparison)
- `foo (!=3.0*)`             -> `foo!=3.0.*`         (a wildcard without its dot)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..model.distributions import CoreMetadata, MetadataSourceKind, parse_requirement

# The fields the resolver reads; any of them set aside by the parser makes the metadata unusable.
_NEEDED = {
    "metadata_version": "Metadata-Version",
    "name": "Name",
    "version": "Version",
    "requires_dist": "Requires-Dist",
    "requires_python": "Requires-Python",
    "provides_extra": "Provides-Extra",
    "dynamic": "Dynamic",
}
# The first empty line ends the header block; `\r\n`, `\r` and `\n` all end a line, as for the email parser.
_HEADER_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_SPECIFIER_START = re.compile(r"[<>=!~]")
# A line break followed by whitespace: a folded header line, joined again by removing the break.
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
# What no field may hold once unfolded: C0 controls but tab, DEL, C1 controls, the Unicode line separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_EXTRA = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # a normalized extra name (PEP 685)


class BadMetadata(Exception):
    """Metadata that cannot be trusted; the release that carries it is unusable."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def header_block(raw: bytes) -> bytes:
    """The bytes up to and including the first empty line (all of them when there is none)."""
    end = _HEADER_END.search(raw)
    return raw if end is None else raw[: end.end()]


def parse_core_metadata(raw: bytes, source: MetadataSourceKind = "none", require_static: bool = False) -> CoreMetadata:
    """The fields the resolver needs; `require_static` (an sdist's PKG-INFO) also demands static dependencies."""
    from packaging.metadata import parse_email  # here: it brings the email package, which a run from the cache never needs

    fields, unparsed = parse_email(header_block(raw))
    for header in _NEEDED.values():
        if header.lower() in unparsed:  # set aside under its header name
            raise BadMetadata(f"its {header} field {_why_unparsed(header, unparsed[header.lower()])}")
    name, version_text = fields.get("name"), fields.get("version")
    if not name or not version_text:
        raise BadMetadata("it has no Name or no Version")
    try:
        version = Version(version_text)
    except InvalidVersion:
        raise BadMetadata(f"its Version {version_text!r} is not a valid version") from None
    if require_static:
        _require_static(fields.get("metadata_version") or "1.0", fields.get("dynamic") or [])
    return checked_metadata(
        name, version, fields.get("requires_dist") or [], fields.get("requires_python"), fields.get("provides_extra") or [], source
    )


def checked_metadata(
    name: str,
    version: Version,
    requires_dist: Iterable[str],
    requires_python: str | None,
    provides_extra: Iterable[str],
    source: MetadataSourceKind,
) -> CoreMetadata:
    """Metadata from its fields, however they were read: every requirement valid PEP 508 (or repaired)."""
    notes: list[str] = []
    requires = tuple(_requirement(_unfolded(text, "Requires-Dist"), notes) for text in requires_dist)
    extras = {canonicalize_name(_unfolded(extra, "Provides-Extra").strip()) for extra in provides_extra}
    return CoreMetadata(
        name=canonicalize_name(_unfolded(name, "Name")),
        version=version,
        requires_dist=requires,
        requires_python=_requires_python(_unfolded(requires_python, "Requires-Python") if requires_python else None, notes),
        provides_extra=tuple(sorted(extra for extra in extras if _EXTRA.fullmatch(extra))),
        source=source,
        repairs=tuple(notes),
    )


def _unfolded(value: str, header: str) -> str:
    """A field's value with folded lines joined; BadMetadata for a control character left in it."""
    joined = _FOLD.sub("", value)
    if _CONTROL.search(joined):
        shown = repr(joined) if len(joined) <= 100 else repr(joined[:100]) + "..."
        raise BadMetadata(f"its {header} field holds a control character: {shown}")
    return joined


def _why_unparsed(header: str, values: list[str]) -> str:
    if len(values) > 1 and header not in ("Requires-Dist", "Provides-Extra", "Dynamic"):
        return f"appears {len(values)} times"
    return "is not valid UTF-8"


def _require_static(metadata_version: str, dynamic: list[str]) -> None:
    if _version_tuple(metadata_version) < (2, 2):
        raise BadMetadata(
            f"it is a source distribution with Metadata-Version {metadata_version}, which does not promise that "
            "its dependencies are final (2.2 or newer does)"
        )
    if "requires-dist" in {field.lower() for field in dynamic}:
        raise BadMetadata("it is a source distribution whose dependencies are computed at build time (Dynamic: Requires-Dist)")


def _requirement(text: str, notes: list[str]) -> str:
    """The requirement as PEP 508 text; a known legacy spelling repaired (with a note), else BadMetadata."""
    try:
        parse_requirement(text)
        return text
    except InvalidRequirement as error:
        problem = str(error).splitlines()[0]
    repaired = repair_requirement(text)
    if repaired is None:
        raise BadMetadata(f"its Requires-Dist {text!r} is not a valid requirement ({problem})")
    notes.append(f"Requires-Dist {text!r} read as {repaired!r}")
    return repaired


def _requires_python(text: str | None, notes: list[str]) -> str | None:
    if not text:
        return None
    try:
        SpecifierSet(text)
        return text
    except InvalidSpecifier:
        pass
    repaired = repair_specifier(text)
    if repaired is None:
        raise BadMetadata(f"its Requires-Python {text!r} is not a valid version specifier")
    notes.append(f"Requires-Python {text!r} read as {repaired!r}")
    return repaired


def repair_requirement(text: str) -> str | None:
    """A known legacy spelling of a requirement rewritten as valid PEP 508 text, or None."""
    name_end = _SPECIFIER_START.search(text)
    marker_at = text.find(";")
    if name_end is None or (0 <= marker_at < name_end.start()):
        return None
    head = text[: name_end.start()].rstrip()
    rest = text[name_end.start() :]
    marker = ""
    if ";" in rest:
        rest, marker = rest.split(";", 1)
        marker = " ; " + marker.strip()
    parenthesised = head.endswith("(") and rest.rstrip().endswith(")")
    if parenthesised:
        head, rest = head[:-1].rstrip(), rest.rstrip()[:-1]
    specifier = repair_specifier(rest)
    if specifier is None:
        return None
    repaired = f"{head}{specifier}{marker}"
    try:
        Requirement(repaired)
    except InvalidRequirement:
        return None
    return repaired


_REPAIRS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"(>=|<=|>|<|==|!=)\s*dev\b"), r"\g<1>0.0.0dev"),
    (re.compile(r"(\d)\s*(<=|>=|<|>|==|!=|~=)"), r"\1,\2"),
    (re.compile(r"(<=|>=|<|>)\s*(\d+(?:\.\d+)*)\.\*"), r"\1\2"),
    (re.compile(r"(==|!=)\s*(\d+(?:\.\d+)*)\*"), r"\1\2.*"),
    (re.compile(r",\s*$"), ""),
)


def repair_specifier(text: str) -> str | None:
    """A legacy version specifier (`>dev`, `>=1.0<2.0`, `>=3.6,`, `>=1.9.*`, `!=3.0*`) made valid, or None."""
    repaired = text.strip().strip("'\"")
    for pattern, replacement in _REPAIRS:
        repaired = pattern.sub(replacement, repaired)
    repaired = repaired.replace(" ", "")
    try:
        return str(SpecifierSet(repaired)) if repaired != text else None
    except InvalidSpecifier:
        return None


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        return (0,)
