"""One CUDA major's view of the indexes: which pages make each project (model/indexes.py says why).

- A project routed to an index comes from that index only.
- Otherwise, with `first-index`, the indexes are asked in order, one after the other, and the first that
  has the project is the only one used: a later index is never asked for a name an earlier one has.
  With `unsafe-best-match` every index is asked and their releases are merged.
- The files of every find-links location (a directory, or an HTML page of links) are added, ahead of the
  index's: a file name both offer is taken from the find-links location, as pip takes it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName

from ..errors import ProjectNotFound
from ..model.distributions import Project, close_names
from ..model.indexes import IndexSource, Routing
from .client import IndexClient
from .pages import Slim, find_links_directory, project_from_slims

logger = logging.getLogger(__name__)
Page = tuple[Slim, str, str]  # (compact page, URL its links are relative to, the source as shown)


class Sources:
    def __init__(self, client: IndexClient, routing: Routing) -> None:
        self.client, self.routing = client, routing
        # Each source without its credentials (those go to the client's store) and as messages show it.
        self._clean = {source: client.credentials.add(source.url) for source in (*routing.indexes, *routing.find_links,
                                                                                 *routing.routes.values())}
        self._directories: dict[IndexSource, dict[NormalizedName, Slim]] = {}
        # Projects made from the disk cache in a resolver's thread; those made in the loop are the client's
        # coalesced fetches, under a key of this routing.
        self._projects: dict[NormalizedName, Project] = {}
        self._key = f"routing-{id(self)}"

    def shown(self, source: IndexSource) -> str:
        return source.display

    def known(self, name: NormalizedName) -> Project | None:
        """The project when it was already made (any thread)."""
        found: Project | None = self._projects.get(name) or self.client.finished("project", self._key, name)
        return found

    async def project(self, name: NormalizedName) -> Project:
        """The project from its pages, made once (the crawl and every resolver of this routing ask)."""
        found = self._projects.get(name)
        if found is None:
            found = await self.client.once(("project", self._key, name), lambda: self._make(name))
        return found

    async def _make(self, name: NormalizedName) -> Project:
        # Find-links files first: where an index has a file of the same name, the find-links one is taken
        # (pip's order: a release page of CUDA 12 builds beside PyPI's CUDA 13 ones of the same version).
        pages = await self._links(name)
        pages += await self._index_pages(name)
        if not any(slim["releases"] for slim, _, _ in pages):
            empty = [shown for _, _, shown in pages]  # a page without files: a login page, perhaps
            raise ProjectNotFound(name, self._where(name), answered_empty=empty, suggestions=self._near(name))
        return project_from_slims(name, pages)

    def cached_project(self, name: NormalizedName) -> Project | None:
        """The project from the disk cache alone, when every page it needs is fresh there (any thread)."""
        pages: list[Page] = []
        for source in self.routing.searched(name):
            cached = self.client.cached_page(self._clean[source], name)
            if cached is False:
                return None
            if isinstance(cached, tuple):
                pages.append((*cached, self.shown(source)))
                if self._first_only(name):
                    break
        if self.routing.find_links or not any(slim["releases"] for slim, _, _ in pages):
            return None  # find-links pages are listed or fetched on the loop
        return self._projects.setdefault(name, project_from_slims(name, pages))

    async def _index_pages(self, name: NormalizedName) -> list[Page]:
        searched = self.routing.searched(name)
        if self._first_only(name):
            for source in searched:  # one after the other: a later index is never asked for a name found earlier
                found = await self.client.page(self._clean[source], name)
                if found is not None:
                    return [(*found, self.shown(source))]
            return []
        answers = await asyncio.gather(*(self.client.page(self._clean[source], name) for source in searched))
        return [(*found, self.shown(source)) for source, found in zip(searched, answers, strict=True) if found is not None]

    def _first_only(self, name: NormalizedName) -> bool:
        return self.routing.strategy == "first-index" or name in self.routing.routes

    async def _links(self, name: NormalizedName) -> list[Page]:
        pages = []
        for source in self.routing.find_links:
            url = self._clean[source]
            if url.startswith(("http://", "https://")):
                found: Any = (await self.client.links_page(url)).get(name)
            else:
                found = await self._directory(source, name)
            if found is not None:
                pages.append((*found, self.shown(source)))
        return pages

    async def _directory(self, source: IndexSource, name: NormalizedName) -> tuple[Slim, str] | None:
        if source not in self._directories:
            path = Path(self._clean[source].removeprefix("file://"))
            loop = asyncio.get_running_loop()
            entries = await loop.run_in_executor(None, _list_directory, path)
            self.client.reader.local_files.update(url for _, url, _ in entries)  # the only local files read
            self._directories[source] = find_links_directory(entries)
        slim = self._directories[source].get(name)
        return None if slim is None else (slim, "")

    def _near(self, name: NormalizedName) -> tuple[str, ...]:
        """Names close to one no source has, from what is known without asking an index for a listing: the
        cache's pages and the find-links directories'."""
        listed = (project for listing in self._directories.values() for project in listing)
        return close_names(name, (*self.client.cache.project_names(), *listed))

    def _where(self, name: NormalizedName) -> str:
        searched = [self.shown(s) for s in (*self.routing.searched(name), *self.routing.find_links)]
        if not searched:
            return "any index (--no-index, and no find-links location has it)"
        return " or ".join(searched)


def _list_directory(path: Path) -> list[tuple[str, str, int]]:
    """The regular files of a directory: (name, file URL, size)."""
    try:
        return [(entry.name, entry.resolve().as_uri(), entry.stat().st_size) for entry in sorted(path.iterdir()) if entry.is_file()]
    except OSError as error:
        logger.warning("find-links %s cannot be listed (%s); it offers no files", path, error.strerror or error)
        return []
