"""Everything the command line prints that is not a command's own output: errors and warnings, made safe.

Any URL has its secrets masked and control characters (but newlines) are escaped, in every message;
warnings of every module are printed once each, through the progress display (even with --quiet).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from ..errors.display import escape_for_terminal, redact_text
from .progress import Progress


def safe_text(message: str) -> str:
    """Any URL in a message with its secrets masked, and control characters (but newlines) escaped."""
    return escape_for_terminal(redact_text(message))


class _WarningHandler(logging.Handler):
    """Warnings of every module, each once, as `warning: ...` lines through the progress display."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.WARNING)
        self.progress = progress
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = safe_text(record.getMessage())
        if message not in self.seen:
            self.seen.add(message)
            self.progress.warning(message)


@contextlib.contextmanager
def warnings_to(progress: Progress) -> Iterator[None]:
    logger = logging.getLogger("resolver")
    handler = _WarningHandler(progress)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)


