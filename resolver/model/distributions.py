"""Values the index client produces and the resolver consumes: projects, releases, files, metadata."""

from __future__ import annotations

import difflib
import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Literal, overload

from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

SDIST_SUFFIXES = (".tar.gz", ".zip")
# How a release's metadata was read: PEP 658 file, per-version JSON page, HTTP ranges of the wheel, the
# whole file, the disk cache, a test's synthetic index, or not at all.
MetadataSourceKind = Literal["pep658", "version-json", "range", "download", "cache", "synthetic", "none"]
DEFAULT_INDEX_URL = "https://pypi.org/simple"
# A sha256 as indexes give it and files carry it: 64 lowercase hex digits, nothing else.
SHA256_HEX = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True)
class DistFile:
    """One file of a release as the index lists it."""

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool = False
    yank_reason: str | None = None  # the reason the index gives, on one line (shown escaped)
    size: int | None = None
    uploaded: str | None = None  # the upload time as the index gives it (PEP 700: ISO 8601)
    # PEP 658: True when `<url>.metadata` is served; its sha256 when the index gives one.
    core_metadata: bool = False
    core_metadata_sha256: str | None = None
    # The index (or find-links location) that listed it, as shown (credentials masked).
    index: str = field(default="", compare=False)

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith(SDIST_SUFFIXES)

    @cached_property
    def upload_time(self) -> datetime | None:
        """When the file was uploaded; None when the index does not say (or says nonsense). Parsed when
        asked (by --exclude-newer): a warm compile makes tens of thousands of files."""
        if not self.uploaded:
            return None
        try:
            parsed = datetime.fromisoformat(self.uploaded.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    @cached_property
    def build_number(self) -> tuple[int, str]:
        """The wheel build tag (`torch-2.10.0-3-...whl`); a higher one is what installers pick."""
        if not self.is_wheel:
            return (-1, "")
        try:
            build = parse_wheel_filename(self.filename)[2]
        except ValueError:  # InvalidWheelFilename, InvalidVersion, or a build number too long for int()
            return (-1, "")
        return build if build else (-1, "")

    @property
    def cache_key(self) -> str:
        """The key of this file's metadata: where it was read from and the hash the index gave for it.

        Not the hash alone: a hash is only what an index claims, and one index must never answer for
        another (a compile against a hostile index would plant dependencies for the next one).
        """
        return f"{self.url}#sha256={self.sha256 or ''}"


@dataclass(frozen=True, eq=False)
class Release:
    """One version of a project. Files may be given lazily: large projects list thousands of them."""

    name: NormalizedName
    version: Version
    listed_files: tuple[DistFile, ...] | Callable[[], tuple[DistFile, ...]] = field(repr=False)

    @cached_property
    def files(self) -> tuple[DistFile, ...]:
        listed = self.listed_files
        return listed() if callable(listed) else listed

    @property
    def yanked(self) -> bool:
        return bool(self.files) and all(f.yanked for f in self.files)


class OrderedReleases(Sequence[Release]):
    """A project's releases, already in order (newest first), each made when it is first looked at.

    A resolution looks at the first few releases of most projects; the whole tree's pages list 12,000
    versions, and parsing and sorting them all took 0.1 s of every warm compile. The order comes with
    the page (`index/pages.py` sorts a page's releases once, when it is parsed); `files` makes a
    version's files (from its text), when the release's files are looked at.
    """

    def __init__(self, name: NormalizedName, versions: Sequence[str], files: Callable[[str], tuple[DistFile, ...]]) -> None:
        self._name, self._listed, self._files = name, versions, files
        self._made: list[Release] = []
        self._lock = threading.Lock()  # resolvers of two majors may walk the same project

    def __len__(self) -> int:
        return len(self._listed)

    @overload
    def __getitem__(self, index: int) -> Release: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Release]: ...

    def __getitem__(self, index: int | slice) -> Release | Sequence[Release]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        if position >= len(self._made):
            with self._lock:
                while len(self._made) <= position:
                    version = self._listed[len(self._made)]
                    self._made.append(Release(self._name, Version(version), functools.partial(self._files, version)))
        return self._made[position]

    def __iter__(self) -> Iterator[Release]:
        return (self[i] for i in range(len(self)))


@dataclass(frozen=True)
class Project:
    name: NormalizedName
    # Newest first.
    releases: Sequence[Release]
    url: str = ""

    def release(self, version: Version) -> Release | None:
        for release in self.releases:
            if release.version == version:
                return release
        return None


@dataclass(frozen=True)
class CoreMetadata:
    """What a distribution's METADATA says about its dependencies."""

    name: NormalizedName
    version: Version
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    provides_extra: tuple[str, ...] = ()
    # How it was read; for reports and the benchmark, not for identity.
    source: MetadataSourceKind = field(default="none", compare=False)
    # Legacy spellings repaired while reading (`pytz (>dev)` read as `pytz>0.0.0dev`), for warnings.
    repairs: tuple[str, ...] = field(default=(), compare=False)


def close_names(name: str, known: Iterable[str], count: int = 3) -> tuple[str, ...]:
    """The known project names closest to a name that was not found (`nixll` -> `nixl`), best first."""
    wanted = canonicalize_name(name)
    names = sorted({canonicalize_name(k) for k in known} - {wanted})
    return tuple(difflib.get_close_matches(wanted, names, n=count, cutoff=0.75))


@functools.lru_cache(maxsize=65536)
def parse_requirement(text: str) -> Requirement:
    """A requirement from metadata, parsed once however many targets ask (raises InvalidRequirement)."""
    return Requirement(text)


@functools.lru_cache(maxsize=1 << 16)
def wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags a wheel's filename declares; empty for anything else or a malformed name."""
    if not filename.endswith(".whl"):
        return frozenset()
    try:
        return parse_wheel_filename(filename)[3]
    except ValueError:  # InvalidWheelFilename, InvalidVersion, or a build number of thousands of digits
        return frozenset()
