"""Ctrl-C and SIGTERM: one line and exit 130 or 143, at any point of a run, never a traceback.

`Interrupted` is a KeyboardInterrupt (so no `except Exception` swallows it) raised in the main thread for
SIGINT and, once `handle_signals` ran, for SIGTERM. Long waits cancel the work of other threads when they
see it (the index cancels its requests); `deferred` holds signals back while files are being replaced,
so a run is interrupted before the new files are in place or after all of them are, never between.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """The run was interrupted by a signal; `exit_code` is 128 + its number."""

    def __init__(self, signum: int = signal.SIGINT, outcome: str = "") -> None:
        super().__init__(signum)
        # What the run had done when it stopped, for the one line printed ("" : nothing was written).
        self.signum, self.outcome = signum, outcome

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def handle_signals() -> None:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread (call it from there, first thing).

    A signal the parent set to be ignored stays ignored (as Python leaves an ignored SIGINT alone).
    """
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _raise)


def as_interrupted(error: KeyboardInterrupt) -> Interrupted:
    return error if isinstance(error, Interrupted) else Interrupted(signal.SIGINT)


def interrupt_of(error: BaseException) -> Interrupted | None:
    """The interrupt `error` is, or wraps: before Python 3.12, an exception raised in a class's
    `__set_name__` reaches its caller as a RuntimeError, so a Ctrl-C while a module being imported defines
    a class with a `cached_property` does too."""
    if isinstance(error, RuntimeError) and isinstance(error.__cause__, KeyboardInterrupt):
        error = error.__cause__
    return as_interrupted(error) if isinstance(error, KeyboardInterrupt) else None


@contextlib.contextmanager
def deferred(outcome: str) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back until the block is done, then raise the first that came, saying
    `outcome`: what the block did."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, remember) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(received[0], outcome)
