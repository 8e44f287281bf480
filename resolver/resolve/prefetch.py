"""Fetching ahead of the resolvers: which projects and which releases' metadata will be asked for next.

This is resolution logic, as uv's batch prefetch lives in its resolver: the index only fetches and
coalesces (`Index.start`, `MetadataSource.prefetch_metadata`), it never knows why. Two kinds:

- **The crawl** (`Crawl`): resolvelib works one project at a time, so fetching on demand costs a round
  trip per step. The crawl walks, in the background, the tree of each target's most preferred candidates
  (the ones a resolver tries first) with the network kept busy, asking a copy of the target's own rules
  (`Policy.fork`: no second set of rules). It starts from the roots, and again from the dependencies of
  every release reached by walking down a project's releases (torch 2.10 for CUDA 12), so that subtree is
  fetched in parallel too. Below a project whose pages came fresh from the cache it stops: there it would
  only spend the CPU the resolvers need. Failures are left for the resolver to meet and report.
- **Batches while backtracking** (`TargetPrefetch.trying`): each release whose dependencies the resolver
  asks for is counted as tried; once it has tried 2, 5, 10 or 20 of a project's releases, and every 20
  after that, the metadata of the next candidates is fetched in one batch (8, then as many as were tried,
  at most 50, as uv does): those the last query's requirements admit first, then the older releases in
  order (llama-index's packages pin each other in narrow ranges: a resolver walks down dozens of releases
  of a few projects, and without batches waits on every one).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator, Sequence

from packaging.utils import NormalizedName
from packaging.version import Version

from ..errors import CudaConstraintsError
from .candidates import PYTHON, UNREADABLE, Candidate, Req, requirement_for
from .policy import Policy
from .source import Fetcher, Index, MetadataSource

# After this many releases of a project tried, the next ones are fetched in a batch; then every STEP more.
THRESHOLDS = (2, 5, 10, 20)
STEP = 20
SMALLEST_BATCH, LARGEST_BATCH = 8, 50


class Crawl:
    """The background walks of one CUDA major's preferred trees; remembers what it visited (for which
    target's rules), so new roots only add what is new. One per major: its walks run on the index's loop."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.visited: set[tuple[Policy, str, Version]] = set()  # the rules held here, never their address

    def start(self, plans: Iterable[tuple[Policy, Sequence[Req]]]) -> None:
        """Walk these trees in the background: each a copy of a target's rules and the requirements to start from."""
        plans = list(plans)
        self.index.start(lambda fetcher: self._walk(fetcher, plans))

    async def _walk(self, fetcher: Fetcher, plans: Sequence[tuple[Policy, Sequence[Req]]]) -> None:
        await asyncio.gather(*(self._visit(fetcher, rules, root) for rules, roots in plans for root in roots))

    async def _visit(self, fetcher: Fetcher, rules: Policy, requirement: Req) -> None:
        if requirement.name in (PYTHON, UNREADABLE) or rules.mismatched_major(requirement.name) is not None:
            return
        try:
            project = await fetcher.project(requirement.name)
            if not fetcher.fetched(requirement.name):
                return  # served fresh from the cache: the tree below is there too, nothing to fetch ahead
            best = next(rules.candidates_in(project, [requirement]), None)
            if best is None or best.choice is None:
                return
            key = (rules, best.identifier, best.version)
            if key in self.visited:
                return
            self.visited.add(key)
            metadata = await fetcher.metadata(best.choice.release, best.choice.metadata_file)
            dependencies = list(rules.dependencies_from(best, metadata))
        except CudaConstraintsError:
            return
        await asyncio.gather(*(self._visit(fetcher, rules, dependency) for dependency in dependencies))


class TargetPrefetch:
    """What one target's resolver fetches ahead: told of every release it tries (`tried`)."""

    def __init__(self, policy: Policy, source: MetadataSource, crawl: Crawl | None = None) -> None:
        self.policy, self.source, self.crawl = policy, source, crawl
        self._crawl_rules = policy.fork() if crawl is not None else None
        self._tried: dict[NormalizedName, set[Version]] = {}
        self._batched: dict[NormalizedName, int] = {}  # how many had been tried at the last batch
        self._fetched: set[tuple[NormalizedName, Version]] = set()

    def trying(self, candidate: Candidate) -> bool:
        """The resolver is about to read a release's dependencies: count it as tried, and fetch the next
        releases in a batch when enough of the project's were. Whether it was reached by walking down."""
        if candidate.extras:
            return False  # an extras candidate is tried with its release, which is counted
        versions = self._tried.setdefault(candidate.name, set())
        versions.add(candidate.version)
        size = self.batch_size(len(versions), self._batched.get(candidate.name, 0))
        if size:
            self._batched[candidate.name] = len(versions)
            for later in itertools.islice(self._next(candidate), size):
                assert later.choice is not None
                if (later.name, later.version) not in self._fetched:
                    self._fetched.add((later.name, later.version))
                    self.source.prefetch_metadata(later.choice.release, later.choice.metadata_file)
        return len(versions) > 1

    def reached(self, dependencies: Sequence[Req]) -> None:
        """A release reached by walking down (torch 2.10 for CUDA 12) has these dependencies: its subtree is
        new, so it is crawled."""
        if self.crawl is not None and self._crawl_rules is not None:
            self.crawl.start([(self._crawl_rules, dependencies)])

    @staticmethod
    def batch_size(tried: int, at_last_batch: int) -> int:
        """How many releases to fetch ahead now that `tried` of a project's were tried (0: none yet)."""
        crossed = any(at_last_batch < threshold <= tried for threshold in THRESHOLDS)
        if crossed or (tried >= THRESHOLDS[-1] and tried - at_last_batch >= STEP):
            return min(max(tried, SMALLEST_BATCH), LARGEST_BATCH)
        return 0

    def _next(self, candidate: Candidate) -> Iterator[Candidate]:
        """The releases the resolver will most likely try after this one: those the last query's
        requirements admit, in its order; then the older ones in order, whatever the query asked (a
        requirement that narrowed it may be withdrawn as the resolver backtracks). Made as they are taken:
        a batch looks at no more releases than it needs."""
        query = self.policy.record.queries.get(candidate.name)
        if query is None:
            return
        project, requested, excluded = query
        oldest = candidate.version
        for later in self.policy.candidates_in(project, requested, excluded):
            if later.version < candidate.version:
                oldest = min(oldest, later.version)
                if _readable(later):
                    yield later
        anything = (requirement_for(candidate.name),)
        yield from (c for c in self.policy.candidates_in(project, anything) if c.version < oldest and _readable(c))


def _readable(candidate: Candidate) -> bool:
    """Whether its metadata is cheap to fetch ahead: a wheel's (PEP 658, or ranges), never an sdist's."""
    return candidate.choice is not None and (candidate.choice.metadata_file.is_wheel or candidate.choice.metadata_file.core_metadata)
