"""What a run knows of the indexes: pages, metadata and wheels' file lists, in memory, then on disk.

Any thread may read it. What the client fetched is put here as it arrives (a dict assignment is atomic,
so a reader never sees half of one); what is not here yet is looked for in the disk cache (`Cache`), in
the reading thread, and kept. A page from the disk is used only when it may be without asking the index
(fresh, or --offline); a metadata entry only when it names the release it is read for. Fetching is the
client's (client.py), which coalesces fetches and fills this store; nothing else caches a page or a
file's metadata.
"""

from __future__ import annotations

import enum
import time

from ..errors import InvalidMetadata
from ..model.distributions import CoreMetadata, DistFile, Release
from .cache import Cache, CachedPage

# A page without validators or Cache-Control is reused this long (seconds); --refresh overrides.
DEFAULT_PAGE_MAX_AGE = 600.0
# How a wheel's file list is known: its extension modules, or None when it could not be read.
Extensions = tuple[str, ...] | None


class Unknown(enum.Enum):
    """Not in the store (nor on the disk): the index must be asked."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN


class Store:
    def __init__(self, cache: Cache, offline: bool = False, refresh: bool = False) -> None:
        self.cache, self.offline, self.refresh = cache, offline, refresh
        self._pages: dict[tuple[str, str], CachedPage] = {}  # (the source's URL, the project's name or FIND_LINKS)
        self._metadata: dict[str, CoreMetadata] = {}  # by `DistFile.cache_key`
        self._extensions: dict[str, Extensions] = {}
        self._new_metadata: list[tuple[str, CoreMetadata]] = []  # read this run: written to the disk at the end

    # -- pages ------------------------------------------------------------------------------------------

    def page(self, url: str, name: str) -> CachedPage | None:
        """A page that may be used as it is: fetched this run, or on disk and fresh (any page, offline);
        None when the index must be asked."""
        found = self._pages.get((url, name))
        if found is None:
            cached = self.cache.load_page(url, name)
            if cached is None or not self.usable(cached):
                return None
            found = self._pages.setdefault((url, name), cached)
        return found

    def usable(self, page: CachedPage) -> bool:
        return self.offline or (not self.refresh and page.is_fresh(time.time(), DEFAULT_PAGE_MAX_AGE))

    def put_page(self, url: str, name: str, page: CachedPage) -> None:
        """A page just fetched or revalidated (its file, if any, is the client's to write)."""
        self._pages[(url, name)] = page

    # -- metadata ---------------------------------------------------------------------------------------

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata | None:
        """A file's metadata when it is known (this run, or on disk) and names the release; InvalidMetadata
        when an earlier run found it invalid."""
        key = file.cache_key
        found = self._metadata.get(key)
        if found is None:
            cached = self.cache.load_metadata(key)
            if isinstance(cached, str):
                raise InvalidMetadata(file.url, file.filename, cached)
            if cached is None:
                return None
            found = self._metadata.setdefault(key, cached)
        return found if found.name == release.name and found.version == release.version else None

    def has_metadata(self, file: DistFile) -> bool:
        """Whether a file's metadata is known (without reading it from the disk)."""
        return file.cache_key in self._metadata or self.cache.has_metadata(file.cache_key)

    def put_metadata(self, file: DistFile, metadata: CoreMetadata) -> None:
        """Metadata just read from the index: kept, and written to the disk when the run ends (written as
        they come, hundreds of small files cost a cold compile 0.3 s of system calls and lock hand-overs)."""
        self._metadata[file.cache_key] = metadata
        self._new_metadata.append((file.cache_key, metadata))

    # -- wheels' file lists -----------------------------------------------------------------------------

    def extensions(self, file: DistFile) -> Extensions | Unknown:
        """A wheel's extension modules when known (None: its file list could not be read); UNKNOWN when not."""
        key = file.cache_key
        if key in self._extensions:
            return self._extensions[key]
        cached = self.cache.load_extensions(key)
        if cached is None:
            return UNKNOWN
        return self._extensions.setdefault(key, cached)

    def has_extensions(self, file: DistFile) -> bool:
        return file.cache_key in self._extensions or self.cache.has_extensions(file.cache_key)

    def put_extensions(self, file: DistFile, names: Extensions) -> None:
        """A wheel's file list just read (the client writes it to the disk, off the event loop)."""
        self._extensions[file.cache_key] = names

    def write(self) -> None:
        """Write what this run read to the disk (when the client closes, off the event loop)."""
        written, self._new_metadata = self._new_metadata, []
        for key, metadata in written:
            self.cache.store_metadata(key, metadata)
