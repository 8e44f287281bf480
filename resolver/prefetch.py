"""A speculative crawl that fetches, in parallel, what the resolvers will most likely ask for.

resolvelib works one project at a time, so fetching on demand costs a round trip per step. The crawl
walks the tree of each target's most preferred candidates (the ones a resolver tries first) with the
network kept busy, using the targets' own providers for the choices (no second set of rules). The
resolvers then find most projects and metadata already fetched; requests are coalesced in the client.
Failures are left for the resolver to meet and report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from .client import IndexClient
from .errors import CudaConstraintsError
from .provider import PYTHON, UNREADABLE, CudaProvider, Req


async def crawl(client: IndexClient, plans: Iterable[tuple[CudaProvider, Sequence[Req]]]) -> int:
    """Prefetch the preferred tree of every (provider, roots) plan; returns how many nodes it visited."""
    seen: set[tuple[int, str]] = set()

    async def visit(provider: CudaProvider, requirement: Req) -> None:
        key = (id(provider), requirement.identifier)
        if key in seen or requirement.name in (PYTHON, UNREADABLE):
            return
        seen.add(key)
        try:
            project = await client.project(requirement.name)
            best = next(provider.candidates_in(project, [requirement]), None)
            if best is None or best.choice is None:
                return
            metadata = await client.metadata(best.choice.release, best.choice.metadata_file)
            dependencies = list(provider.dependencies_from(best, metadata))
        except CudaConstraintsError:
            return
        await asyncio.gather(*(visit(provider, dependency) for dependency in dependencies))

    await asyncio.gather(*(visit(provider, root) for provider, roots in plans for root in roots))
    return len(seen)
