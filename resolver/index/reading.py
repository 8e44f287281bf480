"""Reading the dependencies of one file, from the first source that works.

1. PEP 658 `core-metadata` when the index advertises it (checked against its sha256 when given);
2. HTTP Range reads of the wheel's `METADATA`: the tail, the central directory when the dist-info is not
   in it, then the one member; every size the archive declares is checked before it is asked for;
3. the whole file, only when it is small (and its bytes must match the index's sha256): its listed size
   is under the limit, or it lists none (a PEP 503 page) and the download stops at the limit;

and a file of a find-links directory is read in place.

What is read is parsed as the email parser reads it (index/metadata.py); metadata that cannot be
trusted raises InvalidMetadata (the release is unusable), a read that breaks a limit LimitExceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import io
import logging
import os
import stat
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit

from ..errors import IndexUnavailable, InvalidMetadata, LimitExceeded, MetadataUnavailable
from ..errors.display import shown_url
from ..model.distributions import CoreMetadata, DistFile, MetadataSourceKind, Release
from .http import Http, RangeNotSupported
from .metadata import BadMetadata, header_block, parse_core_metadata
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


class MetadataReader:
    """Reads metadata through one index's HTTP client; use it from that client's event loop."""

    def __init__(self, http: Http) -> None:
        self.http = http
        # The file: URLs of the find-links directories listed this run: the only local files read. A page
        # fetched over the network may name any file: URL (/dev/zero, a FIFO); those are refused.
        self.local_files: set[str] = set()

    async def read(self, release: Release, file: DistFile) -> CoreMetadata:
        """The metadata of one file of a release, from the first source that works."""
        if file.url.startswith("file:"):
            return await self._in_thread(file, lambda: self._read_local(file, release.name))
        if file.core_metadata:
            metadata = await self._pep658(file)
            if metadata is not None:
                return metadata
        problem = "the index serves no PEP 658 metadata for it"
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
        if file.size is None or file.size <= most:
            # At most the limit is read, whatever the server declares or sends: the listed size may be a
            # lie (then the index is at fault), and an HTML page lists none (then the file is just large).
            try:
                response = await self.http.get(file.url, "download", small=True, limit=most)
            except LimitExceeded:
                if file.size is not None:
                    raise
            else:
                return self._parse_download(response.body, file, release.name)
        size = f"{file.size / 1e6:.1f} MB" if file.size else f"over {most // 1024} KiB"
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
        most = self.http.limits.requires_dist
        lines = header_block(raw).lower().count(b"requires-dist:")  # counted before parsing (an upper bound)
        if lines > most:
            raise LimitExceeded(file.url, f"{file.filename}: its metadata lists {lines:,} Requires-Dist lines", most,
                                "one release's requirements", unit="lines")
        try:
            return parse_core_metadata(raw, source, require_static)
        except BadMetadata as bad:
            raise InvalidMetadata(file.url, file.filename, bad.problem) from None

    async def _range_read(self, file: DistFile, project: str) -> bytes:
        """METADATA of a wheel from byte ranges: tail, central directory if needed, the member.

        Every size the archive declares is checked before it is asked for: a damaged or hostile end
        record cannot make the client read a directory or a member larger than the limits.
        """
        limits = self.http.limits
        tail, tail_start, total, location = await self._tail(file)
        entry = metadata_entry_in_tail(tail, tail_start, location, project)
        if entry is None:
            entry = find_metadata_entry(_entries_in_tail(tail, tail_start, location), project)
        if entry is None and location.offset < tail_start:
            # The dist-info is not at the end (torch 2.11+): read the whole directory, then find it by name.
            directory = await self._directory(file, location)
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

    async def extension_modules(self, file: DistFile) -> tuple[str, ...]:
        """The compiled extension modules a wheel ships (`.so`, `.pyd` members), from its central directory:
        the tail, and the directory itself when it is larger than the tail (nixl's is 86 KB)."""
        if file.url.startswith("file:"):
            return await self._in_thread(file, lambda: _local_extensions(_local_path(file.url)))
        try:
            tail, tail_start, _, location = await self._tail(file)
        except RangeNotSupported as refused:
            if refused.body is None:
                raise ZipReadError(f"the server ignores Range requests (HTTP {refused.status})") from None
            return _extensions(zipfile.ZipFile(io.BytesIO(refused.body)).namelist())
        if location.offset >= tail_start:
            return _extensions(e.name for e in _entries_in_tail(tail, tail_start, location))
        return _extensions(e.name for e in parse_central_entries(await self._directory(file, location)))

    async def _tail(self, file: DistFile) -> tuple[bytes, int, int, CentralDirectory]:
        """The tail of a wheel (its first byte's offset, and the file's size) and where its central
        directory is, a zip64 record read when needed; every span the archive declares lies in the file."""
        tail_size = min(TAIL_SIZE, file.size) if file.size else TAIL_SIZE
        tail, total = await self.http.get_range(file.url, None, tail_size, "range", self.http.limits.download_bytes)
        tail_start = total - len(tail)
        location = locate_central_directory(tail, tail_start)
        if isinstance(location, Span):
            _within(location.start, location.end, total)
            record, _ = await self.http.get_range(file.url, location.start, location.end, "range")
            location = parse_zip64_record(record)
        _within(location.offset, location.offset + location.size, total)
        return tail, tail_start, total, location

    async def _directory(self, file: DistFile, location: CentralDirectory) -> bytes:
        """The whole central directory, unless it declares more than the limit."""
        limit = self.http.limits.directory_bytes
        if location.size > limit:
            raise LimitExceeded(file.url, f"its zip central directory declares {location.size:,} bytes", limit, "a central directory")
        directory, _ = await self.http.get_range(file.url, location.offset, location.offset + location.size, "range")
        return directory

    async def _in_thread(self, file: DistFile, read: Callable[[], T]) -> T:
        """A read of a local file: only one a find-links directory listed, in a thread of its own (a daemon:
        a read that hangs never keeps the process from ending), and within the deadline of one request."""
        if file.url not in self.local_files:
            raise IndexUnavailable(
                file.url, f"{file.filename}: a page fetched over the network names a local file; "
                "only the files of a --find-links directory are read from disk"
            )
        deadline = self.http.limits.deadline
        try:
            return await asyncio.wait_for(in_daemon_thread(read), deadline)
        except asyncio.TimeoutError:
            raise IndexUnavailable(file.url, f"reading it did not finish within {deadline:.0f}s (the deadline of one request)") from None

    def _read_local(self, file: DistFile, project: str) -> CoreMetadata:
        """A find-links directory's file, read in place (a wheel's METADATA member only)."""
        path = _local_path(file.url)
        limit = self.http.limits.metadata_bytes
        try:
            with open_regular(path) as handle:
                raw = metadata_from_wheel(handle, project, limit) if file.is_wheel else metadata_from_sdist(handle, file.filename, limit)
        except OSError as error:
            raise MetadataUnavailable(file.url, f"cannot read {path} ({error.strerror or error})") from None
        except MemberTooLarge as large:
            raise LimitExceeded(file.url, f"{file.filename}: {large}", large.limit, "a METADATA file") from None
        except ZipReadError as error:
            raise InvalidMetadata(file.url, file.filename, f"the file cannot be read ({error})") from None
        return self._parse(raw, file, "download", require_static=not file.is_wheel)

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
            archive = io.BytesIO(body)
            raw = metadata_from_wheel(archive, project, limit) if file.is_wheel else metadata_from_sdist(archive, file.filename, limit)
        except MemberTooLarge as large:
            raise LimitExceeded(file.url, f"{file.filename}: {large}", large.limit, "a METADATA file") from None
        except ZipReadError as error:
            raise InvalidMetadata(file.url, file.filename, f"the file cannot be read ({error})") from None
        return self._parse(raw, file, "download", require_static=not file.is_wheel)


def _extensions(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(name for name in names if name.endswith((".so", ".pyd")) or ".so." in name))


def _local_extensions(path: Path) -> tuple[str, ...]:
    try:
        with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
            return _extensions(archive.namelist())
    except (OSError, zipfile.BadZipFile) as error:
        raise ZipReadError(f"{path}: {error}") from None


def open_regular(path: Path) -> BinaryIO:
    """A local file opened for reading, if it is a regular file: opening a FIFO waits for a writer, and a
    device (/dev/zero) never ends. Raises OSError otherwise."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(descriptor, "rb")


def in_daemon_thread(function: Callable[[], T]) -> asyncio.Future[T]:
    """`function` run in a daemon thread of its own, as a future of the running loop: unlike the loop's
    executor, whose threads the interpreter waits for at exit, a call that never returns ends with the
    process (an interrupted run, a deadline passed)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # not given up on (cancelled) meanwhile
            outcome()

    def run() -> None:
        try:
            result = function()
        except BaseException as error:  # handed to the coroutine that awaits it, which raises it
            answer: Callable[[], None] = functools.partial(future.set_exception, error)
        else:
            answer = functools.partial(future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, answer)

    threading.Thread(target=run, name="local-read", daemon=True).start()
    return future


def _within(start: int, end: int, total: int) -> None:
    """A span the archive declares must lie inside the file."""
    if not 0 <= start <= end <= total:
        raise ZipReadError(f"the archive declares bytes {start}-{end} of a {total}-byte file")


def _entries_in_tail(tail: bytes, tail_start: int, location: CentralDirectory) -> list[ZipEntry]:
    if location.offset >= tail_start:
        start = location.offset - tail_start
        return parse_central_entries(tail[start : start + location.size])
    return entries_from_tail(tail, tail_start, location)


def _local_path(url: str) -> Path:
    """The path of a file: URL (a find-links directory's file)."""
    from urllib.request import url2pathname  # imports http.client: only a run with local files needs it

    return Path(url2pathname(urlsplit(url).path))
