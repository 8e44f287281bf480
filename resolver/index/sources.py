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

from packaging.utils import NormalizedName

from ..errors import ProjectNotFound
from ..model.distributions import Project, close_names
from ..model.indexes import IndexSource, Routing
from .cache import CachedPage
from .client import FIND_LINKS, IndexClient
from .pages import LinksPage, Listing, Page, project_from_pages


class Sources:
    """The projects of one routing, each made once from its pages (the client fetches the pages, once for
    every routing that asks; a project is this routing's own, as its pages are chosen by it)."""

    def __init__(self, client: IndexClient, routing: Routing) -> None:
        self.client, self.routing = client, routing
        # Each source without its credentials (those go to the client's store) and as messages show it.
        self._clean = {source: client.credentials.add(source.url) for source in (*routing.indexes, *routing.find_links,
                                                                                 *routing.routes.values())}
        self._projects: dict[NormalizedName, Project] = {}

    def shown(self, source: IndexSource) -> str:
        return source.display

    def at_hand(self, name: NormalizedName) -> Project | None:
        """The project, when it was made or every page it needs is in the store (any thread)."""
        found = self._projects.get(name)
        if found is not None:
            return found
        listings: list[Listing] = []
        for source in self.routing.find_links:
            links = self.client.store.page(self._clean[source], FIND_LINKS)
            if links is None:
                return None
            listings += _links_listing(links, name, self.shown(source))
        for source in self.routing.searched(name):
            page = self.client.store.page(self._clean[source], name)
            if page is None:
                return None
            if isinstance(page.content, Page):
                listings.append(Listing(page.content, page.url, self.shown(source)))
                if self._first_only(name):
                    break
        if not any(listing.page.releases for listing in listings):
            return None  # no index has it: the loop says so, with the error's details
        return self._projects.setdefault(name, project_from_pages(name, listings))

    async def project(self, name: NormalizedName) -> Project:
        """The project from its pages, fetched as needed (the crawl and every resolver of this routing ask);
        ProjectNotFound when no source has it, with the close names known without asking an index."""
        found = self._projects.get(name)
        if found is None:
            # Find-links files first: where an index has a file of the same name, the find-links one is taken
            # (pip's order: a release page of CUDA 12 builds beside PyPI's CUDA 13 ones of the same version).
            listings = await self._links(name)
            listings += await self._index_pages(name)
            if not any(listing.page.releases for listing in listings):
                empty = [listing.shown for listing in listings]  # a page without files: a login page, perhaps
                raise ProjectNotFound(name, self._where(name), answered_empty=empty, suggestions=self._near(name))
            found = self._projects.setdefault(name, project_from_pages(name, listings))
        return found

    async def _index_pages(self, name: NormalizedName) -> list[Listing]:
        searched = self.routing.searched(name)
        if self._first_only(name):
            for source in searched:  # one after the other: a later index is never asked for a name found earlier
                page = await self.client.page(self._clean[source], name)
                if isinstance(page.content, Page):
                    return [Listing(page.content, page.url, self.shown(source))]
            return []
        answers = await asyncio.gather(*(self.client.page(self._clean[source], name) for source in searched))
        return [Listing(page.content, page.url, self.shown(source))
                for source, page in zip(searched, answers, strict=True) if isinstance(page.content, Page)]

    def _first_only(self, name: NormalizedName) -> bool:
        return self.routing.strategy == "first-index" or name in self.routing.routes

    async def _links(self, name: NormalizedName) -> list[Listing]:
        listings: list[Listing] = []
        for source in self.routing.find_links:
            listings += _links_listing(await self.client.links_page(self._clean[source]), name, self.shown(source))
        return listings

    def _near(self, name: NormalizedName) -> tuple[str, ...]:
        """Names close to one no source has, from what is known without asking an index for a listing: the
        cache's pages and the find-links locations'."""
        listed = list(self.client.cache.project_names())
        for source in self.routing.find_links:
            links = self.client.store.page(self._clean[source], FIND_LINKS)
            if links is not None and isinstance(links.content, LinksPage):
                listed += list(links.content.projects)
        return close_names(name, listed)

    async def close_names(self, name: NormalizedName) -> tuple[str, ...]:
        """Names close to one no source has, the root listings of the indexes searched for it included (a
        small one, never PyPI's: `IndexClient.root_names`). Asked only when the miss is the run's error: a
        project below the top level that no index has is only one with no candidates."""
        roots = await asyncio.gather(*(self.client.root_names(self._clean[source]) for source in self.routing.searched(name)))
        return close_names(name, (*self._near(name), *(known for root in roots for known in root)))

    def _where(self, name: NormalizedName) -> str:
        searched = [self.shown(s) for s in (*self.routing.searched(name), *self.routing.find_links)]
        if not searched:
            return "any index (--no-index, and no find-links location has it)"
        return " or ".join(searched)


def _links_listing(links: CachedPage, name: NormalizedName, shown: str) -> list[Listing]:
    page = links.content.projects.get(name) if isinstance(links.content, LinksPage) else None
    return [] if page is None else [Listing(page, links.url, shown)]
