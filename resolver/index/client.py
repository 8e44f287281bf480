"""The PyPI metadata client (DESIGN §4): project pages and per-file dependencies, cached and coalesced.

Dependencies of a file come from the first source that works: PEP 658 `core-metadata` when advertised,
the per-version JSON page when the index serves one, an HTTP Range read of the wheel's METADATA, and a
full download only for files under 1 MB. What was read is cross-checked against the expected name and
version. Every fetch is coalesced: asking twice for one project or one file's metadata makes one request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
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
    LimitExceeded,
    MetadataMismatch,
    MetadataUnavailable,
    OfflineCacheMiss,
    ProjectNotFound,
)
from ..errors.display import has_secret, shown_url
from ..model.distributions import (
    DEFAULT_INDEX_URL,
    CoreMetadata,
    DistFile,
    MetadataSourceKind,
    Project,
    Release,
)
from .auth import CredentialStore, IndexAuth
from .cache import Cache, CachedPage
from .http import Http, Limits, RangeNotSupported, Response, Stats
from .metadata import BadMetadata, checked_metadata, parse_core_metadata
from .pypi_json import (
    PageError,
    parse_page,
    project_from_slim,
    version_page_requires_dist,
)
from .wheel import (
    CentralDirectory,
    MemberTooLarge,
    Span,
    ZipEntry,
    ZipReadError,
    check_member_size,
    entries_from_tail,
    extract_member,
    find_metadata_entry,
    local_bytes_needed,
    locate_central_directory,
    metadata_entry_in_tail,
    metadata_from_sdist,
    metadata_from_wheel,
    parse_central_entries,
    parse_zip64_record,
)

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
        # Projects whose page needed a request this run (fetched, or revalidated); the others came fresh
        # from the cache, and so, very likely, did their dependencies.
        self.fetched_pages: set[str] = set()
        # Whether the index serves per-version pages: unknown (None) until the first one answers; while
        # that first one is out, the others wait for it instead of each asking (85 requests on a cold run).
        self._version_pages: bool | None = None
        self._version_probe: asyncio.Lock = asyncio.Lock()
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
            task.add_done_callback(_log_failure)
            self._tasks[key] = task
        return task

    async def project(self, name: str) -> Project:
        name = canonicalize_name(name)
        return await asyncio.shield(self._once(("project", name), lambda: self._load_project(name)))

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        key = ("metadata", file.cache_key)
        return await asyncio.shield(self._once(key, lambda: self._load_metadata(release, file)))

    # -- project pages ----------------------------------------------------------------------------------

    def finished(self, kind: str, key: str) -> Any:
        """The result of a fetch already done in the loop, for another thread; None when not done or failed."""
        task = self._tasks.get((kind, key))
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

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
        page = self.cache.load_page(self.index_url, name)
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
            page = self.cache.touch_page(self.index_url, name, page)
            return project_from_slim(page.project, name, page.url)
        etag, last_modified = response.headers.get("etag"), response.headers.get("last-modified")
        # Parsing a page of megabytes and writing it to the cache happen off the event loop, so the
        # loop keeps answering the range reads the resolvers are waiting for meanwhile.
        loop = asyncio.get_running_loop()
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
        cached = self.cached_metadata(release, file)
        if cached is not None:
            return cached
        if self.options.offline:
            raise OfflineCacheMiss(file.url)
        try:
            metadata = await self._fetch_metadata(release, file)
            self.stats.metadata_reads[metadata.source] += 1
            if metadata.name != release.name or metadata.version != release.version:
                raise MetadataMismatch(file.url, file.filename, f"{release.name} {release.version}", f"{metadata.name} {metadata.version}")
        except InvalidMetadata as invalid:
            # Remembered as invalid, so the next run skips the release without reading it again.
            self._parser.submit(self.cache.store_invalid_metadata, file.cache_key, invalid.reason)
            raise
        # Written by the parser thread: hundreds of small files would otherwise hold up the loop.
        self._parser.submit(self.cache.store_metadata, file.cache_key, metadata)
        return metadata

    async def _fetch_metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        if file.core_metadata:
            metadata = await self._pep658(file)
            if metadata is not None:
                return metadata
        if self._version_pages is not False:
            metadata = await self._version_page(release)
            if metadata is not None:
                return metadata
        problem = "the index serves no PEP 658 metadata or per-version page for it"
        if file.is_wheel:
            try:
                return self._parse(await self._range_read(file, release.name), file, "range")
            except MemberTooLarge as large:
                raise LimitExceeded(file.url, f"{file.filename}: {large}", large.limit, "a METADATA file") from None
            except RangeNotSupported as refused:
                if refused.body is not None:
                    return self._parse_download(refused.body, file, release.name)
                problem = f"the server ignores Range requests (HTTP {refused.status})"
            except ZipReadError as error:
                problem = f"its zip structure cannot be read by ranges ({error})"
        most = self.http.limits.download_bytes
        if file.size is not None and file.size <= most:
            # At most the limit is read, whatever the server sends: the listed size may be a lie.
            response = await self.http.get(file.url, "download", small=True, limit=most)
            return self._parse_download(response.body, file, release.name)
        size = f"{file.size / 1e6:.1f} MB" if file.size else "of unknown size"
        raise MetadataUnavailable(
            file.url,
            f"cannot read the dependencies of {file.filename}: {problem}, and the file is {size} "
            f"(only files under {most // 1024} KiB are downloaded whole)",
        )

    async def _pep658(self, file: DistFile) -> CoreMetadata | None:
        url = file.url + ".metadata"
        response = await self.http.get(url, "pep658", accept=frozenset({200, 404}), small=True, limit=self.http.limits.metadata_bytes)
        if response.status != 200:
            return None
        found = hashlib.sha256(response.body).hexdigest()
        if file.core_metadata_sha256 and found != file.core_metadata_sha256:
            logger.warning(
                "%s: sha256 %s, but the index lists %s for it; reading the metadata from the wheel instead",
                shown_url(url), found, file.core_metadata_sha256,
            )
            return None
        return self._parse(response.body, file, "pep658")

    def _parse(self, raw: bytes, file: DistFile, source: MetadataSourceKind, require_static: bool = False) -> CoreMetadata:
        try:
            return parse_core_metadata(raw, source, require_static)
        except BadMetadata as bad:
            raise InvalidMetadata(file.url, file.filename, bad.problem) from None

    async def _version_page(self, release: Release) -> CoreMetadata | None:
        if self._version_pages is None:
            async with self._version_probe:
                if self._version_pages is None:
                    return await self._ask_version_page(release)
        if self._version_pages is False:
            return None
        return await self._ask_version_page(release)

    async def _ask_version_page(self, release: Release) -> CoreMetadata | None:
        url = f"{self.root}pypi/{release.name}/{release.version}/json"
        response = await self.http.get(url, "version-page", {"Accept": "application/json"}, accept=frozenset({200, 404}), small=True)
        if response.status == 404:
            self._version_pages = False  # the project exists, so the index has no per-version pages
            return None
        self._version_pages = True
        try:
            found = version_page_requires_dist(json.loads(response.body), release.version)
        except (ValueError, RecursionError):
            found = None
        if found is None:
            return None
        requires_dist, requires_python = found
        try:
            return checked_metadata(release.name, release.version, requires_dist, requires_python, (), "version-json")
        except BadMetadata as bad:
            raise InvalidMetadata(url, f"{release.name} {release.version}", bad.problem) from None

    async def _range_read(self, file: DistFile, project: str) -> bytes:
        """METADATA of a wheel from byte ranges: tail, central directory if needed, the member.

        Every size the archive declares is checked before it is asked for: a damaged or hostile end
        record cannot make the client read a directory or a member larger than the limits.
        """
        limits = self.http.limits
        tail_size = min(TAIL_SIZE, file.size) if file.size else TAIL_SIZE
        tail, total = await self.http.get_range(file.url, None, tail_size, "range", limits.download_bytes)
        tail_start = total - len(tail)
        location = locate_central_directory(tail, tail_start)
        if isinstance(location, Span):
            _within(location.start, location.end, total)
            record, _ = await self.http.get_range(file.url, location.start, location.end, "range")
            location = parse_zip64_record(record)
        _within(location.offset, location.offset + location.size, total)
        entry = metadata_entry_in_tail(tail, tail_start, location, project)
        if entry is None:
            entry = find_metadata_entry(_entries_in_tail(tail, tail_start, location), project)
        if entry is None and location.offset < tail_start:
            # The dist-info is not at the end (torch 2.11+): read the whole directory, then find it by name.
            if location.size > limits.directory_bytes:
                declared = f"its zip central directory declares {location.size:,} bytes"
                raise LimitExceeded(file.url, declared, limits.directory_bytes, "a central directory")
            directory, _ = await self.http.get_range(file.url, location.offset, location.offset + location.size, "range")
            entry = metadata_entry_in_tail(directory, location.offset, location, project) or find_metadata_entry(
                parse_central_entries(directory), project
            )
        if entry is None:
            raise ZipReadError("no .dist-info/METADATA entry")
        check_member_size(entry, limits.metadata_bytes)
        span = entry.data_span()
        _within(span.start, span.start + entry.compressed_size, total)
        if span.start >= tail_start:
            data = tail[span.start - tail_start :]
        else:
            data, _ = await self.http.get_range(file.url, span.start, min(span.end, total), "range")
        needed = local_bytes_needed(entry, data) if len(data) >= 30 else span.end - span.start
        if needed > len(data):
            _within(span.start, span.start + needed, total)
            data, _ = await self.http.get_range(file.url, span.start, span.start + needed, "range")
        return extract_member(data, entry, limits.metadata_bytes)

    def _parse_download(self, body: bytes, file: DistFile, project: str) -> CoreMetadata:
        """Metadata of a file downloaded whole, after checking its bytes against the index's sha256."""
        if file.sha256:
            found = hashlib.sha256(body).hexdigest()
            if found != file.sha256:
                raise IndexUnavailable(
                    file.url, f"the downloaded {file.filename} has sha256 {found}, but the index lists {file.sha256}"
                )
        limit = self.http.limits.metadata_bytes
        try:
            raw = metadata_from_wheel(body, project, limit) if file.is_wheel else metadata_from_sdist(body, file.filename, limit)
        except MemberTooLarge as large:
            raise LimitExceeded(file.url, f"{file.filename}: {large}", large.limit, "a METADATA file") from None
        except ZipReadError as error:
            raise InvalidMetadata(file.url, file.filename, f"the file cannot be read ({error})") from None
        return self._parse(raw, file, "download", require_static=not file.is_wheel)


def _within(start: int, end: int, total: int) -> None:
    """A span the archive declares must lie inside the file."""
    if not 0 <= start <= end <= total:
        raise ZipReadError(f"the archive declares bytes {start}-{end} of a {total}-byte file")


def _entries_in_tail(tail: bytes, tail_start: int, location: CentralDirectory) -> list[ZipEntry]:
    if location.offset >= tail_start:
        start = location.offset - tail_start
        return parse_central_entries(tail[start : start + location.size])
    return entries_from_tail(tail, tail_start, location)


def _max_age(response: Response, has_validator: str | None) -> float | None:
    match = _MAX_AGE.search(response.headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    return 0.0 if has_validator else None



def _log_failure(task: asyncio.Task[Any]) -> None:
    """Every fetch's failure is retrieved here (asyncio would complain of one nobody awaited) and logged:
    index errors at debug level (whoever awaits the fetch reports them), anything else as a warning."""
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, CudaConstraintsError):
        logger.debug("fetch failed: %s", error.message())
    elif error is not None:
        logger.warning("a fetch failed unexpectedly: %s: %s", type(error).__name__, error)
