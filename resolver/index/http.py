"""HTTP for the index client: bounded concurrency, retries with backoff, byte ranges, and counters.

httpx errors never leave this module unwrapped: callers see `IndexUnavailable` (with the URL and status)
or, for a range request the server answers with the whole file, the narrow `RangeNotSupported`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from .. import __version__
from ..errors import IndexUnavailable, LimitExceeded

if TYPE_CHECKING:
    import httpx

    from .auth import CredentialStore

T = TypeVar("T")
logger = logging.getLogger(__name__)
USER_AGENT = f"cuda-constraints/{__version__} (+resolver for CUDA-consistent constraints) httpx/{{}}"  # httpx's version
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A host that does not resolve or refuses connections is asked once more, then reported with what to do.
UNREACHABLE_RETRIES = 1
UNREACHABLE_HINT = (
    "without network access to it, --offline compiles from the cache, --find-links DIR from a directory of the "
    "wheels, and a mirror can stand in for the index (--index-url, or pytorch-index in [tool.cuda-constraints] "
    "for the PyTorch index)"
)
MAX_RETRY_AFTER = 60.0
LANE_SIZE = 4
STREAMS_PER_CONNECTION = 4


MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on everything read from an index, enforced while reading; a breach is LimitExceeded (exit 5).

    The largest real answers are far below them: pydantic-core's project page is 12 MB, torch's central
    directory 1.5 MB, apache-airflow's METADATA 110 KB.
    """

    page_bytes: int = 64 * MIB  # one project page or index document (--max-page-size)
    metadata_bytes: int = 16 * MIB  # one METADATA or PKG-INFO, decompressed
    requires_dist: int = 20_000  # Requires-Dist lines in one METADATA (each a requirement the resolver weighs)
    directory_bytes: int = 32 * MIB  # one wheel's zip central directory
    download_bytes: int = MIB  # a file downloaded whole to read its metadata
    deadline: float = 300.0  # seconds for one request, start to last byte, on top of the read timeout


class RangeNotSupported(Exception):
    """The server ignored (200) or refused (416) a Range request; `body` holds a small full answer."""

    def __init__(self, url: str, status: int, body: bytes | None = None) -> None:
        super().__init__(url, status)
        self.url, self.status, self.body = url, status, body


@dataclass
class Stats:
    """What the network was asked for; the benchmark and `inspect` report these."""

    requests: int = 0
    bytes: int = 0
    retries: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    bytes_by_kind: Counter[str] = field(default_factory=Counter)
    # Files whose dependencies were read from the network (not the cache), and how.
    metadata_reads: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str, size: int) -> None:
        self.requests += 1
        self.bytes += size
        self.by_kind[kind] += 1
        self.bytes_by_kind[kind] += size

    @property
    def metadata_bytes(self) -> int:
        return sum(size for kind, size in self.bytes_by_kind.items() if kind not in ("project", "root"))

    def to_json(self) -> dict[str, object]:
        reads = sum(self.metadata_reads.values())
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "retries": self.retries,
            "requests_by_kind": dict(sorted(self.by_kind.items())),
            "bytes_by_kind": dict(sorted(self.bytes_by_kind.items())),
            "metadata_reads": dict(sorted(self.metadata_reads.items())),
            "metadata_bytes": self.metadata_bytes,
            "metadata_bytes_per_read": round(self.metadata_bytes / reads) if reads else 0,
        }


@dataclass(frozen=True)
class Response:
    status: int
    url: str
    headers: httpx.Headers
    body: bytes


class _Pool:
    """Clients ("lanes") sharing a bound on requests in flight; each request takes the least busy lane."""

    def __init__(self, clients: list[httpx.AsyncClient], in_flight: int) -> None:
        self.clients = clients
        self.semaphore = asyncio.Semaphore(in_flight)
        self.busy = [0] * len(clients)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


class Http:
    """A retrying async HTTP client; create and use it inside one event loop.

    Two pools, because the index serves two kinds of answer. Project pages run to megabytes: they go
    over HTTP/1.1 connections, split into lanes of four (httpcore's pool bookkeeping grows with the
    square of its size, and one pool of 16 costs twice the CPU per request of four of 4), since h2's
    frame handling costs twice the CPU of HTTP/1.1 on large bodies. Range reads and other small
    answers are latency-bound (about 120 ms each on the default index): they are multiplexed over
    HTTP/2, four times as many in flight; on a server without HTTP/2 the same pool speaks HTTP/1.1.
    """

    def __init__(
        self,
        concurrency: int = 16,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        credentials: CredentialStore | None = None,
        limits: Limits = Limits(),
    ) -> None:
        self.stats = Stats()
        self.limits = limits
        self._credentials = credentials
        self.retries, self.backoff, self._sleep = retries, backoff, sleep
        self._concurrency, self._timeout, self._transport = concurrency, timeout, transport
        self._pools: dict[str, _Pool] = {}

    def _pool(self, name: str) -> _Pool:
        """The pool, created on first use: a run served from the cache opens no connection at all."""
        if not self._pools:
            import httpx  # here: a run served from the cache never imports it (with what it brings, a tenth of a warm run)

            from .auth import index_auth

            # One TLS context for every client: building one costs 30 ms (reading the CA bundle).
            verify = httpx.create_ssl_context() if self._transport is None else True
            auth = index_auth(self._credentials) if self._credentials is not None else None

            def client(connections: int, http2: bool) -> httpx.AsyncClient:
                limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
                return httpx.AsyncClient(
                    headers={"User-Agent": USER_AGENT.format(httpx.__version__)},
                    timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 10.0)),
                    limits=limits,
                    follow_redirects=True,
                    auth=auth,
                    transport=self._transport,  # the given one in tests; else httpx's own
                    http2=http2,
                    verify=verify,
                )

            concurrency = self._concurrency
            lanes = max(1, concurrency // LANE_SIZE)
            self._pools["documents"] = _Pool([client(-(-concurrency // lanes), False) for _ in range(lanes)], concurrency)
            self._pools["files"] = _Pool([client(concurrency, True)], concurrency * STREAMS_PER_CONNECTION)
        return self._pools[name]

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()

    async def get(
        self,
        url: str,
        kind: str,
        headers: dict[str, str] | None = None,
        accept: frozenset[int] = frozenset({200}),
        small: bool = False,
        limit: int | None = None,
        retries: int | None = None,
    ) -> Response:
        """GET a whole document of at most `limit` bytes (default: the page limit); statuses outside
        `accept` (after `retries`, default the client's) raise IndexUnavailable, a larger body LimitExceeded.

        `small` answers (metadata files, range reads) go to the multiplexed pool.
        """
        most = self.limits.page_bytes if limit is None else limit

        async def read(response: httpx.Response) -> Response:
            if response.status_code not in accept:
                raise _status_error(url, response.status_code)
            body = await read_bounded(response, url, most)
            self.stats.count(kind, len(body))
            return Response(response.status_code, str(response.url), response.headers, body)

        return await self._with_retries(url, headers or {}, read, self._pool("files" if small else "documents"), retries)

    async def get_range(self, url: str, start: int | None, end: int, kind: str, full_limit: int = 0) -> tuple[bytes, int]:
        """Bytes [start, end) of a file, or its last `end` bytes when `start` is None; returns (bytes, file size).

        Never more bytes than asked are read. A server that ignores Range raises RangeNotSupported; its
        body is kept when it is at most `full_limit` bytes.
        """
        spec = f"bytes=-{end}" if start is None else f"bytes={start}-{end - 1}"
        asked = end if start is None else end - start

        async def read(response: httpx.Response) -> tuple[bytes, int]:
            if response.status_code == 206:
                total = _content_range_total(response.headers.get("content-range"))
                if total is None:
                    raise IndexUnavailable(url, "answered a Range request without a usable Content-Range", 206)
                body = await read_bounded(response, url, asked, what="the range asked for")
                self.stats.count(kind, len(body))
                return body, total
            if response.status_code in (200, 416):
                whole: bytes | None = None
                length = _content_length(response)
                if response.status_code == 200 and length is not None and 0 < length <= full_limit:
                    whole = await read_bounded(response, url, full_limit)
                    self.stats.count(kind + "-full", len(whole))
                raise RangeNotSupported(url, response.status_code, whole)
            raise _status_error(url, response.status_code)

        return await self._with_retries(url, {"Range": spec}, read, self._pool("files"))

    async def _with_retries(
        self, url: str, headers: dict[str, str], read: Callable[[httpx.Response], Awaitable[T]], pool: _Pool,
        retries: int | None = None,
    ) -> T:
        import httpx  # imported by the first request (`_pool`)

        try:
            urlsplit(url).port  # noqa: B018 - raises for a port out of range, which asyncio cannot connect to
        except ValueError as error:
            raise IndexUnavailable(url, f"not a usable URL ({error})") from None
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            status: int | None = None
            try:
                async with pool.semaphore:
                    lane = pool.busy.index(min(pool.busy))
                    pool.busy[lane] += 1
                    try:
                        # The deadline covers connecting, the answer and every byte of it: a server that
                        # sends one byte just within each read timeout is still cut off.
                        outcome = await asyncio.wait_for(self._attempt(pool.clients[lane], url, headers, read), self.limits.deadline)
                    finally:
                        pool.busy[lane] -= 1
                if not isinstance(outcome, _Retry):
                    return outcome
                status, delay = outcome.status, self._delay(attempt, outcome.retry_after)
                problem = _status_error(url, outcome.status).problem
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
                raise IndexUnavailable(url, f"not a usable URL ({error})") from None
            except asyncio.TimeoutError:
                problem, delay = f"did not finish within {self.limits.deadline:.0f}s (the deadline of one request)", self._delay(attempt)
            except httpx.TimeoutException:
                problem, delay = "timed out", self._delay(attempt)
            except httpx.TransportError as error:
                problem, delay = _describe_transport_error(error), self._delay(attempt)
                unreachable = _unreachable(error)
                if unreachable and attempt >= UNREACHABLE_RETRIES:  # a name that does not resolve, a port closed:
                    raise IndexUnavailable(url, f"{unreachable} (gave up after {attempt + 1} attempts); {UNREACHABLE_HINT}") from None
            except httpx.HTTPError as error:
                raise IndexUnavailable(url, f"request failed: {error}") from None
            if attempt == attempts - 1:
                raise IndexUnavailable(url, f"{problem} (gave up after {attempts} attempts)", status)
            self.stats.retries += 1
            logger.debug("retrying %s in %.1fs: %s", url, delay, problem)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], read: Callable[[httpx.Response], Awaitable[T]]
    ) -> T | _Retry:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code in RETRY_STATUSES:
                return _Retry(response.status_code, response.headers.get("retry-after"))
            return await read(response)

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after is not None:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                return min(seconds, MAX_RETRY_AFTER)
        return float(self.backoff * (2**attempt) * (1 + random.random() / 4))


@dataclass(frozen=True)
class _Retry:
    """An answer worth asking again for (429, 5xx)."""

    status: int
    retry_after: str | None


async def read_bounded(response: httpx.Response, url: str, limit: int, what: str = "") -> bytes:
    """The body, read as it streams in and cut off past `limit` bytes (decoded): never more in memory.

    A declared Content-Length over the limit fails before reading; a server that declares less and sends
    more is cut off all the same.
    """
    declared = _content_length(response)
    if declared is not None and declared > limit:
        raise LimitExceeded(url, f"declares {declared:,} bytes", limit, what)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise LimitExceeded(url, "sent more", limit, what)
    return bytes(body)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.strip().isdigit() else None


def _status_error(url: str, status: int | None) -> IndexUnavailable:
    reasons = {401: "authentication required", 403: "access denied", 404: "not found", 429: "rate limited"}
    reason = reasons.get(status or 0) or ("server error" if (status or 0) >= 500 else "unexpected answer")
    return IndexUnavailable(url, reason, status)


def _content_range_total(value: str | None) -> int | None:
    # "bytes 100-199/1000"
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here: only a Retry-After date needs it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _unreachable(error: BaseException) -> str:
    """Why a host cannot be reached at all ("" for any other failure): its name does not resolve, or it
    refuses connections. Asking again soon rarely helps, so such a failure is reported within seconds."""
    import socket

    seen: BaseException | None = error
    for _ in range(8):  # the chain of causes, a few deep (an exception raised twice may chain to itself)
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return f"cannot connect: the host name does not resolve ({seen})"
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return f"cannot connect: the host refuses connections ({seen})"
        seen = seen.__cause__ or seen.__context__
    return ""


def _describe_transport_error(error: httpx.TransportError) -> str:
    import httpx

    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error or 'connection refused'})"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"connection broken ({error or 'closed by the server'})"
    return f"network error ({type(error).__name__}: {error})"
