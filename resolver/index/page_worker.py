"""Large project pages are parsed and cached in a worker process, beside the interpreter that fetches and
resolves.

Parsing a page is Python work (pydantic-core's 7 MB page takes 0.1 s of CPU, a cold run of a GPU
project's tree parses 60 to 80 MB of pages), and so is writing its megabytes to the cache piece by piece:
in this process both hold the interpreter lock that the HTTP machinery and the resolvers need. A page over
LARGE_PAGE bytes is handed to one worker process on the other core, which parses it and writes its page
file (`cache.keep_page`); the parent then maps that file. The worker is started by the first large page
(a warm run, or a small local index, never starts one); from then on it takes every page, since even a
small page's file costs this process a millisecond of system calls. The client's two page threads share
it, one request at a time.

It is a plain `python -c` child that reads requests on stdin and answers on stdout: "stored", or a page it
did not write (its file URLs carry a token, or the cache cannot be written) in its packed form
(`pages.pack`). No multiprocessing, so nothing is imported as `__main__` again and no shared-memory
semaphore is needed. The worker ignores SIGINT (a terminal sends it to the whole process group: the
parent reports the interruption and closes the worker) and exits when its stdin closes, the parent's end
included. Where it cannot be started or stops answering, pages are parsed here, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from packaging.utils import NormalizedName

from .cache import CachedPage, Kept, PageFile, keep_page
from .pages import PageError, pack, parse_simple, unpack

logger = logging.getLogger(__name__)
LARGE_PAGE = 1 << 18  # 256 KiB: the 20 largest pages of a GPU tree are megabytes, most others far smaller


class PageWorker:
    """`keep_simple` for the client's page threads: large pages, and once it runs every page, in a worker
    process that answers one page at a time."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._lock = threading.Lock()  # one request and its answer at a time on the pipes

    def takes(self, body: bytes) -> bool:
        """Whether a page goes to the worker process: a large one, and once the worker runs, every one."""
        return (len(body) > LARGE_PAGE or self._process is not None) and not self._failed

    def keep_simple(self, body: bytes, content_type: str, name: NormalizedName, file: PageFile | None = None) -> Kept:
        """A project's page parsed and, given a file, written there: in the worker when it takes the page
        (`takes`), so that neither its parsing nor its writing holds this process's interpreter lock."""
        if self.takes(body):
            with self._lock:
                try:
                    answer, data = self._ask({"content_type": content_type, "name": name, "file": _file_fields(file)}, body)
                except (OSError, ValueError) as error:
                    logger.debug("the page worker is not answering (%s); pages are parsed in this process", error)
                    self._failed = True
                    self.close()
                else:
                    return _answered(answer, data)
        return keep_simple(body, content_type, name, file)

    def _ask(self, request: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        process = self._process or self._start()
        assert process.stdin is not None and process.stdout is not None
        _send(process.stdin, request, body)
        return _receive(process.stdout)

    def _start(self) -> subprocess.Popen[bytes]:
        # The parent's import path, so the worker imports this very package (not one in its directory).
        code = f"import sys; sys.path[:] = {sys.path!r}; from {__name__} import serve; serve()"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a worker that died leaves a broken pipe to flush
                    stream.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def keep_simple(body: bytes, content_type: str, name: NormalizedName, file: PageFile | None) -> Kept:
    """Parse a page and, given a file, write it there (`keep_page`)."""
    return keep_page(parse_simple(body, content_type, name), file)


def _file_fields(file: PageFile | None) -> dict[str, Any] | None:
    return None if file is None else {"path": str(file.path), **file.page.record()}


def _file_from(fields: dict[str, Any] | None) -> PageFile | None:
    return None if fields is None else PageFile(Path(fields["path"]), CachedPage.from_record(fields, {}))


def _answered(answer: dict[str, Any], data: bytes) -> Kept:
    """The worker's answer as `keep_simple` would have given it: the page kept, or the same error."""
    kind = answer.get("kind")
    if kind == "stored":
        return Kept(None)
    if kind == "page":
        return Kept(unpack(dict(answer["project"]), memoryview(data)), answer.get("unwritten"))
    if kind == "page-error":
        raise PageError(str(answer.get("message", "")))
    if kind == "too-deep":
        raise RecursionError("nested too deeply")
    if kind == "invalid-json":
        raise ValueError("invalid JSON")
    raise OSError(f"the page worker answered {kind!r}")


def serve() -> None:
    """The worker: parse (and write) each page it is sent until its stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request, body = _receive(stdin)
        except ValueError:
            return  # the parent closed its end (or is gone)
        chunks: list[bytes | memoryview] = []
        try:
            kept = keep_simple(body, request["content_type"], NormalizedName(request["name"]), _file_from(request["file"]))
            del body  # the page's bytes are not needed while its answer is written
            answer: dict[str, Any] = {"kind": "stored"}
            if kept.project is not None:
                packed, chunks = pack(kept.project)
                answer = {"kind": "page", "project": packed, "unwritten": kept.unwritten}
        except PageError as error:
            answer = {"kind": "page-error", "message": str(error)}
        except RecursionError:
            answer = {"kind": "too-deep"}
        except ValueError:
            answer = {"kind": "invalid-json"}
        _send(stdout, answer, *chunks)


def _send(stream: IO[bytes], header: dict[str, Any], *body: bytes | memoryview) -> None:
    """One message: a JSON header line (with the body's size), then the body, written piece by piece (a
    page's body is megabytes: joined, it would be in memory twice)."""
    stream.write(json.dumps({**header, "size": sum(map(len, body))}, separators=(",", ":")).encode() + b"\n")
    for piece in body:
        stream.write(piece)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    """One message; ValueError at the end of the stream or for a damaged one."""
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise ValueError("the stream ended")
    header = json.loads(line)
    size = int(header.pop("size"))
    body = stream.read(size)
    if len(body) != size:
        raise ValueError("the stream ended inside a message")
    return header, body
