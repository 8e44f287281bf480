"""The index client: project pages and per-file dependencies, cached and coalesced.

Pages come from the PyPI JSON API, revalidated or reused from the disk cache; dependencies are read by
`MetadataReader` (reading.py) and cross-checked against the name and version the index lists. Every fetch
is coalesced: asking twice for one project or one file's metadata makes one request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from packaging.utils import canonicalize_name

from ..errors import (
    CudaConstraintsError,
    IndexUnavailable,
    InvalidMetadata,
    MetadataMismatch,
    OfflineCacheMiss,
    ProjectNotFound,
)
from ..errors.display import has_secret
from ..model.distributions import (
    DEFAULT_INDEX_URL,
    CoreMetadata,
    DistFile,
    Project,
    Release,
)
from .auth import CredentialStore, IndexAuth
from .cache import Cache, CachedPage
from .http import Http, Limits, Response, Stats
from .pypi_json import (
    PageError,
    parse_page,
    project_from_slim,
)
from .reading import MetadataReader

T = TypeVar("T")
logger = logging.getLogger(__name__)
TAIL_SIZE = 64 * 1024
# The json module gives up (RecursionError) about here; a project page nests 5 levels.
JSON_DEPTH = 1000
PAGE_CONCURRENCY = 4
# A project page without validators or Cache-Control is reused this long (seconds); --refresh overrides.
DEFAULT_PAGE_MAX_AGE = 600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True)
class ClientOptions:
    index_url: str = DEFAULT_INDEX_URL
    offline: bool = False
    refresh: bool = False
    concurrency: int = 16
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    limits: Limits = field(default_factory=Limits)
    # Credentials for the index (and the hosts it sends files from); None sends none.
    credentials: CredentialStore | None = field(default=None, compare=False)


def json_api_root(index_url: str) -> str:
    """`https://host/simple` -> `https://host/`: the JSON API lives at the same root (`/pypi/<name>/json`)."""
    root = index_url.rstrip("/")
    if root.endswith("/simple"):
        root = root[: -len("/simple")]
    return root + "/"


class IndexClient:
    """Async access to one index; use it from one event loop."""

    def __init__(
        self,
        options: ClientOptions,
        cache: Cache,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.options = options
        self.cache = cache
        credentials = options.credentials or CredentialStore(use_keyring=False, read_netrc=False)
        # The index without credentials: what is requested, cached and shown; the credentials stay in the store.
        self.index_url = credentials.add(options.index_url)
        self.root = json_api_root(self.index_url)
        auth = IndexAuth(credentials) if options.credentials is not None else None
        self.http = Http(
            options.concurrency, options.timeout, options.retries, options.backoff, transport, sleep, auth, options.limits
        )
        self._tasks: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._results: dict[tuple[str, str], Any] = {}  # what finished fetches returned, for other threads
        # Projects whose page needed a request this run (fetched, or revalidated); the others came fresh
        # from the cache, and so, very likely, did their dependencies.
        self.fetched_pages: set[str] = set()
        self.reader = MetadataReader(self.http, self.root)
        # Project pages run to megabytes (pydantic-core's is 12 MB); a few at a time bound the memory
        # they take before parsing, while range reads keep the rest of the connections busy.
        self._page_slots = asyncio.Semaphore(PAGE_CONCURRENCY)
        # One page parsed at a time: parsing holds the GIL anyway, and one bounds the memory it takes.
        self._parser = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-parser")

    @property
    def stats(self) -> Stats:
        return self.http.stats

    def cancel_all(self) -> None:
        """Cancel every fetch in flight (in the loop's thread): the run was interrupted."""
        for task in self._tasks.values():
            task.cancel()

    async def close(self) -> None:
        """Cancel what is still in flight (prefetches nobody waits for) and close connections."""
        pending = [task for task in self._tasks.values() if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.http.close()
        self._parser.shutdown(wait=True)  # finishes the cache writes still queued

    def project_url(self, name: str) -> str:
        return f"{self.root}pypi/{canonicalize_name(name)}/json"

    # -- coalescing -------------------------------------------------------------------------------------

    def _once(self, key: tuple[str, str], make: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            task.add_done_callback(functools.partial(self._publish, key))
            self._tasks[key] = task
        return task

    def _publish(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        """In the loop's thread, when a fetch ends: its result into a plain dict other threads may read (a
        dict assignment is atomic), its failure into the log (whoever awaits the fetch reports it)."""
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._results[key] = task.result()
        elif isinstance(error, CudaConstraintsError):
            logger.debug("fetch failed: %s", error.message())
        else:
            logger.warning("a fetch failed unexpectedly: %s: %s", type(error).__name__, error)

    async def project(self, name: str) -> Project:
        name = canonicalize_name(name)
        return await asyncio.shield(self._once(("project", name), lambda: self._load_project(name)))

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        key = ("metadata", file.cache_key)
        return await asyncio.shield(self._once(key, lambda: self._load_metadata(release, file)))

    # -- project pages ----------------------------------------------------------------------------------

    def finished(self, kind: str, key: str) -> Any:
        """The result of a fetch already done in the loop, for another thread; None when not done or failed."""
        return self._results.get((kind, key))

    def cached_project(self, name: str) -> Project | None:
        """The project from the disk cache when it may be used without asking the index (any thread)."""
        page = self.cache.load_page(self.index_url, canonicalize_name(name))
        if page is not None and self._usable(page):
            return project_from_slim(page.project, name, page.url)
        return None

    def cached_metadata(self, release: Release, file: DistFile) -> CoreMetadata | None:
        """A file's metadata from the disk cache, when it is there (any thread).

        Raises InvalidMetadata when an earlier run found the file's metadata invalid.
        """
        cached = self.cache.load_metadata(file.cache_key)
        if isinstance(cached, str):
            raise InvalidMetadata(file.url, file.filename, cached)
        if cached is not None and cached.name == release.name and cached.version == release.version:
            return cached
        return None

    def _usable(self, page: CachedPage) -> bool:
        return self.options.offline or (not self.options.refresh and page.is_fresh(time.time(), DEFAULT_PAGE_MAX_AGE))

    async def _load_project(self, name: str) -> Project:
        url = self.project_url(name)
        loop = asyncio.get_running_loop()
        # Cache files are read and written off the loop, which keeps answering the reads in flight.
        page = await loop.run_in_executor(None, self.cache.load_page, self.index_url, name)
        if page is not None and self._usable(page):
            return project_from_slim(page.project, name, page.url)
        if self.options.offline:
            raise OfflineCacheMiss(url)
        self.fetched_pages.add(name)
        headers = {"Accept": "application/json"}
        if page is not None and page.etag:
            headers["If-None-Match"] = page.etag
        if page is not None and page.last_modified:
            headers["If-Modified-Since"] = page.last_modified
        async with self._page_slots:
            response = await self.http.get(url, "project", headers, accept=frozenset({200, 304, 404, 410}))
        if response.status in (404, 410):
            raise ProjectNotFound(name, url)
        if response.status == 304 and page is not None:
            page = await loop.run_in_executor(None, self.cache.touch_page, self.index_url, name, page)
            return project_from_slim(page.project, name, page.url)
        etag, last_modified = response.headers.get("etag"), response.headers.get("last-modified")
        # Parsing a page of megabytes and writing it to the cache happen off the event loop too, one at a
        # time (which bounds the memory they take).
        return await loop.run_in_executor(self._parser, self._keep_page, response, name, etag, last_modified)

    def _keep_page(self, response: Response, name: str, etag: str | None, last_modified: str | None) -> Project:
        slim = self._parse_page(response, name)
        page = CachedPage(response.url, slim, etag, last_modified, time.time(), _max_age(response, etag or last_modified))
        if not slim.get("secret") and not has_secret(response.url):
            self.cache.store_page(self.index_url, name, page)
        return project_from_slim(slim, name, response.url)

    def _parse_page(self, response: Response, name: str) -> dict[str, Any]:
        content_type = response.headers.get("content-type", "")
        try:
            slim = parse_page(response.body)
        except PageError as error:
            raise IndexUnavailable(response.url, str(error), response.status) from None
        except RecursionError:
            raise IndexUnavailable(response.url, f"answered JSON nested more than {JSON_DEPTH} levels deep", response.status) from None
        except ValueError:
            what = "HTML" if "html" in content_type or response.body.lstrip()[:1] == b"<" else "invalid or truncated JSON"
            raise IndexUnavailable(response.url, f"answered {what} where the PyPI JSON API was expected", response.status) from None
        if slim["name"] and canonicalize_name(slim["name"]) != name:
            raise IndexUnavailable(response.url, f"answered the page of {slim['name']!r} for {name!r}", response.status)
        return slim

    # -- metadata ---------------------------------------------------------------------------------------

    async def _load_metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        cached = await asyncio.get_running_loop().run_in_executor(None, self.cached_metadata, release, file)
        if cached is not None:
            return cached
        if self.options.offline:
            raise OfflineCacheMiss(file.url)
        try:
            metadata = await self.reader.read(release, file)
            self.stats.metadata_reads[metadata.source] += 1
            logger.debug("%s: dependencies read by %s", file.filename, metadata.source)
            if metadata.name != release.name or metadata.version != release.version:
                raise MetadataMismatch(file.url, file.filename, f"{release.name} {release.version}", f"{metadata.name} {metadata.version}")
        except InvalidMetadata as invalid:
            # Remembered as invalid, so the next run skips the release without reading it again.
            self._parser.submit(self.cache.store_invalid_metadata, file.cache_key, invalid.reason)
            raise
        # Written by the parser thread: hundreds of small files would otherwise hold up the loop.
        self._parser.submit(self.cache.store_metadata, file.cache_key, metadata)
        return metadata

def _max_age(response: Response, has_validator: str | None) -> float | None:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    return 0.0 if has_validator else None
