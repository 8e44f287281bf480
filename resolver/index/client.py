"""The index client: the one path by which project pages, find-links pages, per-file dependencies and (for
close names to a project no index has) an index's root listing are fetched, each fetch coalesced; use it
from one event loop.

Pages come from the Simple API, asked for as JSON (PEP 691) and read as HTML (PEP 503) when that is what
an index answers; a page the cache holds is revalidated or, without validators, reused for a while.
PyPI is read through its Simple API rather than its JSON API: for the default input the pages are half
the bytes and parse twice as fast (benchmarks/README.md). Which pages make a project is the routing's
business (sources.py). Dependencies are read by `MetadataReader` (reading.py) and cross-checked against
the name and version the index lists. Every fetch is coalesced (`once`): asking twice for one page or one
file's metadata makes one request; every answer goes into the run's `Store` (store.py), where any thread
finds it, and the disk cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from packaging.utils import NormalizedName

from ..errors import IndexUnavailable, InvalidMetadata, MetadataMismatch, OfflineCacheMiss
from ..errors.display import has_secret
from ..model.distributions import CoreMetadata, DistFile, Release
from .auth import CredentialStore
from .cache import Cache, CachedPage, Kept, PageFile, keep_page
from .http import MIB, Http, Limits, Response, Stats
from .page_worker import PageWorker
from .pages import ACCEPT, MISSING, PageError, find_links_directory, find_links_page, root_names
from .reading import MetadataReader
from .store import UNKNOWN, Extensions, Store
from .wheel import ZipReadError

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
logger = logging.getLogger(__name__)
PAGE_CONCURRENCY = 4
_MAX_AGE = re.compile(r"max-age=(\d+)")
FIND_LINKS = "<find-links>"  # the cache's name for a find-links page (it lists every project)
# An index's root listing, read for "did you mean" only: a small one, soon, or none (PyPI's lists 700,000
# names in tens of MB, and is never asked for it).
ROOT_BYTES = 2 * MIB
ROOT_TIMEOUT = 10.0
NO_ROOT_LISTING = frozenset({"pypi.org", "test.pypi.org", "files.pythonhosted.org"})
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
        self.store = Store(cache, options.offline, options.refresh)
        self.credentials = options.credentials or CredentialStore(use_keyring=False, read_netrc=False)
        credentials = self.credentials if options.credentials is not None else None
        self.http = Http(
            options.concurrency, options.timeout, options.retries, options.backoff, transport, sleep, credentials, options.limits
        )
        self._tasks: dict[tuple[str, ...], asyncio.Task[Any]] = {}  # every fetch of the run, by what it fetches
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
        self._parser.submit(self.store.write)
        self._worker_pages.shutdown(wait=True)
        self._parser.shutdown(wait=True)  # finishes the cache writes still queued
        self.page_worker.close()

    def once(self, key: tuple[str, ...], make: Callable[[], Coroutine[Any, Any, T]]) -> Awaitable[T]:
        """The one fetch of `key` (started now, or already under way or done), shielded from its waiters'
        cancellation: a fetch that fails fails alike for everyone who asks."""
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(make())
        return asyncio.shield(task)

    # -- pages ------------------------------------------------------------------------------------------

    async def page(self, index_url: str, name: NormalizedName) -> CachedPage:
        """A project's page on one index (credential-free URL), as the store has it or as fetched now: its
        content is MISSING when the index has no such project."""
        found = self.store.page(index_url, name)
        if found is not None:
            return found
        return await self.once(("page", index_url, name), lambda: self._load_page(index_url, name))

    async def links_page(self, url: str) -> CachedPage:
        """A find-links location's page: an HTML page of links, or a local directory listed (`file://` or a
        path); its content is a LinksPage."""
        found = self.store.page(url, FIND_LINKS)
        if found is not None:
            return found
        if url.startswith(("http://", "https://")):
            return await self.once(("links", url), lambda: self._load_links(url))
        return await self.once(("directory", url), lambda: self._list_directory(url))

    async def root_names(self, index_url: str) -> frozenset[NormalizedName]:
        """The projects an index (credential-free URL) lists at its root, for close names to one it does not
        have; none offline, from PyPI, or when the listing fails in any way (it is never an error). Asked
        once a run, and not cached."""
        if self.options.offline or urlsplit(index_url).hostname in NO_ROOT_LISTING:
            return frozenset()
        return await self.once(("root", index_url), lambda: self._load_root(index_url))

    async def _load_root(self, index_url: str) -> frozenset[NormalizedName]:
        url = f"{index_url.rstrip('/')}/"
        try:
            # One attempt: an index whose root fails only gives no suggestions, and the error is not held up.
            fetched = self.http.get(url, "root", {"Accept": ACCEPT}, limit=ROOT_BYTES, retries=0)
            response = await asyncio.wait_for(fetched, ROOT_TIMEOUT)
            loop = asyncio.get_running_loop()
            names = await loop.run_in_executor(self._parser, root_names, response.body, _content_type(response))
        except (IndexUnavailable, PageError, asyncio.TimeoutError) as error:  # LimitExceeded is an IndexUnavailable
            why = error.message() if isinstance(error, IndexUnavailable) else str(error) or f"no answer within {ROOT_TIMEOUT:.0f}s"
            logger.debug("%s: no root listing to suggest names from (%s)", url, why)
            return frozenset()
        logger.debug("%s lists %d projects", url, len(names))
        return names

    async def _load_page(self, index_url: str, name: NormalizedName) -> CachedPage:
        url = f"{index_url.rstrip('/')}/{name}/"
        return await self._fetch(
            index_url, name, url, lambda response, file: self.page_worker.keep_simple(response.body, _content_type(response), name, file)
        )

    async def _load_links(self, url: str) -> CachedPage:
        return await self._fetch(url, FIND_LINKS, url, lambda response, file: keep_page(find_links_page(response.body), file))

    async def _list_directory(self, place: str) -> CachedPage:
        """A find-links directory's regular files, listed in a thread; its files are the only local files
        read (a page fetched over the network may name any file: URL)."""
        path = Path(place.removeprefix("file://"))
        entries = await asyncio.get_running_loop().run_in_executor(None, _list_directory, path)
        self.reader.local_files.update(url for _, url, _ in entries)
        page = CachedPage("", find_links_directory(entries), None, None, time.time(), None)
        self.store.put_page(place, FIND_LINKS, page)
        return page

    async def _fetch(self, key_url: str, name: str, url: str, keep: Keep) -> CachedPage:
        """A page and the URL it was answered from: from the cache when fresh, revalidated when it has
        validators, else fetched, parsed and cached off the loop (`keep`); a 404 is remembered (for as long
        as a page would be) as MISSING, so a later index is not asked again on every run."""
        loop = asyncio.get_running_loop()
        # A cached page is read here, in the loop: loading one takes a fraction of a millisecond (its header
        # is parsed, its releases later), less than handing it to a thread that then waits for the
        # interpreter lock (5 ms a read when the resolvers are busy). Writes happen off the loop.
        page = self.cache.load_page(key_url, name)
        if page is not None and self.store.usable(page):
            self.store.put_page(key_url, name, page)
            return page
        if self.options.offline:
            raise OfflineCacheMiss(url)
        self.fetched_pages.add(name)
        async with self._page_slots:
            response = await self.http.get(url, "project", _validators(page), accept=frozenset({200, 304, 404, 410}))
        if response.status == 304 and page is not None:
            page = await loop.run_in_executor(None, self.cache.touch_page, key_url, name, page)
        else:
            # Parsing a page of megabytes and writing it to the cache happen off the loop, one at a time in
            # each of the two page threads (which bounds the memory they take).
            parser = self._worker_pages if self.page_worker.takes(response.body) else self._parser
            page = await loop.run_in_executor(parser, self._keep, key_url, name, response, keep)
        self.store.put_page(key_url, name, page)
        return page

    def _keep(self, key_url: str, name: str, response: Response, keep: Keep) -> CachedPage:
        etag, last_modified = response.headers.get("etag"), response.headers.get("last-modified")
        page = CachedPage(response.url, MISSING, etag, last_modified, time.time(), _max_age(response, etag or last_modified))

        def kept(file: PageFile | None) -> Kept:
            return keep_page(MISSING, file) if response.status in (404, 410) else _parsed(response, file, keep)

        written = kept(None if has_secret(response.url) else self.cache.page_file(key_url, name, page))
        if written.unwritten is not None:
            self.cache.write_failed(written.unwritten)
        if written.content is not None:
            return CachedPage(page.url, written.content, *_validators_of(page))
        # Written: read back from the cache, the page is mapped (its releases stay on disk until looked at).
        stored = self.cache.load_page(key_url, name)
        if stored is not None:
            return stored
        again = kept(None)  # the file went as soon as it was written
        assert again.content is not None  # a page is only ever written to a file
        return CachedPage(page.url, again.content, *_validators_of(page))

    # -- metadata ---------------------------------------------------------------------------------------

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        found = self.store.metadata(release, file)
        if found is not None:
            return found
        return await self.once(("metadata", file.cache_key), lambda: self._load_metadata(release, file))

    async def _load_metadata(self, release: Release, file: DistFile) -> CoreMetadata:
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
        self.store.put_metadata(file, metadata)
        return metadata

    async def extension_modules(self, file: DistFile) -> Extensions:
        """The compiled extension modules a wheel ships; None (with a warning) when its file list cannot be read."""
        found = self.store.extensions(file)
        if found is not UNKNOWN:
            return found
        return await self.once(("extensions", file.cache_key), lambda: self._load_extensions(file))

    async def _load_extensions(self, file: DistFile) -> Extensions:
        if self.options.offline and not file.url.startswith("file:"):
            raise OfflineCacheMiss(file.url)
        try:
            names = await self.reader.extension_modules(file)
        except ZipReadError as error:
            logger.warning("%s: its file list cannot be read (%s); its per-torch builds are not checked", file.filename, error)
            self.store.put_extensions(file, None)
            return None
        self._parser.submit(self.cache.store_extensions, file.cache_key, names)
        self.store.put_extensions(file, names)
        return names


def _list_directory(path: Path) -> list[tuple[str, str, int]]:
    """The regular files of a directory: (name, file URL, size)."""
    try:
        return [(entry.name, entry.resolve().as_uri(), entry.stat().st_size) for entry in sorted(path.iterdir()) if entry.is_file()]
    except OSError as error:
        logger.warning("find-links %s cannot be listed (%s); it offers no files", path, error.strerror or error)
        return []


def _validators_of(page: CachedPage) -> tuple[str | None, str | None, float, float | None]:
    return page.etag, page.last_modified, page.fetched_at, page.max_age


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


def _content_type(response: Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def _max_age(response: Response, has_validator: str | None) -> float | None:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    return 0.0 if has_validator else None
