"""Progress on stderr: a live line on a terminal, plain lines in CI logs."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
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
        self._parts: dict[str, str] = {}

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

    def status(self, key: str, text: str) -> None:
        """One part of the live line (the network, a target being resolved); empty text removes it."""
        if self.quiet or not self.live:
            return
        with self._lock:
            if text:
                self._parts[key] = text
            else:
                self._parts.pop(key, None)
            line = " · ".join(f"{k}: {v}" for k, v in sorted(self._parts.items()))
        self.update(line)

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
        self.progress.status(self.label, f"{self.pinned} pinned")

    def ending(self, state: object) -> None:
        self.progress.status(self.label, "")


class NetworkTicker:
    """While a compile runs, the live line shows what the network has done so far (a terminal only)."""

    def __init__(self, progress: Progress, read: Callable[[], str]) -> None:
        self.progress, self.read = progress, read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def __enter__(self) -> NetworkTicker:
        if self.progress.live and not self.progress.quiet:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        self.progress.status("network", "")

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.progress.status("network", self.read())
