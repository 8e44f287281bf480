"""The requirements-file reader: the pip syntax a CI maintainer writes, and nothing the index can't serve.

Supported: comments and inline comments, blank lines, `\\` continuations, PEP 508 requirements with extras
and markers, `-r`/`-c` includes relative to the including file (cycles detected), and the
`--index-url`, `--extra-index-url`, `--find-links` (a URL, or a directory relative to the file),
`--no-index` and `--pre` option lines. Anything else (URLs, `-e`, local paths, unknown options) is an
error naming the file, the line number and the line.

Files are read through an injected function, so the reader itself does no I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import RequirementsFileError
from .local import MAX_REQUIREMENTS_BYTES, MIB, read_limited

ReadText = Callable[[Path], str]
Fail = Callable[[str], RequirementsFileError]

_COMMENT = re.compile(r"(^|\s+)#.*$")
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# What is meant as a URL but is none: a scheme without its `//` (`http:/host`, `https:host`), or a host
# with credentials and no scheme (`user:PW@host/links`). As a directory it would be a typo, with a secret.
_MISTYPED_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]+:(?!//)|[^/\s]*:[^/\s]*@)")


def mistyped_url(place: str) -> bool:
    """Whether a find-links value looks meant as a URL without being one (see _MISTYPED_URL)."""
    return bool(_MISTYPED_URL.match(place))
MAX_INCLUDE_DEPTH = 100  # files including each other (`-r`, `-c`), one inside the other
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tar.bz2", ".tgz", ".zip")
_INCLUDE_OPTIONS = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_VALUE_OPTIONS = {
    "-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_url",
    "-f": "find_links", "--find-links": "find_links",
}


@dataclass(frozen=True)
class SourcedRequirement:
    """A requirement and where it was written."""

    requirement: Requirement
    path: str
    line_number: int

    @property
    def origin(self) -> str:
        return f"{self.path}:{self.line_number}"

    def __str__(self) -> str:
        return str(self.requirement)


@dataclass(frozen=True)
class RequirementsInput:
    """Everything read from the top-level requirements files and their includes."""

    requirements: tuple[SourcedRequirement, ...]
    constraints: tuple[SourcedRequirement, ...] = ()
    top_level_files: tuple[str, ...] = ()
    # (display path, text) of every file read, in reading order: what the input digest covers.
    files: tuple[tuple[str, str], ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    # URLs, or absolute paths (a line's path is relative to its file).
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False

    @property
    def digest(self) -> str:
        return input_digest(self.files)


def input_digest(files: tuple[tuple[str, str], ...]) -> str:
    """sha256 (first 16 hex digits) of the names and the requirements of every input file, as parsed: a
    comment, a blank line or spacing changes nothing, so it makes no file stale."""
    hasher = hashlib.sha256()
    for name, text in files:
        hasher.update(name.encode() + b"\0" + _parsed_text(text).encode() + b"\0")
    return hasher.hexdigest()[:16]


def _parsed_text(text: str) -> str:
    """The lines of a requirements file as they are read: requirements in packaging's normal form."""
    return "\n".join(" ".join(_normal_form(line).split()) for _, line in _logical_lines(text))


def _normal_form(line: str) -> str:
    if not line.startswith("-"):
        with contextlib.suppress(InvalidRequirement):
            return str(Requirement(line))
    return line


FAMILIES_DIGEST_NAME = "[tool.cuda-constraints.families]"


# How a header's `input digests` line names the configuration's part.
CONFIGURATION_PART = "[tool.cuda-constraints]"


def digest_of(requirements_input: RequirementsInput, families_text: str = "") -> str:
    """The digest a constraints file header records: every input file, and the configuration that shapes
    the major's result.

    `families_text` is `Config.digest_text(major)` (empty when nothing is configured that shapes it).
    `compile` writes this digest; `check` and `install` compare a header against it.
    """
    return input_digest(_digested(requirements_input, families_text))


def digest_parts(requirements_input: RequirementsInput, families_text: str = "") -> tuple[tuple[str, str], ...]:
    """The digest of each part `digest_of` covers (each input file, then the configuration), by name: what
    a header records beside it when there are several, so `check` and `diff` can say which one changed.
    A single part's digest is `digest_of` itself."""
    return tuple(
        (CONFIGURATION_PART if name == FAMILIES_DIGEST_NAME else name, input_digest(((name, text),)))
        for name, text in _digested(requirements_input, families_text)
    )


def _digested(requirements_input: RequirementsInput, families_text: str) -> tuple[tuple[str, str], ...]:
    files = requirements_input.files
    return (*files, (FAMILIES_DIGEST_NAME, families_text)) if families_text else files


def read_utf8(path: Path) -> str:
    """The default file reader for the CLI's edge: UTF-8 text, errors named by file."""
    try:
        return read_limited(path, MAX_REQUIREMENTS_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        raise RequirementsFileError(path, 0, "", "no such file") from None
    except IsADirectoryError:
        raise RequirementsFileError(path, 0, "", "is a directory, not a requirements file") from None
    except UnicodeDecodeError as error:
        raise RequirementsFileError(path, 0, "", f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise RequirementsFileError(path, 0, "", f"cannot be read: {error.strerror or error}") from None


def load_requirements(
    paths: list[Path], read_text: ReadText = read_utf8, root: Path | None = None, constraints: Sequence[Path] = ()
) -> RequirementsInput:
    """Read requirements files, and constraints files (`-c`), with what they include, into one input. A
    constraints file is listed among the top-level files as `-c <path>`."""
    reader = _Reader(read_text, root)
    for path in paths:
        reader.read(path, constraint=False, stack=())
    for path in constraints:
        reader.read(path, constraint=True, stack=())
    return RequirementsInput(
        requirements=tuple(reader.requirements),
        constraints=tuple(reader.constraints),
        top_level_files=(*(reader.display(p) for p in paths), *(f"-c {reader.display(p)}" for p in constraints)),
        files=tuple(reader.files),
        index_url=reader.index_url,
        extra_index_urls=tuple(reader.extra_index_urls),
        find_links=tuple(reader.find_links),
        no_index=reader.no_index,
        pre=reader.pre,
    )


def relative_to_root(path: Path, root: Path | None) -> str:
    """A path as a header or message shows it: relative to the project root (`../x` for one beside it),
    with `/`, so a header reads the same on every machine and reads back to the same path."""
    if root is not None:
        resolved, base = path.resolve(), root.resolve()
        try:
            return PurePosixPath(resolved.relative_to(base)).as_posix()
        except ValueError:
            if resolved.anchor == base.anchor:
                return PurePosixPath(os.path.relpath(resolved, base)).as_posix()
    return path.as_posix()


def parse_requirement_line(text: str, path: str, line_number: int) -> Requirement:
    """One PEP 508 requirement that names a project on the index."""

    def fail(problem: str) -> RequirementsFileError:
        return RequirementsFileError(Path(path), line_number, text, problem)

    if _URL_SCHEME.match(text) or text.startswith(("git+", "hg+", "svn+", "bzr+")):
        raise fail("URLs are not supported; name a project on the index")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        if text.startswith((".", "/", "~")) or text.endswith(_ARCHIVE_SUFFIXES) or "/" in text or "\\" in text:
            raise fail("local paths are not supported; name a project on the index") from None
        raise fail(f"not a valid requirement ({str(error).splitlines()[0]})") from None
    if requirement.url:
        raise fail("direct URL references are not supported; name a project on the index")
    return requirement


@dataclass
class _Reader:
    read_text: ReadText
    root: Path | None
    requirements: list[SourcedRequirement] = field(default_factory=list)
    constraints: list[SourcedRequirement] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)
    seen: set[tuple[Path, bool]] = field(default_factory=set)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    pre: bool = False
    size: int = 0  # characters read so far, every file included

    def display(self, path: Path) -> str:
        return relative_to_root(path, self.root)

    def read(self, path: Path, constraint: bool, stack: tuple[Path, ...]) -> None:
        resolved = path.resolve()
        if resolved in stack:
            cycle = " -> ".join(self.display(p) for p in (*stack, resolved))
            raise RequirementsFileError(path, 0, "", f"include cycle: {cycle}")
        if (resolved, constraint) in self.seen:
            return
        self.seen.add((resolved, constraint))
        text = self.read_text(path)
        self.size += len(text)
        if self.size > MAX_REQUIREMENTS_BYTES:
            raise RequirementsFileError(
                path, 0, "", f"the requirements files of this input are larger than {MAX_REQUIREMENTS_BYTES // MIB} MiB together"
            )
        shown = self.display(path)
        self.files.append((shown, text))
        for line_number, line in _logical_lines(text):
            self._line(path, shown, line_number, line, constraint, (*stack, resolved))

    def _line(self, path: Path, shown: str, line_number: int, line: str, constraint: bool, stack: tuple[Path, ...]) -> None:
        def fail(problem: str) -> RequirementsFileError:
            return RequirementsFileError(Path(shown), line_number, line, problem)

        if not line.startswith("-"):
            self._requirement(parse_requirement_line(line, shown, line_number), shown, line_number, constraint, fail)
            return
        option, value = _split_option(line, fail)
        if option in _INCLUDE_OPTIONS:
            self._include(path, option, value, constraint or _INCLUDE_OPTIONS[option], stack, fail)
        elif option in _VALUE_OPTIONS:
            self._value(path, option, value, fail)
        elif option in ("--pre", "--no-index"):
            if value:
                raise fail(f"{option} takes no value")
            self.pre = self.pre or option == "--pre"
            self.no_index = self.no_index or option == "--no-index"
        elif option in ("-e", "--editable"):
            raise fail("editable installs are not supported; name a project on the index")
        else:
            raise fail(
                f"option {option} is not supported here "
                "(supported: -r, -c, --index-url, --extra-index-url, --find-links, --no-index, --pre)"
            )

    def _requirement(self, requirement: Requirement, shown: str, line_number: int, constraint: bool, fail: Fail) -> None:
        sourced = SourcedRequirement(requirement, shown, line_number)
        if not constraint:
            self.requirements.append(sourced)
        elif requirement.extras:
            raise fail("constraints cannot have extras; constrain the project without them")
        else:
            self.constraints.append(sourced)

    def _include(self, path: Path, option: str, value: str, constraint: bool, stack: tuple[Path, ...], fail: Fail) -> None:
        if not value:
            raise fail(f"{option} needs a file name")
        if _URL_SCHEME.match(value):
            raise fail("including a file by URL is not supported")
        if len(stack) >= MAX_INCLUDE_DEPTH:
            raise fail(f"files include each other more than {MAX_INCLUDE_DEPTH} deep")
        included = path.parent / value
        try:
            self.read(included, constraint, stack)
        except RequirementsFileError as error:
            if error.line_number == 0 and error.problem in ("no such file", "is a directory, not a requirements file"):
                raise fail(f"{option} {value}: {error.problem} ({self.display(included)})") from None
            raise

    def _value(self, path: Path, option: str, value: str, fail: Fail) -> None:
        kind = _VALUE_OPTIONS[option]
        if kind == "find_links" and mistyped_url(value):
            raise fail(f"{option} looks like a URL but has no valid scheme: give scheme://host/…, or a directory")
        if kind == "find_links" and value and not _URL_SCHEME.match(value):
            self.find_links.append(str((path.parent / value).resolve()))  # a directory, next to this file
            return
        if not value or not _URL_SCHEME.match(value):
            raise fail(f"{option} needs an http(s) URL")
        if kind == "index_url":
            self.index_url = value
        elif kind == "find_links":
            self.find_links.append(value)
        else:
            self.extra_index_urls.append(value)


def _split_option(line: str, fail: Fail) -> tuple[str, str]:
    """`-r file`, `-rfile`, `--requirement=file` -> ("-r"/"--requirement", "file")."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise fail(f"cannot split the line into words ({error})") from None
    if not words:
        raise fail("empty option")
    first = words[0]
    if first.startswith("--"):
        option, _, inline = first.partition("=")
        rest = words[1:]
        if inline:
            rest = [inline, *rest]
    elif len(first) > 2:
        option, rest = first[:2], [first[2:], *words[1:]]
    else:
        option, rest = first, words[1:]
    if len(rest) > 1:
        raise fail(f"{option} takes one value, got {len(rest)}")
    return option, rest[0] if rest else ""


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Comment-free, continuation-joined, non-blank lines with the number of the line they start on."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw.rstrip()
        if line.endswith("\\") and not _COMMENT.search(line[:-1]):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = _COMMENT.sub("", "".join(pending)).strip()
        pending = []
        if joined:
            yield start, joined
    if pending:
        joined = _COMMENT.sub("", "".join(pending)).strip()
        if joined:
            yield start, joined
