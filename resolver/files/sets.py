"""Reading constraints files at the edge: one file, a directory of `cuNN.txt` files, or that directory as
committed at git `HEAD` (through `git` in a subprocess). `check` and `diff` work on what this returns.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConstraintsFileError, GitUnavailable, UsageError
from .constraints import ConstraintsDocument, parse
from .local import MAX_FILE_BYTES, MIB, read_limited
from .pylock import FILE_NAME as LOCK_NAME
from .pylock import LockDocument, lock_name, looks_ours, parse_lock

FILE_NAME = re.compile(r"^cu(\d+)\.txt$")


@dataclass(frozen=True)
class NamedDocument:
    """A constraints file read back, and how messages name it (`constraints/cu12.txt`, `HEAD:constraints/cu12.txt`)."""

    shown: str
    document: ConstraintsDocument


@dataclass(frozen=True)
class NamedLock:
    """A lock file read back, and how messages name it (`constraints/pylock.cu13.toml`)."""

    shown: str
    document: LockDocument


@dataclass(frozen=True)
class ConstraintSet:
    """The constraints files of one directory (or one file), by the CUDA major in the file name, and the lock
    files beside them."""

    label: str
    files: Mapping[int, NamedDocument] = field(default_factory=dict)
    locks: Mapping[int, NamedLock] = field(default_factory=dict)
    # Why the set is empty when it could not be read from where it was asked for (shown to the user).
    note: str = ""


def display_path(path: Path) -> str:
    """A path as messages show it: relative to the working directory when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def constraints_files(directory: Path) -> dict[int, Path]:
    """The `cuNN.txt` files of a directory, by major; none when the directory does not exist."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in sorted(directory.iterdir()):
        match = FILE_NAME.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return found


def lock_files(directory: Path) -> dict[int, Path]:
    """The `pylock.cuNN.toml` files of a directory, by major."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in sorted(directory.iterdir()):
        match = LOCK_NAME.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return found


def lock_path(constraints: Path) -> Path:
    """Where the lock file of a `cuNN.txt` goes: beside it, `pylock.cuNN.toml`."""
    match = FILE_NAME.match(constraints.name)
    return constraints.with_name(lock_name(int(match.group(1))) if match else f"pylock.{constraints.stem}.toml")


def read_lock_content(content: bytes, shown: str) -> LockDocument:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConstraintsFileError(shown, 0, "", f"not UTF-8 text ({error.reason} at byte {error.start})", foreign=True) from None
    return parse_lock(text, shown)


def existing_lock_text(path: Path) -> str | None:
    """The text of the lock file a compile replaces (None: there is none); ConstraintsFileError (foreign) for
    a file this tool did not write."""
    shown = display_path(path)
    try:
        content = read_limited(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConstraintsFileError(shown, 0, "", f"cannot be read ({error.strerror or error})", foreign=True) from None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConstraintsFileError(shown, 0, "", f"not UTF-8 text ({error.reason} at byte {error.start})", foreign=True) from None
    if not looks_ours(text):
        raise ConstraintsFileError(shown, 0, "", "not a lock file cuda-constraints wrote (no [tool.cuda-constraints] table)", foreign=True)
    return text


def read_lock(path: Path) -> NamedLock:
    """The one reader of a lock file on disk (FileNotFoundError when there is none)."""
    shown = display_path(path)
    try:
        content = read_limited(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ConstraintsFileError(shown, 0, "", f"cannot be read ({error.strerror or error})", foreign=True) from None
    return NamedLock(shown, read_lock_content(content, shown))


def read_document(content: bytes, shown: str) -> ConstraintsDocument:
    """Parse a file's bytes; undecodable ones are an error naming the file and line (a foreign file)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        problem = f"not UTF-8 text ({error.reason} at byte {error.start})"
        raise ConstraintsFileError(shown, line, "", problem, foreign=True) from None
    return parse(text, shown)


def read_file(path: Path) -> NamedDocument:
    """The one reader of a constraints file on disk (FileNotFoundError when there is none)."""
    shown = display_path(path)
    try:
        content = read_limited(path)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConstraintsFileError(shown, 0, "", "is a directory, not a constraints file", foreign=True) from None
    except OSError as error:  # not ours to overwrite either: compile leaves what it cannot read alone
        raise ConstraintsFileError(shown, 0, "", f"cannot be read ({error.strerror or error})", foreign=True) from None
    return NamedDocument(shown, read_document(content, shown))


def read_directory(directory: Path) -> ConstraintSet:
    files = {major: read_file(path) for major, path in constraints_files(directory).items()}
    locks = {major: read_lock(path) for major, path in lock_files(directory).items()}
    return ConstraintSet(display_path(directory), files, locks)


def read_paths(old: Path, new: Path) -> tuple[ConstraintSet, ConstraintSet]:
    """Two directories, or two files (compared with each other whatever their names)."""
    for path in (old, new):
        if not path.exists():
            raise UsageError(f"{display_path(path)}: no such file or directory")
    if old.is_dir() and new.is_dir():
        return read_directory(old), read_directory(new)
    if old.is_file() and new.is_file():
        before, after = read_file(old), read_file(new)
        major = after.document.cuda_major
        return ConstraintSet(before.shown, {major: before}), ConstraintSet(after.shown, {major: after})
    raise UsageError(f"give two directories or two files, not {display_path(old)} and {display_path(new)}")


# -- git ------------------------------------------------------------------------------------------------------


def read_at_head(directory: Path) -> ConstraintSet:
    """The directory as committed at HEAD; an empty set (with a note) when HEAD has no such directory."""
    toplevel = _git_ok(["rev-parse", "--show-toplevel"], _existing_ancestor(directory))
    if toplevel is None:
        raise GitUnavailable(display_path(directory), "is not inside a git repository")
    top = Path(toplevel.strip())
    try:
        relative = directory.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise GitUnavailable(display_path(directory), f"is outside the git repository at {top}") from None
    relative = "" if relative == "." else relative
    label = f"HEAD:{relative or '.'}"
    if _git_ok(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], top) is None:
        return ConstraintSet(label, {}, note="the repository has no commit yet; every file counts as added")
    listing = _git_ok(["ls-tree", "-l", "-z", f"HEAD:{relative}"], top)
    if listing is None:
        return ConstraintSet(label, {}, note=f"HEAD has no {relative or '.'}/ directory; every file counts as added")
    files, locks = {}, {}
    for entry in filter(None, listing.split("\0")):
        info, _, name = entry.partition("\t")
        match, lock = FILE_NAME.match(name), LOCK_NAME.match(name)
        if (match or lock) and info.split()[1:2] == ["blob"]:
            path = f"{relative}/{name}" if relative else name
            size = info.split()[3]  # `ls-tree -l`: mode, type, object, size
            if not size.isdigit() or int(size) > MAX_FILE_BYTES:
                problem = f"cannot be read (larger than {MAX_FILE_BYTES // MIB} MiB, the most read of one file)"
                raise ConstraintsFileError(f"HEAD:{path}", 0, "", problem)
            content = _git_bytes(["show", f"HEAD:{path}"], top)
            if match:
                files[int(match.group(1))] = NamedDocument(f"HEAD:{path}", read_document(content, f"HEAD:{path}"))
            elif lock:
                locks[int(lock.group(1))] = NamedLock(f"HEAD:{path}", read_lock_content(content, f"HEAD:{path}"))
    return ConstraintSet(label, files, locks)


def tracked_by_git(path: Path) -> bool:
    """Whether git tracks this file (False outside a repository, or where git is not installed)."""
    try:
        completed = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", path.name], cwd=path.parent, capture_output=True, check=False
        )
    except OSError:
        return False
    return completed.returncode == 0


def _existing_ancestor(path: Path) -> Path:
    path = path.resolve()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _run_git(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitUnavailable(display_path(cwd), "git is not installed") from None


def _git_bytes(arguments: list[str], cwd: Path) -> bytes:
    completed = _run_git(arguments, cwd)
    if completed.returncode != 0:
        problem = completed.stderr.decode(errors="replace").strip().splitlines()
        raise GitUnavailable(display_path(cwd), problem[-1] if problem else f"git {arguments[0]} failed")
    return completed.stdout


def _git_ok(arguments: list[str], cwd: Path) -> str | None:
    """The output of a git command, or None when it fails (a missing revision or path)."""
    completed = _run_git(arguments, cwd)
    return completed.stdout.decode(errors="replace") if completed.returncode == 0 else None
