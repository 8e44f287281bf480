"""The interfaces the resolver needs from wherever releases and metadata come from.

This package owns them and never imports the index: the index (index/blocking.py) implements them,
and so does a test's synthetic index. A crawl that fetches ahead of the resolvers is given the target's
rules through `CrawlRules`, which `Policy` implements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from packaging.utils import NormalizedName
from packaging.version import Version

from ..model.distributions import CoreMetadata, DistFile, Project, Release
from ..model.indexes import Routing
from .candidates import Candidate, Req


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


class CrawlRules(Protocol):
    """What a crawl needs to walk a target's most likely tree: the target's own rules, nothing else."""

    def mismatched_major(self, name: NormalizedName) -> int | None: ...

    def candidates_in(self, project: Project, requested: Sequence[Req], excluded: frozenset[Version] = ...) -> Iterator[Candidate]: ...

    def dependencies_from(self, candidate: Candidate, metadata: CoreMetadata) -> Iterator[Req]: ...


class Indexes(Protocol):
    """Every index a run may ask; each CUDA major sees them through its own routing."""

    def routed(self, routing: Routing) -> Index:
        """The indexes as this routing sees them."""


class Index(MetadataSource, Protocol):
    """A metadata source that can also work ahead, answer which projects exist, and stop."""

    def start_crawl(self, plans: Iterable[tuple[CrawlRules, Sequence[Req]]]) -> None:
        """Start fetching, in the background, the trees the resolvers will most likely walk."""

    def existing(self, names: Iterable[str]) -> set[str]:
        """Which of these projects the index has (with at least one release)."""

    def cancel(self) -> None:
        """Stop every fetch in flight: the run was interrupted (any thread)."""

    def routed(self, routing: Routing) -> Index:
        """The same indexes, as another CUDA major's routing sees them."""
