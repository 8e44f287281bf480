"""The on-disk cache: project pages with their validators, and metadata keyed by file URL and hash.

Layout (format version in the path, so a new format never reads an old one):

    <cache dir>/v5/projects/<index key>/<name>.page    a JSON header line, then the files of each release
    <cache dir>/v5/metadata/<key[:2]>/<key>.json       {"format": 5, "metadata": {...}} or {"format": 5, "invalid": why}

A page's header is {"format": 5, "url", "etag", "last_modified", "fetched_at", "max_age", "project"}, where
"project" is the page packed (`pages.pack`): its releases map each version to the [start, end) of its files'
JSON text in the body that follows the header. A page is loaded by parsing its header only: a release's files are parsed when
the resolver looks at that release (pydantic-core's page is 6 MB, of which a resolution reads a few rows),
and storing one does not escape megabytes of JSON text inside JSON.

The index key is a digest of the index URL without credentials; the metadata key a digest of the file's
URL and the sha256 its index gave (see `DistFile.cache_key`). No credential is ever written: the client
strips them from URLs before anything is cached, and a page whose file URLs carry a token or credentials
is not cached.

Writes are atomic (temp file and rename). A corrupt or foreign entry is discarded and refetched, never
fatal. A cache directory that cannot be written (read-only, full) degrades to no caching with one warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import mmap
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from ..model.distributions import CoreMetadata, parse_requirement
from .pages import LinksPage, Page, PageContent, pack, unpack

logger = logging.getLogger(__name__)
FORMAT = 5  # 5: pages whose digests and upload times were checked when parsed
MAP_AT_LEAST = 256 * 1024  # page files this large are mapped, not read (`_mapped`)
ENV_CACHE_DIR = "CUDA_CONSTRAINTS_CACHE_DIR"


def default_cache_dir() -> Path:
    """The platform's user cache directory, as pip and uv choose theirs."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "cuda-constraints" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "cuda-constraints"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cuda-constraints"


@dataclass(frozen=True)
class CachedPage:
    """A page as cached: its parsed form, the URL it was answered from, and what is needed to revalidate it."""

    url: str
    content: PageContent
    etag: str | None
    last_modified: str | None
    fetched_at: float
    max_age: float | None

    def is_fresh(self, now: float, default_max_age: float) -> bool:
        max_age = self.max_age if self.max_age is not None else default_max_age
        return now - self.fetched_at < max_age

    def record(self) -> dict[str, Any]:
        """Its URL, validators and times, as a page file's header holds them (and the page worker is sent)."""
        return {"url": self.url, "etag": self.etag, "last_modified": self.last_modified, "fetched_at": self.fetched_at,
                "max_age": self.max_age}

    @classmethod
    def from_record(cls, record: dict[str, Any], content: PageContent) -> CachedPage:
        """The page a `record` describes, with its content; KeyError, TypeError or ValueError for a damaged one."""
        max_age = record.get("max_age")
        return cls(str(record["url"]), content, record.get("etag"), record.get("last_modified"), float(record["fetched_at"]),
                   None if max_age is None else float(max_age))


@dataclass(frozen=True)
class PageFile:
    """A page file to write: where, and the page's URL, validators and times (its project comes later)."""

    path: Path
    page: CachedPage


class Cache:
    """Disk cache; `Cache(None)` caches nothing."""

    def __init__(self, root: Path | None, warn: Callable[[str], None] | None = None) -> None:
        self.root = root / f"v{FORMAT}" if root is not None else None
        self._warn = warn or (lambda message: warnings.warn(message, stacklevel=2))
        self._write_failed = False
        self._directories: set[Path] = set()

    def _project_path(self, index_url: str, name: str) -> Path | None:
        if self.root is None:
            return None
        index_key = hashlib.sha256(index_url.encode()).hexdigest()[:16]
        return self.root / "projects" / index_key / f"{name}.page"

    def _metadata_path(self, key: str) -> Path | None:
        if self.root is None:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / "metadata" / digest[:2] / f"{digest}.json"

    def project_names(self) -> set[str]:
        """The projects whose pages any index's cache holds: names to suggest for one that was not found."""
        if self.root is None:
            return set()
        try:
            return {page.stem for index in (self.root / "projects").iterdir() for page in index.iterdir() if page.suffix == ".page"}
        except OSError:
            return set()

    def load_page(self, index_url: str, name: str) -> CachedPage | None:
        path = self._project_path(index_url, name)
        if path is None:
            return None
        try:
            data = _mapped(path)
        except FileNotFoundError:
            return None
        except OSError:
            self._discard(path)
            return None
        try:
            end = data.find(b"\n")
            if end < 0:
                raise ValueError("no header")
            document = json.loads(data[:end])
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError("another format")
            return CachedPage.from_record(document, unpack(document["project"], memoryview(data)[end + 1 :]))
        except (KeyError, TypeError, ValueError):
            self._discard(path)
            return None

    def page_file(self, index_url: str, name: str, page: CachedPage) -> PageFile | None:
        """Where a page just fetched is to be written, by `keep_page` (in the page worker, which parses
        it); None when nothing is written."""
        path = None if self._write_failed else self._project_path(index_url, name)
        return None if path is None else PageFile(path, page)

    def store_page(self, index_url: str, name: str, page: CachedPage) -> bool:
        """Whether the page was written."""
        return self._write_bytes(self._project_path(index_url, name), *_page_pieces(page))

    def touch_page(self, index_url: str, name: str, page: CachedPage) -> CachedPage:
        """Record a successful revalidation (HTTP 304)."""
        renewed = CachedPage(page.url, page.content, page.etag, page.last_modified, time.time(), page.max_age)
        self.store_page(index_url, name, renewed)
        return renewed

    def has_metadata(self, key: str) -> bool:
        """Whether metadata is cached under a key (without reading it)."""
        path = self._metadata_path(key)
        return path is not None and os.path.exists(path)

    def load_metadata(self, key: str) -> CoreMetadata | str | None:
        """The metadata cached under a key; a string when the file's metadata was found invalid (why)."""
        path = self._metadata_path(key)
        document = self._read(path)
        if document is None:
            return None
        try:
            if "invalid" in document:
                return str(document["invalid"])
            fields = document["metadata"]
            for text in fields["requires_dist"]:
                parse_requirement(text)  # a damaged entry is a miss, never a dependency dropped later
            return CoreMetadata(
                name=canonicalize_name(str(fields["name"])),
                version=Version(fields["version"]),
                requires_dist=tuple(str(r) for r in fields["requires_dist"]),
                requires_python=fields.get("requires_python"),
                provides_extra=tuple(str(e) for e in fields.get("provides_extra", ())),
                source="cache",
            )
        except Exception:  # any malformed entry is a cache miss
            self._discard(path)
            return None

    def store_metadata(self, key: str, metadata: CoreMetadata) -> None:
        self._write(
            self._metadata_path(key),
            {
                "metadata": {
                    "name": metadata.name,
                    "version": str(metadata.version),
                    "requires_dist": list(metadata.requires_dist),
                    "requires_python": metadata.requires_python,
                    "provides_extra": list(metadata.provides_extra),
                }
            },
        )

    def has_extensions(self, key: str) -> bool:
        """Whether a wheel's extension modules are cached (without reading them)."""
        path = self._extensions_path(key)
        return path is not None and os.path.exists(path)

    def load_extensions(self, key: str) -> tuple[str, ...] | None:
        """The extension modules of a wheel, cached under its metadata key."""
        document = self._read(self._extensions_path(key))
        if document is None:
            return None
        names = document.get("extensions")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self._discard(self._extensions_path(key))
            return None
        return tuple(names)

    def store_extensions(self, key: str, names: tuple[str, ...]) -> None:
        self._write(self._extensions_path(key), {"extensions": list(names)})

    def _extensions_path(self, key: str) -> Path | None:
        return self._metadata_path(key + "#extensions")

    def store_invalid_metadata(self, key: str, reason: str) -> None:
        self._write(self._metadata_path(key), {"invalid": reason})

    def _read(self, path: Path | None) -> dict[str, Any] | None:
        if path is None:
            return None
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self._discard(path)
            return None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            self._discard(path)
            return None
        return document

    def _write(self, path: Path | None, document: dict[str, Any]) -> None:
        self._write_bytes(path, json.dumps({"format": FORMAT, **document}, separators=(",", ":")).encode())

    def _write_bytes(self, path: Path | None, *body: bytes | memoryview) -> bool:
        """Write a file atomically, piece by piece; whether it was written."""
        if path is None or self._write_failed:
            return False
        try:
            if path.parent not in self._directories:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._directories.add(path.parent)
            _write_atomically(path, body)
            return True
        except OSError as error:
            self.write_failed(error.strerror or str(error))
            return False

    def write_failed(self, reason: str) -> None:
        """A write failed (here, or in the page worker): caching stops, with one warning."""
        if not self._write_failed:
            self._write_failed = True
            self._warn(
                f"cache directory {self.root} cannot be written ({reason}); continuing without caching (use --cache-dir or --no-cache)"
            )

    def _discard(self, path: Path | None) -> None:
        if path is not None:
            logger.debug("cache: discarded %s (corrupt, or written by another version)", path)
            _remove_quietly(path)


@dataclass(frozen=True)
class Kept:
    """A page just parsed, and whether it was written to its page file."""

    content: PageContent | None  # None: written, to be loaded from the cache (mapped)
    unwritten: str | None = None  # why the page file could not be written (for `Cache.write_failed`)


def keep_page(content: PageContent, file: PageFile | None) -> Kept:
    """Write a page just parsed to its page file (in the page worker, for the pages it parses). A page
    that lists a file URL with a token or credentials is never written, nor is a page without a file (the
    cache is off, cannot be written, or the page's own URL carries a token)."""
    if file is None or _lists_a_secret(content):
        return Kept(content)
    try:
        file.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(file.path, _page_pieces(dataclasses.replace(file.page, content=content)))
    except OSError as error:
        return Kept(content, error.strerror or str(error))
    return Kept(None)


def _lists_a_secret(content: PageContent) -> bool:
    if isinstance(content, Page):
        return content.secret
    return isinstance(content, LinksPage) and any(page.secret for page in content.projects.values())


def _page_pieces(page: CachedPage) -> list[bytes | memoryview]:
    """A page file: its header line, then its body (a page's pieces are views of megabytes: not joined)."""
    packed, chunks = pack(page.content)
    header = {"format": FORMAT, **page.record(), "project": packed}
    return [json.dumps(header, separators=(",", ":")).encode(), b"\n", *chunks]


def _write_atomically(path: Path, pieces: Iterable[bytes | memoryview]) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(Path(temporary))
        raise


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _mapped(path: Path) -> mmap.mmap | bytes:
    """A page file's bytes; a large one mapped, so that only the releases the resolver looks at are read
    into memory (the pages of a GPU project's tree are 60 to 90 MB, most of it in its 20 largest pages).
    Cache files are replaced, never rewritten in place, so a mapping always sees the file it was made
    from. A mapping holds a file descriptor: small pages are read instead, which bounds how many are held
    (and on Windows, where a mapped file cannot be replaced, every page is read)."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size < MAP_AT_LEAST or os.name == "nt":
            return handle.read()
        try:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError:  # out of mappings or descriptors: read it
            return handle.read()
