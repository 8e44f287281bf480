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

It is a plain `python -c` child that is sent a `ParseRequest` and the page's bytes and answers `Stored`,
`Parsed` (a page it did not write: its file URLs carry a token, or the cache cannot be written, with the
page's body) or `Refused` (the `PageError` that parsing here raises, re-raised so). Each message is a
pickled dataclass and a body, both sized (`_send`); both ends are this package. No multiprocessing, so
nothing is imported as `__main__` again and no shared-memory semaphore is needed. The worker ignores
SIGINT (a terminal sends it to the whole process group: the parent reports the interruption and closes
the worker) and exits when its stdin closes, the parent's end included. Where it cannot be started or
stops answering, pages are parsed here, as before.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import IO, Any

from packaging.utils import NormalizedName

from .cache import Kept, PageFile, keep_page
from .pages import PageError, pack, parse_simple, unpack

logger = logging.getLogger(__name__)
LARGE_PAGE = 1 << 18  # 256 KiB: the 20 largest pages of a GPU tree are megabytes, most others far smaller
_SIZES = struct.Struct("<QQ")  # a message's size, then its body's


@dataclass(frozen=True)
class ParseRequest:
    """Parse the page sent as the body (a project's Simple API page) and, given a file, write it there."""

    content_type: str
    name: NormalizedName
    file: PageFile | None


@dataclass(frozen=True)
class Stored:
    """The page was written to its file (the parent maps it from there)."""


@dataclass(frozen=True)
class Parsed:
    """The page, not written: packed (`pages.pack`), its releases' rows in the body."""

    header: dict[str, Any]
    unwritten: str | None  # why its file could not be written, if it was to be


@dataclass(frozen=True)
class Refused:
    """The page is not a usable Simple API page: what `PageError` said."""

    problem: str


Answer = Stored | Parsed | Refused


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
        (`takes`), so that neither its parsing nor its writing holds this process's interpreter lock;
        PageError for a page that is not a usable one, wherever it was parsed."""
        if self.takes(body):
            with self._lock:
                try:
                    answer, data = self._ask(ParseRequest(content_type, name, file), body)
                except (OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
                    logger.debug("the page worker is not answering (%s); pages are parsed in this process", error)
                    self._failed = True
                    self.close()
                else:
                    return _answered(answer, data)
        return keep_simple(body, content_type, name, file)

    def _ask(self, request: ParseRequest, body: bytes) -> tuple[Answer, bytes]:
        process = self._process or self._start()
        assert process.stdin is not None and process.stdout is not None
        _send(process.stdin, request, body)
        answer, data = _receive(process.stdout)
        if not isinstance(answer, Stored | Parsed | Refused):
            raise ValueError(f"the page worker answered {type(answer).__name__}")
        return answer, data

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
    """Parse a page and, given a file, write it there (`keep_page`); PageError for an unusable one."""
    return keep_page(parse_simple(body, content_type, name), file)


def _answered(answer: Answer, data: bytes) -> Kept:
    """The worker's answer as `keep_simple` would have given it: the page kept, or the same error."""
    if isinstance(answer, Refused):
        raise PageError(answer.problem)
    if isinstance(answer, Parsed):
        return Kept(unpack(answer.header, memoryview(data)), answer.unwritten)
    return Kept(None)


def serve() -> None:
    """The worker: parse (and write) each page it is sent until its stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request, body = _receive(stdin)
        except (ValueError, EOFError):
            return  # the parent closed its end (or is gone)
        assert isinstance(request, ParseRequest)
        chunks: list[bytes | memoryview] = []
        try:
            kept = keep_simple(body, request.content_type, request.name, request.file)
            del body  # the page's bytes are not needed while its answer is written
            answer: Answer = Stored()
            if kept.content is not None:
                header, chunks = pack(kept.content)
                answer = Parsed(header, kept.unwritten)
        except PageError as error:
            answer = Refused(str(error))
        _send(stdout, answer, *chunks)


def _send(stream: IO[bytes], message: object, *body: bytes | memoryview) -> None:
    """One message: the sizes of the pickled message and of its body, the message, then the body, written
    piece by piece (a page's body is megabytes: joined, it would be in memory twice)."""
    pickled = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_SIZES.pack(len(pickled), sum(map(len, body))) + pickled)
    for piece in body:
        stream.write(piece)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[object, bytes]:
    """One message and its body; EOFError at the end of the stream, ValueError for a cut one."""
    sizes = stream.read(_SIZES.size)
    if not sizes:
        raise EOFError("the stream ended")
    if len(sizes) != _SIZES.size:
        raise ValueError("the stream ended inside a message")
    message_size, body_size = _SIZES.unpack(sizes)
    pickled = stream.read(message_size)
    body = stream.read(body_size)
    if len(pickled) != message_size or len(body) != body_size:
        raise ValueError("the stream ended inside a message")
    return pickle.loads(pickled), body
