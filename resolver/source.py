"""The contract between the resolver core and wherever metadata comes from (the index, or a test's dict)."""

from __future__ import annotations

from typing import Protocol

from .models import CoreMetadata, DistFile, Project, Release


class MetadataSource(Protocol):
    def project(self, name: str) -> Project:
        """Every release and file of a project; raises ProjectNotFound when the index has none."""

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        """The dependencies one file of a release declares."""

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        """A hint that `metadata(release, file)` will be asked for soon; may do nothing."""
