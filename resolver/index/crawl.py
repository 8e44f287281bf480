"""A speculative crawl that fetches, in parallel, what the resolvers will most likely ask for.

resolvelib works one project at a time, so fetching on demand costs a round trip per step. The crawl
walks the tree of each target's most preferred candidates (the ones a resolver tries first) with the
network kept busy, asking each target's own rules (a fork of its policy: no second set of rules).
It starts from the roots, and again from the dependencies of every candidate a resolver pins, so the
subtree of a release reached by backtracking (torch 2.10 for CUDA 12) is fetched in parallel too.
Requests are coalesced in the client. Failures are left for the resolver to meet and report. Below a
project whose page came fresh from the cache the crawl stops: there it would only spend the CPU the
resolvers need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from ..errors import CudaConstraintsError
from ..resolve.candidates import PYTHON, UNREADABLE, Req
from ..resolve.source import CrawlRules
from .client import IndexClient
from .sources import Sources


class Crawler:
    """Walks preferred trees; remembers what it visited, so new roots only add what is new."""

    def __init__(self, client: IndexClient, sources: Sources) -> None:
        self.client, self.sources = client, sources
        # (the target's rules, the candidate): the rules held here, never their address
        self.visited: set[tuple[CrawlRules, str, str]] = set()

    async def crawl(self, plans: Iterable[tuple[CrawlRules, Sequence[Req]]]) -> None:
        await asyncio.gather(*(self._visit(rules, root) for rules, roots in plans for root in roots))

    async def _visit(self, provider: CrawlRules, requirement: Req) -> None:
        if requirement.name in (PYTHON, UNREADABLE) or provider.mismatched_major(requirement.name) is not None:
            return
        try:
            project = await self.sources.project(requirement.name)
            if requirement.name not in self.client.fetched_pages:
                return  # served fresh from the cache: the tree below is there too, nothing to fetch ahead
            best = next(provider.candidates_in(project, [requirement]), None)
            if best is None or best.choice is None:
                return
            key = (provider, best.identifier, str(best.version))
            if key in self.visited:
                return
            self.visited.add(key)
            metadata = await self.client.metadata(best.choice.release, best.choice.metadata_file)
            dependencies = list(provider.dependencies_from(best, metadata))
        except CudaConstraintsError:
            return
        await asyncio.gather(*(self._visit(provider, dependency) for dependency in dependencies))
