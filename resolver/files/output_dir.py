"""The output directory: one writer at a time, and its files replaced all together or not at all.

Everything the tool keeps there lives in `<output>/.cuda-constraints/`, which holds a `.gitignore` of `*`
(so git ignores the folder and all in it, as it does pytest's and ruff's caches), the lock file, and,
while a compile replaces files, the new files and a journal.

Replacing files, all or nothing, even under SIGKILL or a power cut:

1. every new file is written and flushed to disk under `.cuda-constraints/new/`, with the mode an
   ordinary write gives (the umask's; a file that is replaced keeps its own mode);
2. the journal, the list of those files, is written to a temporary name and renamed into place: that
   rename is the moment the new set exists;
3. each new file is renamed over its old one; then the journal and `new/` are removed.

The next compile finishes an interrupted replacement once it holds the lock: with a journal, the renames
of step 3 are done again (a file already moved is skipped), so every file is new; without one, the files
of step 1 are deleted, so every file is old. SIGINT and SIGTERM are held back during step 3, so a run
that is interrupted stops before it or after it. Commands that only read (check, diff, install, verify)
never finish one, nor write anything here: they say that one was interrupted.

The state folder is private to the user who compiles, and nothing in it is trusted that this user's
compile did not write: a journal is replayed only when it is a plain file of this user's, readable by no
one else, that git does not track, and only when it lists the tool's own file names (`cuNN.txt`,
`pylock.cuNN.toml`), each staged as a plain file and replacing a plain file or nothing; anything else is
discarded with a warning. The state folder itself, `new/` and the `.gitignore` are never followed through
a symbolic link.

The lock is `flock` on `.cuda-constraints/lock`: opened without following links, never truncated, mode
0600 (no other user can open it, so none can hold it), and never removed (a lock file that is removed
while others wait on it locks nothing); one per output directory, so none pile up.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import LockTimeout, WriteFailed
from ..errors.interrupts import deferred
from .sets import display_path, tracked_by_git

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
STATE = ".cuda-constraints"
# The names of the files the tool writes into an output directory: all a journal may list.
IGNORE_ALL = b"# Written by cuda-constraints: its lock and work files, never committed.\n*\n"
JOURNAL_LIMIT = 65536  # bytes read of a journal (the tool's lists a few file names)
OWN_FILE = re.compile(r"cu\d{1,3}\.txt|pylock\.cu\d{1,3}\.toml")
DEFAULT_WAIT = 600.0
WAIT_VARIABLE = "CUDA_CONSTRAINTS_LOCK_WAIT"


class OutputDirectory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = path / STATE
        self.new = self.state / "new"
        self.journal = self.state / "journal"

    # -- the lock ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, wait: float | None = None) -> Iterator[None]:
        """Hold the directory's lock (creating the directory); finish an interrupted replacement first.

        A directory this call created is removed again when the block fails, so a failed first compile
        leaves nothing behind.
        """
        created = not self.path.exists()
        try:
            self._prepare()
            descriptor = self._open_lock()
        except OSError as error:
            raise WriteFailed(self.path, f"cannot prepare it ({error.strerror or error})") from None
        try:
            self._acquire(descriptor, _wait(wait))
            self.recover()
            yield
        except BaseException:
            if created:
                shutil.rmtree(self.path, ignore_errors=True)
            raise
        finally:
            os.close(descriptor)

    def interrupted(self) -> bool:
        """For readers, who change nothing: whether a compile left a replacement unfinished (or is running)."""
        return os.path.lexists(self.journal) or os.path.lexists(self.new)

    def _prepare(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(self.state) and not stat.S_ISDIR(os.lstat(self.state).st_mode):
            raise WriteFailed(self.state, "the tool's state folder is a symbolic link or not a folder; remove it")
        self.state.mkdir(exist_ok=True)
        if not os.path.lexists(self.state / ".gitignore"):
            _write_durably(self.state / ".gitignore", IGNORE_ALL, 0o644)

    def _open_lock(self) -> int:
        path = self.state / "lock"
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            descriptor = os.open(path, flags, 0o600)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EISDIR):
                raise WriteFailed(path, "the lock file is a symbolic link or a directory; remove it") from None
            raise
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise WriteFailed(path, "the lock file is not a regular file; remove it")
        return descriptor

    def _acquire(self, descriptor: int, wait: float) -> None:
        if fcntl is None:
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(Path(display_path(self.path)), wait) from None
                time.sleep(0.1)

    # -- replacing files --------------------------------------------------------------------------------

    def replace(self, files: Mapping[str, str], outcome: str) -> None:
        """Replace (or create) these files of the directory, all together; call with the lock held.

        `outcome` says what was done, for the message of a run interrupted while the files moved.
        """
        if not files:
            return
        try:
            self._stage(files)
        except BaseException as error:  # a full disk, or a signal: nothing was replaced, nothing is left
            self._discard()
            if isinstance(error, OSError):
                raise WriteFailed(self.path, error.strerror or str(error)) from None
            raise
        with deferred(outcome):
            try:
                self._commit(sorted(files))
            except OSError as error:
                self._discard()
                raise WriteFailed(self.path, error.strerror or str(error)) from None
            self._apply(sorted(files))

    def recover(self) -> None:
        """Finish an interrupted replacement: forward when a journal this user's compile wrote exists, else back."""
        try:
            names = self._journal_names()
            if names is not None:
                self._apply(names)
            else:
                self._discard()
        except OSError as error:
            raise WriteFailed(self.path, f"cannot finish an interrupted compile ({error.strerror or error})") from None

    def _journal_names(self) -> list[str] | None:
        """The files the journal lists, when it is one this user's compile wrote and every entry is safe to
        move; None when there is none, or (with a warning, the journal discarded) when there is another."""
        try:
            info = os.lstat(self.journal)
        except FileNotFoundError:
            return None
        problem = _untrusted(info) or (tracked_by_git(self.journal) and "git tracks it")
        names: list[str] = []
        if not problem:
            with open(self.journal, "rb") as journal:
                names, problem = self._listed(journal.read(JOURNAL_LIMIT))
        if problem:
            logger.warning("%s was not written by a compile of this user (%s); it is discarded, and nothing it lists is moved",
                           display_path(self.journal), problem)
            self.journal.unlink()
            return None
        return names

    def _listed(self, content: bytes) -> tuple[list[str], str]:
        """The names a journal lists, or the reason one of them may not be moved."""
        try:
            names = json.loads(content)["files"]
        except (ValueError, KeyError, TypeError):
            return [], "it cannot be read"
        if not isinstance(names, list) or not all(isinstance(name, str) and OWN_FILE.fullmatch(name) for name in names):
            return [], "it lists a file that is not one the tool writes"
        for name in names:
            for path in (self.new / name, self.path / name):
                if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
                    return [], f"{display_path(path)} is a symbolic link or not a plain file"
        if os.path.lexists(self.new) and not stat.S_ISDIR(os.lstat(self.new).st_mode):
            return [], f"{display_path(self.new)} is a symbolic link or not a folder"
        return names, ""

    def _stage(self, files: Mapping[str, str]) -> None:
        self._discard()
        self.new.mkdir()
        umask_mode = 0o666 & ~_umask()
        for name, text in files.items():
            target = self.path / name
            mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else umask_mode
            _write_durably(self.new / name, text.encode("utf-8"), mode)
        _sync_directory(self.new)

    def _commit(self, names: list[str]) -> None:
        pending = self.state / "journal.tmp"
        _write_durably(pending, json.dumps({"files": names}).encode(), 0o600)
        os.replace(pending, self.journal)
        _sync_directory(self.state)

    def _apply(self, names: list[str]) -> None:
        for name in names:
            staged = self.new / name
            if staged.exists():  # moved already by the run that was interrupted
                os.replace(staged, self.path / name)
        _sync_directory(self.path)
        self.journal.unlink()
        self._discard()

    def _discard(self) -> None:
        if os.path.lexists(self.new) and not stat.S_ISDIR(os.lstat(self.new).st_mode):
            self.new.unlink()  # a link is removed, never followed
        shutil.rmtree(self.new, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.state / "journal.tmp").unlink()


def _untrusted(info: os.stat_result) -> str:
    """Why a journal with this status was not written by this user's compile ("" when it may have been)."""
    if not stat.S_ISREG(info.st_mode):
        return "it is a symbolic link or not a plain file"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "another user owns it"
    if info.st_mode & 0o077:
        return "others may read or write it; the tool writes it for its user alone"
    return ""


def note_if_interrupted(directory: Path) -> None:
    """For a command that only reads the directory: a warning when a compile left a replacement unfinished
    (the files may mix old and new); it finishes nothing itself."""
    if OutputDirectory(directory).interrupted():
        logger.warning("%s: a compile was interrupted while it replaced these files (or is running): they may mix old "
                       "and new ones until the next `cuda-constraints compile` finishes it", display_path(directory))


def _write_durably(path: Path, content: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.write(descriptor, content)
        os.fchmod(descriptor, mode)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _umask() -> int:
    """The process umask, read without changing it where the system tells (other threads create files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def _wait(wait: float | None) -> float:
    if wait is not None:
        return wait
    try:
        return float(os.environ.get(WAIT_VARIABLE, DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT
