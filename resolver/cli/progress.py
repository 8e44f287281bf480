"""Progress on stderr: a live line on a terminal, plain lines in CI logs."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

from resolvelib import BaseReporter

from ..resolve.candidates import Candidate, Req


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = self.stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._last_live = 0.0
        self._live_shown = False

    def __call__(self, message: str) -> None:
        """A step worth a line in the log."""
        if self.quiet:
            return
        with self._lock:
            self._clear_live()
            print(message, file=self.stream, flush=True)

    def debug(self, message: str) -> None:
        """A detail for --verbose (shown even with --quiet: asking for both means wanting it)."""
        with self._lock:
            self._clear_live()
            print(f"debug: {message}", file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        """Something the user should know even with --quiet."""
        with self._lock:
            self._clear_live()
            print(f"warning: {message}", file=self.stream, flush=True)

    def update(self, message: str) -> None:
        """A passing state: shown in place on a terminal (at most 10 times a second), never logged."""
        if self.quiet or not self.live:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last_live < 0.1:
                return
            self._last_live = now
            width = shutil.get_terminal_size((80, 20)).columns - 1
            self.stream.write("\r" + message[:width].ljust(width))
            self.stream.flush()
            self._live_shown = True

    def done(self) -> None:
        with self._lock:
            self._clear_live()

    def _clear_live(self) -> None:
        if self._live_shown:
            self.stream.write("\r" + " " * (shutil.get_terminal_size((80, 20)).columns - 1) + "\r")
            self._live_shown = False


class LiveReporter(BaseReporter[Req, Candidate, str]):
    """Feeds resolvelib's steps into the live line."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label = progress, label
        self.pinned = 0

    def pinning(self, candidate: object) -> None:
        self.pinned += 1
        self.progress.update(f"{self.label}: {self.pinned} pinned, trying {candidate}")
