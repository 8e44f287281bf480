"""The machine as `detect` and `install` see it: environment variables, programs on PATH, files, and
subprocesses. Everything that asks the machine goes through a `Machine`, so tests inject the environment,
PATH and file contents, and the logic that reads the answers stays pure.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import UsageError

COMMAND_TIMEOUT = 120.0
# The most read of one program's output (either stream) or one system file: `nvcc --version` prints a
# few hundred bytes, `ldconfig -p` some hundred kilobytes.
OUTPUT_LIMIT = 16 * 1024 * 1024


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
            process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(self.environ)
            )
        except OSError:
            return None
        with process:
            try:
                stdout, stderr = _read_at_most(process, time.monotonic() + timeout, OUTPUT_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                return CommandResult(124, "", f"{argv[0]} did not answer within {timeout:.0f}s")
            except _TooMuchOutput:
                process.kill()
                return CommandResult(125, "", f"{argv[0]} printed more than {OUTPUT_LIMIT // (1024 * 1024)} MiB; its answer is not read")
        return CommandResult(process.returncode, _text(stdout), _text(stderr))

    def run_visible(self, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> int:
        try:
            return subprocess.run(list(argv), env={**self.environ, **(environment or {})}, check=False).returncode
        except OSError as error:
            raise UsageError(f"cannot run {argv[0]}: {error.strerror or error}") from None

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, "rb") as handle:
                return _text(handle.read(OUTPUT_LIMIT))  # a small system file (/proc/driver/nvidia/version)
        except OSError:
            return None

    def list_dir(self, path: str) -> tuple[str, ...]:
        try:
            return tuple(sorted(os.listdir(path)))
        except OSError:
            return ()


class _TooMuchOutput(Exception):
    pass


def _read_at_most(process: subprocess.Popen[bytes], deadline: float, limit: int) -> tuple[bytes, bytes]:
    """A program's standard output and error, both read as they come until it closes them and exits;
    TimeoutExpired past the deadline, _TooMuchOutput past `limit` bytes of either (nothing more is read)."""
    assert process.stdout is not None and process.stderr is not None
    received = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(process.args, 0)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                received[key.fd] += chunk
                if len(received[key.fd]) > limit:
                    raise _TooMuchOutput()
    process.wait(max(0.0, deadline - time.monotonic()))
    return bytes(received[process.stdout.fileno()]), bytes(received[process.stderr.fileno()])


def _text(data: bytes) -> str:
    """As `subprocess.run(text=True, errors="replace")` decodes: universal newlines."""
    return data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")


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
