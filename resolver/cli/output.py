"""Everything the command line prints that is not a command's own output: errors and warnings, made safe.

Any URL has its secrets masked and control characters (but newlines) are escaped, in every message;
warnings of every module are printed once each, through the progress display (even with --quiet). The
values a log line is formatted with (names, file names, reasons an index gave) are escaped newlines and
all: a value can never start a line of its own in a CI log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from ..errors.display import escape, escape_for_terminal, redact_text
from .progress import Progress


def safe_text(message: str) -> str:
    """Any URL in a message with its secrets masked, and control characters (but newlines) escaped."""
    return escape_for_terminal(redact_text(message))


class _Handler(logging.Handler):
    """Log records of every module, each message once: warnings as `warning: ...`, and with --verbose the
    debug lines (which metadata source answered, retries, cache discards, every release passed over and
    why) as `debug: ...`, through the progress display."""

    def __init__(self, progress: Progress, level: int) -> None:
        super().__init__(level)
        self.progress = progress
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = safe_text(_formatted(record))
        if message in self.seen:
            return
        self.seen.add(message)
        if record.levelno >= logging.WARNING:
            self.progress.warning(message)
        else:
            self.progress.debug(message)


def _formatted(record: logging.LogRecord) -> str:
    """The record's message with every value it is formatted with escaped (numbers as they are)."""
    if not isinstance(record.args, tuple) or not record.args:
        return record.getMessage()
    values = tuple(value if isinstance(value, (int, float)) else escape(str(value)) for value in record.args)
    return str(record.msg) % values


@contextlib.contextmanager
def warnings_to(progress: Progress, verbose: bool = False) -> Iterator[None]:
    level = logging.DEBUG if verbose else logging.WARNING
    logger = logging.getLogger("resolver")
    handler = _Handler(progress, level)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)


