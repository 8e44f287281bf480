"""The index client: project pages from every index and find-links location, and per-file dependencies,
cached and coalesced; use it from one event loop.

Pages come from the Simple API, asked for as JSON (PEP 691) and read as HTML (PEP 503) when that is what
an index answers; a page the cache holds is revalidated or, without validators, reused for a while.
PyPI is read through its Simple API rather than its JSON API: for the default input the pages are half
the bytes and parse twice as fast (benchmarks/README.md). Which pages make a project is the routing's
business (sources.py). Dependencies are read by `MetadataReader` (reading.py) and cross-checked against
the name and version the index lists. Every fetch is coalesced: asking twice for one page or one file's
metadata makes one request.
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
from typing import TYPE_CHECKING, Any, TypeVar

from packaging.utils import NormalizedName

from ..errors import CudaConstraintsError, IndexUnavailable, InvalidMetadata, MetadataMismatch, OfflineCacheMiss
from ..errors.display import has_secret
from ..model.distributions import CoreMetadata, DistFile, Release
from .auth import CredentialStore
from .cache import Cache, CachedPage, Kept, PageFile, keep_page
from .http import Http, Limits, Response, Stats
from .page_worker import PageWorker
from .pages import ACCEPT, PageError, Slim, find_links_page
from .reading import MetadataReader
from .wheel import ZipReadError

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
logger = logging.getLogger(__name__)
PAGE_CONCURRENCY = 4
# The json module gives up (RecursionError) about here; a project page nests 3 levels.
JSON_DEPTH = 1000
# A page without validators or Cache-Control is reused this long (seconds); --refresh overrides.
DEFAULT_PAGE_MAX_AGE = 600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
FIND_LINKS = "<find-links>"  # the cache's name for a find-links page (it lists every project)
# Parses a page just fetched and writes it to its page file, if it is given one.
Keep = Callable[[Response, PageFile | None], Kept]


@dataclass(frozen=True)
class ClientOptions:
    offline: bool = False
    refresh: bool = False
    concurrency: int = 16
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    limits: Limits = field(default_factory=Limits)
    # Credentials for the indexes (and the hosts they send files from); None sends none.
    credentials: CredentialStore | None = field(default=None, compare=False)


class IndexClient:
    def __init__(
        self,
        options: ClientOptions,
        cache: Cache,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.options = options
        self.cache = cache
        self.credentials = options.credentials or CredentialStore(use_keyring=False, read_netrc=False)
        credentials = self.credentials if options.credentials is not None else None
        self.http = Http(
            options.concurrency, options.timeout, options.retries, options.backoff, transport, sleep, credentials, options.limits
        )
        self._tasks: dict[tuple[str, ...], asyncio.Task[Any]] = {}
        self._results: dict[tuple[str, ...], Any] = {}  # what finished fetches returned, for other threads
        # Projects whose page needed a request this run (fetched, or revalidated); the others came fresh
        # from the cache, and so, very likely, did their dependencies.
        self.fetched_pages: set[str] = set()
        self.reader = MetadataReader(self.http)
        # Project pages run to megabytes (pydantic-core's is 6 MB); a few at a time bound the memory they
        # take before parsing, while range reads keep the rest of the connections busy.
        self._page_slots = asyncio.Semaphore(PAGE_CONCURRENCY)
        # One page at a time parsed here (parsing holds the GIL anyway, and one bounds the memory it takes),
        # and one at a time in the page worker (its thread waits for it without the GIL): the pages the
        # worker takes (large ones, and once it runs, all) and the others do not queue behind each other.
        self._parser = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-parser")
        self._worker_pages = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-pages")
        self.page_worker = PageWorker()
        self._read_metadata: list[tuple[str, CoreMetadata]] = []  # to cache, when the client closes

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
        self._parser.submit(self._store_read_metadata)
        self._worker_pages.shutdown(wait=True)
        self._parser.shutdown(wait=True)  # finishes the cache writes still queued
        self.page_worker.close()

    # -- coalescing -------------------------------------------------------------------------------------

    def once(self, key: tuple[str, ...], make: Callable[[], Coroutine[Any, Any, T]]) -> Awaitable[T]:
        """The one fetch of `key` (started now, or already under way), shielded from its waiters' cancellation."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            task.add_done_callback(functools.partial(self._publish, key))
            self._tasks[key] = task
        return asyncio.shield(task)

    def _publish(self, key: tuple[str, ...], task: asyncio.Task[Any]) -> None:
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

    def finished(self, *key: str) -> Any:
        """The result of a fetch already done in the loop, for another thread; None when not done or failed."""
        return self._results.get(key)

    # -- pages ------------------------------------------------------------------------------------------

    async def page(self, index_url: str, name: NormalizedName) -> tuple[Slim, str] | None:
        """A project's page on one index (credential-free URL): (compact page, page URL), or None when the
        index has no such project."""
        return await self.once(("page", index_url, name), lambda: self._load_page(index_url, name))

    async def links_page(self, url: str) -> dict[NormalizedName, tuple[Slim, str]]:
        """A find-links page: the files it links to, by project."""
        return await self.once(("links", url), lambda: self._load_links(url))

    def cached_page(self, index_url: str, name: str) -> tuple[Slim, str] | bool | None:
        """A page from the disk cache when it may be used without asking (any thread): the page, None
        when the index was found not to have the project, False when the cache cannot answer."""
        page = self.cache.load_page(index_url, name)
        if page is None or not self._usable(page):
            return False
        return None if page.project.get("missing") else (page.project, page.url)

    def _usable(self, page: CachedPage) -> bool:
        return self.options.offline or (not self.options.refresh and page.is_fresh(time.time(), DEFAULT_PAGE_MAX_AGE))

    async def _load_page(self, index_url: str, name: NormalizedName) -> tuple[Slim, str] | None:
        url = f"{index_url.rstrip('/')}/{name}/"
        kept, page_url = await self._fetch(
            index_url, name, url, lambda response, file: self.page_worker.keep_simple(response.body, _content_type(response), name, file)
        )
        return None if kept.get("missing") else (kept, page_url)

    async def _load_links(self, url: str) -> dict[NormalizedName, tuple[Slim, str]]:
        kept, page_url = await self._fetch(
            url, FIND_LINKS, url, lambda response, file: keep_page({"projects": find_links_page(response.body)}, file)
        )
        return {name: (slim, page_url) for name, slim in kept.get("projects", {}).items()}

    async def _fetch(self, key_url: str, name: str, url: str, keep: Keep) -> tuple[Slim, str]:
        """A page and the URL it was answered from: from the cache when fresh, revalidated when it has
        validators, else fetched, parsed and cached off the loop (`keep`); a 404 is remembered (for as long
        as a page would be) as {"missing": True}, so a later index is not asked again on every run."""
        loop = asyncio.get_running_loop()
        # A cached page is read here, in the loop: loading one takes a fraction of a millisecond (its header
        # is parsed, its releases later), less than handing it to a thread that then waits for the
        # interpreter lock (5 ms a read when the resolvers are busy). Writes happen off the loop.
        page = self.cache.load_page(key_url, name)
        if page is not None and self._usable(page):
            return page.project, page.url
        if self.options.offline:
            raise OfflineCacheMiss(url)
        self.fetched_pages.add(name)
        async with self._page_slots:
            response = await self.http.get(url, "project", _validators(page), accept=frozenset({200, 304, 404, 410}))
        if response.status == 304 and page is not None:
            page = await loop.run_in_executor(None, self.cache.touch_page, key_url, name, page)
            return page.project, page.url
        # Parsing a page of megabytes and writing it to the cache happen off the loop, one at a time in each
        # of the two page threads (which bounds the memory they take).
        parser = self._worker_pages if self.page_worker.takes(response.body) else self._parser
        slim = await loop.run_in_executor(parser, self._keep, key_url, name, response, keep)
        return slim, response.url

    def _keep(self, key_url: str, name: str, response: Response, keep: Keep) -> Slim:
        etag, last_modified = response.headers.get("etag"), response.headers.get("last-modified")
        page = CachedPage(response.url, {}, etag, last_modified, time.time(), _max_age(response, etag or last_modified))

        def kept(file: PageFile | None) -> Kept:
            return keep_page({"missing": True}, file) if response.status in (404, 410) else _parsed(response, file, keep)

        written = kept(None if has_secret(response.url) else self.cache.page_file(key_url, name, page))
        if written.unwritten is not None:
            self.cache.write_failed(written.unwritten)
        if written.project is not None:
            return written.project
        # Written: read back from the cache, the page is mapped (its releases stay on disk until looked at).
        stored = self.cache.load_page(key_url, name)
        if stored is not None:
            return stored.project
        again = kept(None)  # the file went as soon as it was written
        assert again.project is not None  # a page is only ever written to a file
        return again.project

    # -- metadata ---------------------------------------------------------------------------------------

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        return await self.once(("metadata", file.cache_key), lambda: self._load_metadata(release, file))

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

    async def _load_metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        cached = self.cached_metadata(release, file)
        if cached is not None:
            return cached
        if self.options.offline and not file.url.startswith("file:"):
            raise OfflineCacheMiss(file.url)
        try:
            metadata = await self.reader.read(release, file)
            self.stats.metadata_reads[metadata.source] += 1
            logger.debug("%s: dependencies read by %s", file.filename, metadata.source)
            if metadata.name != release.name or metadata.version != release.version:
                expected, found = f"{release.name} {release.version}", f"{metadata.name} {metadata.version}"
                raise MetadataMismatch(file.url, file.filename, expected, found)
        except InvalidMetadata as invalid:
            # Remembered as invalid, so the next run skips the release without reading it again.
            self._parser.submit(self.cache.store_invalid_metadata, file.cache_key, invalid.reason)
            raise
        # Written when the client closes: written as they come, hundreds of small files (a few system calls
        # each, every one a hand-over of the interpreter lock) cost a cold compile 0.3 s.
        self._read_metadata.append((file.cache_key, metadata))
        return metadata

    def _store_read_metadata(self) -> None:
        read, self._read_metadata = self._read_metadata, []
        for key, metadata in read:
            self.cache.store_metadata(key, metadata)

    async def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        """The compiled extension modules a wheel ships; None (with a warning) when its file list cannot be read."""
        return await self.once(("extensions", file.cache_key), lambda: self._load_extensions(file))

    async def _load_extensions(self, file: DistFile) -> tuple[str, ...] | None:
        loop = asyncio.get_running_loop()
        cached = await loop.run_in_executor(None, self.cache.load_extensions, file.cache_key)
        if cached is not None:
            return cached
        if self.options.offline and not file.url.startswith("file:"):
            raise OfflineCacheMiss(file.url)
        try:
            names = await self.reader.extension_modules(file)
        except ZipReadError as error:
            logger.warning("%s: its file list cannot be read (%s); its per-torch builds are not checked", file.filename, error)
            return None
        self._parser.submit(self.cache.store_extensions, file.cache_key, names)
        return names


def _validators(page: CachedPage | None) -> dict[str, str]:
    headers = {"Accept": ACCEPT}
    if page is not None and page.etag:
        headers["If-None-Match"] = page.etag
    if page is not None and page.last_modified:
        headers["If-Modified-Since"] = page.last_modified
    return headers


def _parsed(response: Response, file: PageFile | None, keep: Keep) -> Kept:
    try:
        return keep(response, file)
    except PageError as error:
        raise IndexUnavailable(response.url, str(error), response.status) from None
    except RecursionError:
        raise IndexUnavailable(response.url, f"answered JSON nested more than {JSON_DEPTH} levels deep", response.status) from None
    except ValueError:
        raise IndexUnavailable(response.url, "answered invalid or truncated JSON", response.status) from None


def _content_type(response: Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def _max_age(response: Response, has_validator: str | None) -> float | None:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    return 0.0 if has_validator else None
