"""The lock file (PEP 751): `pylock.cuNN.toml`, beside `cuNN.txt`, from the same resolution.

It lists every pin of the constraints file with its marker, its index, and every file an installer could
take for it on the targets (the files `--generate-hashes` hashes: wheels whose tags and requires-python
fit, the sdist where a platform builds from source), each with URL, size, upload time and sha256.
Installers (uv `pip install -r`, pip ≥ 26.3 `install --no-deps -r`) install exactly those packages
without resolving, so an excluded member of another major is absent by construction. The constraints
file's header facts (command, inputs and their digest, targets, options, indexes, exclusions, swaps,
builds from source, torch builds) are in `[tool.cuda-constraints]`, with a digest of the file's other
lines (a hand edit fails `check`).

Rendering is pure and deterministic. Every string goes through `toml_text` (escaped, one line); every
URL is written without credentials (userinfo dropped, secret query values masked) and without fragment;
every digest is checked to be 64 hex digits; an upload time is a datetime, written as TOML writes one.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from packaging.markers import InvalidMarker, Marker
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import ConstraintsFileError, UnsafeValue
from ..errors.display import redact_url
from ..model.distributions import SHA256_HEX
from ..model.targets import Environment
from . import toml_text as toml
from .constraints import ConstraintsDocument, ExcludedLine, IndexLine, PinLine, SourceBuild, SwapLine, TorchBuildLine

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_VERSION = "1.0"
CREATED_BY = "cuda-constraints"
TOOL = "cuda-constraints"
FILE_NAME = re.compile(r"^pylock\.cu(\d+)\.toml$")
CONTENT = re.compile(r'^content-sha256 = "([0-9a-f]{16})"$')


def lock_name(major: int) -> str:
    return f"pylock.cu{major}.toml"


@dataclass(frozen=True, order=True)
class LockedFile:
    """A wheel or an sdist an installer may take: its name, where it is (no credentials), its sha256."""

    name: str
    url: str
    sha256: str
    size: int | None = None
    uploaded: datetime | None = None


@dataclass(frozen=True)
class LockedPackage:
    name: NormalizedName
    version: Version
    marker: str = ""
    index: str = ""  # the index that served it (none for a find-links location)
    wheels: tuple[LockedFile, ...] = ()
    sdist: LockedFile | None = None

    @property
    def pin(self) -> PinLine:
        """The package as a constraints file pins it (its marker as a constraints file writes markers)."""
        digests = {file.sha256 for file in (*self.wheels, *((self.sdist,) if self.sdist else ()))}
        return PinLine(self.name, self.version, str(Marker(self.marker)) if self.marker else "", (), tuple(sorted(digests)))


@dataclass(frozen=True)
class LockDocument:
    # The constraints file's header facts (command, inputs, digests, targets, options, indexes, exclusions,
    # swaps, builds from source, torch builds); its pins are the packages'.
    header: ConstraintsDocument
    environments: tuple[str, ...]
    requires_python: str
    packages: tuple[LockedPackage, ...]
    # Read back: whether the content still matches the digest the file records (None: none recorded).
    hand_edited: bool | None = field(default=None, compare=False)

    @property
    def pins(self) -> tuple[PinLine, ...]:
        return tuple(package.pin for package in self.packages)


# -- the targets as markers -----------------------------------------------------------------------------------


def environment_marker(environment: Environment) -> str:
    """The marker true in exactly one target (`python_version == '3.12' and sys_platform == 'linux' and …`)."""
    platform = environment.platform
    return (f"python_version == '{environment.python}' and sys_platform == '{platform.sys_platform}' "
            f"and platform_machine == '{platform.machine}'")


def requires_python(environments: Iterable[Environment]) -> str:
    """The Pythons of the targets as a specifier: `==3.12.*`, or `>=3.11, <3.13` for several."""
    pythons = sorted({e.python for e in environments})
    if len(pythons) == 1:
        return f"=={pythons[0]}.*"
    return f">={pythons[0]}, <{pythons[-1].major}.{pythons[-1].minor + 1}"


def lock_marker(marker: str) -> str:
    """A marker as the lock writes it: single quotes, as PEP 751's examples and uv write them (where no
    value holds one; the markers of a merge name Python versions and machines)."""
    return marker.replace('"', "'") if "'" not in marker else marker


# -- rendering ------------------------------------------------------------------------------------------------


def render_lock(document: LockDocument) -> str:
    """The file's text; raises UnsafeValue for a digest of the wrong shape or a URL that cannot be read."""
    lines = list(_lines(document))
    lines.append(toml.assignment("content-sha256", content_digest(lines)))
    return "".join(line + "\n" for line in lines)


def content_digest(lines: Sequence[str]) -> str:
    """sha256 (16 hex digits) of every line but the content line itself, trailing spaces ignored."""
    body = "\n".join(line.rstrip() for line in lines if not CONTENT.match(line))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _lines(document: LockDocument) -> Iterator[str]:
    header = document.header
    yield f"# The CUDA {header.cuda_major} pins of cu{header.cuda_major}.txt with every file an installer may take for them (PEP 751)."
    yield "# Generated by cuda-constraints — do not edit; regenerate with the command in [tool.cuda-constraints]."
    yield toml.assignment("lock-version", LOCK_VERSION)
    yield from toml.array_lines("environments", list(document.environments))
    yield toml.assignment("requires-python", document.requires_python)
    yield toml.assignment("created-by", CREATED_BY)
    for package in document.packages:
        yield ""
        yield "[[packages]]"
        yield toml.assignment("name", package.name)
        yield toml.assignment("version", str(package.version))
        if package.marker:
            yield toml.assignment("marker", package.marker)
        if package.index:
            yield toml.assignment("index", public_url(package.index))
        if package.sdist is not None:
            yield toml.assignment("sdist", _file_table(package, package.sdist))
        if package.wheels:
            yield from toml.array_lines("wheels", [_file_table(package, wheel) for wheel in package.wheels])
    yield ""
    yield f"[tool.{TOOL}]"
    yield from _tool_lines(header)


def _file_table(package: LockedPackage, file: LockedFile) -> dict[str, toml.Value]:
    if not SHA256_HEX.fullmatch(file.sha256):
        raise UnsafeValue(f"the sha256 of {package.name}=={package.version}", file.sha256)
    table: dict[str, toml.Value] = {"name": file.name, "url": public_url(file.url)}
    if type(file.size) is int and file.size >= 0:
        table["size"] = file.size
    if file.uploaded is not None:
        table["upload-time"] = file.uploaded
    table["hashes"] = {"sha256": file.sha256}
    return table


def _tool_lines(header: ConstraintsDocument) -> Iterator[str]:
    yield toml.assignment("cuda", header.cuda_major)
    yield toml.assignment("command", header.command)
    yield toml.assignment("inputs", list(header.inputs))
    yield toml.assignment("inputs-sha256", header.digest)
    if header.input_digests:
        yield from toml.array_lines("input-digests", [{"file": name, "sha256": digest} for name, digest in header.input_digests])
    yield toml.assignment("targets", header.targets)
    yield toml.assignment("options", header.options)
    yield toml.assignment("index-strategy", header.index_strategy)
    yield from toml.array_lines("indexes", [
        {"kind": line.kind, "url": line.url, **({"serves": list(line.serves)} if line.serves else {})} for line in header.indexes
    ])
    yield from toml.array_lines("excluded", [{"name": e.name, "required-by": e.required_by} for e in header.excluded])
    yield from toml.array_lines("swapped", [
        {"original": s.original, "replacement": s.replacement, "origin": s.origin} for s in header.swapped
    ])
    yield from toml.array_lines("builds-from-source", [
        {"name": b.name, "version": b.version, "platforms": b.platforms} for b in header.source_builds
    ])
    yield from toml.array_lines("torch-builds", [{"pin": t.pin, "builds": t.builds} for t in header.torch_builds])


def public_url(url: str) -> str:
    """A URL as a lock file may hold it: no user or password (the installer has its own credentials for the
    host), secret query values masked, no fragment (the sha256 is in `hashes`)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    except ValueError:
        raise UnsafeValue("a URL that cannot be read", url) from None
    return redact_url(clean) if parts.query else clean


# -- reading back ---------------------------------------------------------------------------------------------

OURS = re.compile(rf'^created-by = "{CREATED_BY}"$.*^\[tool\.{TOOL}\]$', re.MULTILINE | re.DOTALL)


def looks_ours(text: str) -> bool:
    """Whether a file says this tool wrote it, without reading all of it as TOML (what `compile` asks of
    the lock it is about to replace: a file another tool wrote is never overwritten)."""
    return OURS.search(text) is not None


def parse_lock(text: str, shown: str) -> LockDocument:
    """Read a lock file back; anything it cannot understand is a ConstraintsFileError naming the file (one
    this tool did not write is `foreign`: compile never overwrites it)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConstraintsFileError(shown, 0, "", f"not a TOML file ({error})", foreign=True) from None
    tool = data.get("tool")
    if data.get("created-by") != CREATED_BY or not isinstance(tool, dict) or not isinstance(tool.get(TOOL), dict):
        raise ConstraintsFileError(shown, 0, "", "not a lock file cuda-constraints wrote (no [tool.cuda-constraints] table)",
                                   foreign=True)
    read = _Reader(shown)
    if data.get("lock-version") != LOCK_VERSION:
        raise read.fail(f"lock-version {data.get('lock-version')!r} is not {LOCK_VERSION!r}")
    lines = text.splitlines()
    recorded = next((m.group(1) for m in map(CONTENT.match, lines) if m), None)
    return LockDocument(
        header=read.header(tool[TOOL]),
        environments=tuple(read.strings(data, "environments")),
        requires_python=read.string(data, "requires-python"),
        packages=tuple(read.package(item) for item in read.tables(data, "packages")),
        hand_edited=None if recorded is None else recorded != content_digest(lines),
    )


class _Reader:
    """Typed reads of the parsed TOML, each failure an error naming the file and what is wrong."""

    def __init__(self, shown: str) -> None:
        self.shown = shown

    def fail(self, problem: str) -> ConstraintsFileError:
        return ConstraintsFileError(self.shown, 0, "", problem)

    def string(self, table: Mapping[str, Any], key: str, default: str | None = None) -> str:
        found = table.get(key, default)
        if not isinstance(found, str):
            raise self.fail(f"{key} is not a string")
        return found

    def strings(self, table: Mapping[str, Any], key: str) -> list[str]:
        found = table.get(key, [])
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise self.fail(f"{key} is not a list of strings")
        return found

    def tables(self, table: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        found = table.get(key, [])
        if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
            raise self.fail(f"{key} is not a list of tables")
        return found

    def header(self, tool: Mapping[str, Any]) -> ConstraintsDocument:
        cuda = tool.get("cuda")
        if type(cuda) is not int:
            raise self.fail("[tool.cuda-constraints] cuda is not a number")
        indexes = [
            IndexLine.read(self.string(t, "kind"), self.string(t, "url"), ", ".join(self.strings(t, "serves")) or None)
            for t in self.tables(tool, "indexes")
        ]
        return ConstraintsDocument(
            cuda_major=cuda,
            command=self.string(tool, "command"),
            inputs=tuple(self.strings(tool, "inputs")),
            digest=self.string(tool, "inputs-sha256"),
            targets=self.string(tool, "targets"),
            options=self.string(tool, "options", ""),
            excluded=tuple(ExcludedLine(self.string(t, "name"), self.string(t, "required-by")) for t in self.tables(tool, "excluded")),
            swapped=tuple(
                SwapLine(self.string(t, "original"), self.string(t, "replacement"), self.string(t, "origin"))
                for t in self.tables(tool, "swapped")
            ),
            source_builds=tuple(
                SourceBuild(self.string(t, "name"), self.string(t, "version"), self.string(t, "platforms"))
                for t in self.tables(tool, "builds-from-source")
            ),
            index_strategy=self.string(tool, "index-strategy", "first-index"),
            indexes=tuple(indexes),
            torch_builds=tuple(TorchBuildLine(self.string(t, "pin"), self.string(t, "builds")) for t in self.tables(tool, "torch-builds")),
            input_digests=tuple((self.string(t, "file"), self.string(t, "sha256")) for t in self.tables(tool, "input-digests")),
        )

    def package(self, table: Mapping[str, Any]) -> LockedPackage:
        name = self.string(table, "name")
        try:
            version = Version(self.string(table, "version"))
            marker = self.string(table, "marker", "")
            if marker:
                Marker(marker)
        except (InvalidVersion, InvalidMarker) as error:
            raise self.fail(f"package {name!r}: {str(error).splitlines()[0]}") from None
        sdist = table.get("sdist")
        if sdist is not None and not isinstance(sdist, dict):
            raise self.fail(f"package {name!r}: sdist is not a table")
        return LockedPackage(
            canonicalize_name(name),
            version,
            marker,
            self.string(table, "index", ""),
            tuple(self.file(name, wheel) for wheel in self.tables(table, "wheels")),
            self.file(name, sdist) if sdist is not None else None,
        )

    def file(self, package: str, table: Mapping[str, Any]) -> LockedFile:
        hashes = table.get("hashes")
        sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
            raise self.fail(f"package {package!r}: a file without a sha256 of 64 hex digits")
        size, uploaded = table.get("size"), table.get("upload-time")
        if size is not None and type(size) is not int:
            raise self.fail(f"package {package!r}: a file size that is not a number")
        if uploaded is not None and not isinstance(uploaded, datetime):
            raise self.fail(f"package {package!r}: an upload-time that is not a date-time")
        url = self.string(table, "url")
        name = self.string(table, "name", url.rsplit("/", 1)[-1])
        return LockedFile(name, url, sha256, size, uploaded.astimezone(timezone.utc) if uploaded else None)


# -- a lock and its constraints file --------------------------------------------------------------------------


def disagreements(lock: LockDocument, constraints: ConstraintsDocument, txt: str) -> list[str]:
    """Where a lock file and the constraints file beside it (`txt`, as messages name it) do not say the same:
    inputs, targets, options, command, exclusions, swaps, and the pins (name, version, marker)."""
    header = lock.header
    found = []
    if (header.inputs, header.digest) != (constraints.inputs, constraints.digest):
        found.append(f"its inputs (sha256 {header.digest}) are not those of {txt} (sha256 {constraints.digest})")
    for what, mine, theirs in (("targets are", header.targets, constraints.targets), ("options are", header.options, constraints.options),
                               ("command is", header.command, constraints.command)):
        if mine != theirs:
            found.append(f"its {what} {mine!r}, {txt}'s {theirs!r}")
    if set(header.excluded) != set(constraints.excluded) or set(header.swapped) != set(constraints.swapped):
        found.append(f"its exclusions or swaps are not {txt}'s")
    pin_problems = _pin_differences(lock.pins, constraints.pins, txt)
    if pin_problems:
        shown = "; ".join(pin_problems[:4]) + (f"; and {len(pin_problems) - 4} more" if len(pin_problems) > 4 else "")
        found.append(f"its pins are not {txt}'s: {shown}")
    return found


def _pin_differences(locked: Iterable[PinLine], pinned: Iterable[PinLine], txt: str) -> list[str]:
    """Pins of one side only, or at another version; and, where the constraints file hashes a pin (compiled
    with --generate-hashes), the lock's files for it must be exactly those."""
    def keyed(pins: Iterable[PinLine]) -> dict[tuple[str, str], PinLine]:
        return {(pin.name, str(Marker(pin.marker)) if pin.marker else ""): pin for pin in pins}

    mine, theirs = keyed(locked), keyed(pinned)
    found = []
    for key in sorted(mine.keys() | theirs.keys()):
        name, marker = key
        where = f" ; {marker}" if marker else ""
        if key not in theirs:
            found.append(f"{name}=={mine[key].version}{where} only in the lock")
        elif key not in mine:
            found.append(f"{name}=={theirs[key].version}{where} only in {txt}")
        elif mine[key].version != theirs[key].version:
            found.append(f"{name} {mine[key].version} in the lock, {theirs[key].version} in {txt}{where}")
        elif theirs[key].hashes and set(mine[key].hashes) != set(theirs[key].hashes):
            found.append(f"{name}=={mine[key].version}{where}: the lock's files have other sha256 hashes than {txt} gives")
    return found
