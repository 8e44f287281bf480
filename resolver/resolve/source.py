"""The interfaces the resolver needs from wherever releases and metadata come from.

This package owns them and never imports the index: the index (index/blocking.py) implements them by
their shape, and so do the tests' synthetic and frozen indexes. What to fetch ahead, and when, is the
resolver's (prefetch.py): a source only fetches what it is asked for, now (`MetadataSource`), as a hint
(`prefetch_*`), or in background work the resolver hands it (`Index.start`, over `Fetcher`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from packaging.utils import NormalizedName

from ..model.distributions import CoreMetadata, DistFile, Project, Release
from ..model.indexes import Routing


class MetadataSource(Protocol):
    def project(self, name: NormalizedName) -> Project:
        """Every release and file of a project; raises ProjectNotFound when the index has none."""

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        """The dependencies one file of a release declares; MetadataUnavailable when they cannot be read."""

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        """A hint that `metadata(release, file)` will be asked for soon; may do nothing."""

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        """The compiled extension modules a wheel ships (its file list); None when it cannot be read."""

    def prefetch_extension_modules(self, file: DistFile) -> None:
        """A hint that `extension_modules(file)` will be asked for soon; may do nothing."""


class Fetcher(Protocol):
    """A source's answers for background work, awaited on the source's own event loop."""

    async def project(self, name: NormalizedName) -> Project:
        """As `MetadataSource.project`."""

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        """As `MetadataSource.metadata`."""

    def fetched(self, name: NormalizedName) -> bool:
        """Whether the project's pages needed the network this run (else they came fresh from a cache, and
        most likely so will what lies below them)."""


class Indexes(Protocol):
    """Every index a run may ask; each CUDA major sees them through its own routing."""

    def routed(self, routing: Routing) -> Index:
        """The indexes as this routing sees them."""


class Index(MetadataSource, Protocol):
    """A metadata source that can also work in the background, answer which projects exist, and stop."""

    def start(self, work: Callable[[Fetcher], Coroutine[Any, Any, None]]) -> None:
        """Run `work` in the background, given the source's `Fetcher`; its failures are only logged."""

    def existing(self, names: Iterable[str]) -> set[str]:
        """Which of these projects the index has (with at least one release)."""

    def close_names(self, name: NormalizedName) -> tuple[str, ...]:
        """Names of projects close to one no index has, best first, from what the indexes list (a root
        listing may be fetched: ask only when the miss is the error to report)."""

    def cancel(self) -> None:
        """Stop every fetch in flight: the run was interrupted (any thread)."""

    def routed(self, routing: Routing) -> Index:
        """The same indexes, as another CUDA major's routing sees them."""
