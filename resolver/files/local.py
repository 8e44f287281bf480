"""Reading the user's own files (requirements, constraints, configuration): regular files only, and at
most a limit of bytes, so that `-r /dev/zero`, a FIFO or a committed file of gigabytes is a clear error
rather than a process that waits or fills the memory."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MIB = 1024 * 1024
# One constraints file or configuration file; a compile of 3,000 projects with hashes writes 3 MB.
MAX_FILE_BYTES = 16 * MIB
# The requirements files of one input, together (what they include counted): each line becomes a
# requirement of some hundreds of bytes in memory, and real inputs are tens of kilobytes.
MAX_REQUIREMENTS_BYTES = MIB


def read_limited(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; OSError otherwise (FileNotFoundError and
    IsADirectoryError as `open` raises them, EINVAL for a device or FIFO, EFBIG for a larger file)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, a FIFO or a socket)", str(path))
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // MIB} MiB, the most read of one file", str(path))
    return content
