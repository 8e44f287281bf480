"""The contract between the resolver core and wherever metadata comes from (the index, or a test's dict)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..model.distributions import CoreMetadata, DistFile, Project, Release

if TYPE_CHECKING:
    from .provider import CudaProvider, Req


class MetadataSource(Protocol):
    def project(self, name: str) -> Project:
        """Every release and file of a project; raises ProjectNotFound when the index has none."""

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        """The dependencies one file of a release declares."""

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        """A hint that `metadata(release, file)` will be asked for soon; may do nothing."""


class Index(MetadataSource, Protocol):
    """A metadata source that can also work ahead and answer which projects exist."""

    def start_crawl(self, plans: Iterable[tuple[CudaProvider, Sequence[Req]]]) -> None:
        """Start fetching, in the background, the trees the resolvers will most likely walk."""

    def existing(self, names: Iterable[str]) -> set[str]:
        """Which of these projects the index has (with at least one release)."""

    def cancel(self) -> None:
        """Stop every fetch in flight: the run was interrupted (any thread)."""
