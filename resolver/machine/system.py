"""The machine as `detect` and `install` see it: environment variables, programs on PATH, files, and
subprocesses. Everything that asks the machine goes through a `Machine`, so tests inject the environment,
PATH and file contents, and the logic that reads the answers stays pure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import UsageError

COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_error_line(self) -> str:
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit {self.returncode}"


class Machine(Protocol):
    @property
    def environ(self) -> Mapping[str, str]: ...

    def which(self, program: str) -> str | None:
        """The path of a program on PATH, or None."""

    def run(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult | None:
        """Run a program and capture its output; None when it cannot be started."""

    def run_visible(self, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> int:
        """Run a program whose output the user sees (an installer), with extra environment; its exit status."""

    def read_text(self, path: str) -> str | None:
        """A text file's content, or None when it is missing or unreadable."""

    def list_dir(self, path: str) -> tuple[str, ...]:
        """The names in a directory; empty when it is missing."""


@dataclass(frozen=True)
class SystemMachine:
    """The real machine. `extra_bin_dirs` are searched after PATH (`ldconfig` lives in /sbin for most users)."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    extra_bin_dirs: tuple[str, ...] = ()

    def which(self, program: str) -> str | None:
        path = os.pathsep.join([self.environ.get("PATH", ""), *self.extra_bin_dirs])
        return shutil.which(program, path=path)

    def run(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult | None:
        try:
            completed = subprocess.run(
                list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, env=dict(self.environ), check=False
            )
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{argv[0]} did not answer within {timeout:.0f}s")
        except OSError:
            return None
        return CommandResult(completed.returncode, completed.stdout, completed.stderr)

    def run_visible(self, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> int:
        try:
            return subprocess.run(list(argv), env={**self.environ, **(environment or {})}, check=False).returncode
        except OSError as error:
            raise UsageError(f"cannot run {argv[0]}: {error.strerror or error}") from None

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def list_dir(self, path: str) -> tuple[str, ...]:
        try:
            return tuple(sorted(os.listdir(path)))
        except OSError:
            return ()


def find_interpreter(machine: Machine, python: str) -> str:
    """`--python PATH` (or a name on PATH) as the path of an interpreter that exists."""
    if os.sep in python or (os.altsep and os.altsep in python):
        path = Path(python)
        if path.is_file() and os.access(path, os.X_OK):
            return _a_python(machine, python, os.path.abspath(path))  # not resolved: a venv's python is a symlink
        raise UsageError(f"--python {python}: no such interpreter (give the path of a python executable)")
    found = machine.which(python)
    if found is None:
        raise UsageError(f"--python {python}: not found on PATH (give the path of a python executable)")
    return _a_python(machine, python, found)


def _a_python(machine: Machine, given: str, path: str) -> str:
    """The path, when it runs Python 3; UsageError naming what it is otherwise (`--python /bin/ls`)."""
    result = machine.run([path, "-c", "import sys; print('python', sys.version_info[0])"], timeout=30)
    if result is None or result.returncode != 0 or result.stdout.strip().splitlines()[-1:] != ["python 3"]:
        raise UsageError(f"--python {given}: {path} is not a Python 3 interpreter (give the path of a python executable)")
    return path
