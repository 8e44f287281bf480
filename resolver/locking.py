"""One `compile` at a time per output directory: a second run waits for the first, then gives up clearly.

The lock file lives in the temporary directory (keyed by the output directory's path), so nothing is
added to the user's tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import LockTimeout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

DEFAULT_WAIT = 600.0


def lock_path(output_dir: Path) -> Path:
    key = hashlib.sha256(str(output_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cuda-constraints-{key}.lock"


@contextlib.contextmanager
def output_lock(output_dir: Path, enabled: bool = True, wait: float | None = None) -> Iterator[None]:
    if not enabled or fcntl is None:
        yield
        return
    wait = float(os.environ.get("CUDA_CONSTRAINTS_LOCK_WAIT", DEFAULT_WAIT)) if wait is None else wait
    path = lock_path(output_dir)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(output_dir, wait) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(descriptor)
