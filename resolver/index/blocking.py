"""A blocking face for the async index client: its event loop runs in a background thread.

The resolver (resolvelib is synchronous) calls `project()` and `metadata()` from its own threads, while
prefetches and crawls keep the network busy in the loop. Requests are coalesced in the client, so a
prefetch and a later blocking call for the same thing make one request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from packaging.utils import NormalizedName, canonicalize_name

from ..errors import CudaConstraintsError, ProjectNotFound
from ..errors.interrupts import Interrupted
from ..model.distributions import CoreMetadata, DistFile, Project, Release
from ..model.indexes import Routing
from .client import IndexClient
from .sources import Sources
from .store import UNKNOWN

T = TypeVar("T")
logger = logging.getLogger(__name__)


class BlockingIndex:
    """Runs an `IndexClient` in an event loop of its own thread, for the resolvers' threads; each CUDA
    major asks through a `routed` view of it."""

    def __init__(self, make_client: Callable[[], IndexClient]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cuda-constraints-index", daemon=True)
        self._thread.start()
        self._submitted: set[concurrent.futures.Future[Any]] = set()  # in flight: a finished one leaves
        self.cancelled = False
        self.client: IndexClient = self.run(_call(make_client))
        self.store = self.client.store
        self._views: dict[Routing, RoutedIndex] = {}

    def routed(self, routing: Routing) -> RoutedIndex:
        """The view of the indexes one CUDA major's routing gives (one per routing)."""
        if routing not in self._views:
            self._views[routing] = RoutedIndex(self, Sources(self.client, routing))
        return self._views[routing]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the loop and wait for its result; Interrupted once `cancel` was called."""
        if self.cancelled:
            coroutine.close()
            raise Interrupted()
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise Interrupted() from None

    def cancel(self) -> None:
        """Stop: cancel every request in flight; every later call raises Interrupted (any thread)."""
        self.cancelled = True
        for future in list(self._submitted):
            future.cancel()
        self._loop.call_soon_threadsafe(self.client.cancel_all)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start a coroutine in the loop without waiting for it."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        self._submitted.add(future)
        future.add_done_callback(self._submitted.discard)
        future.add_done_callback(_log_failure)
        return future

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        """A file's metadata: from the store in the calling thread when it is there, else fetched in the loop."""
        if self.cancelled:
            raise Interrupted()
        found = self.store.metadata(release, file)
        return found if found is not None else self.run(self.client.metadata(release, file))

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        """Start reading a file's metadata, unless the store has it: there the later `metadata` reads it in
        the calling thread, and a trip through the loop would only cost time (a warm run's walks would make
        hundreds)."""
        if not self.store.has_metadata(file):
            self.submit(self.client.metadata(release, file))

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        if self.cancelled:
            raise Interrupted()
        found = self.store.extensions(file)
        return found if found is not UNKNOWN else self.run(self.client.extension_modules(file))

    def prefetch_extension_modules(self, file: DistFile) -> None:
        """Start reading a wheel's file list, unless the store has it (as for metadata)."""
        if not self.store.has_extensions(file):
            self.submit(self.client.extension_modules(file))

    def close(self) -> None:
        for future in list(self._submitted):
            future.cancel()
        self.cancelled = False  # closing must still run in the loop
        try:
            self.run(self.client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> BlockingIndex:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self.cancel()
        self.close()


class RoutedIndex:
    """The `Index` one CUDA major sees: projects as its routing makes them, metadata shared by all."""

    def __init__(self, blocking: BlockingIndex, sources: Sources) -> None:
        self.blocking, self.sources = blocking, sources

    def project(self, name: NormalizedName) -> Project:
        if self.blocking.cancelled:
            raise Interrupted()
        # Projects whose pages the store has are made in the calling thread: a trip through the loop costs
        # milliseconds, and the resolvers ask hundreds of times.
        return self.sources.at_hand(name) or self.blocking.run(self.sources.project(name))

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        return self.blocking.metadata(release, file)

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        self.blocking.prefetch_metadata(release, file)

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        return self.blocking.extension_modules(file)

    def prefetch_extension_modules(self, file: DistFile) -> None:
        self.blocking.prefetch_extension_modules(file)

    def start(self, work: Callable[[RoutedFetcher], Coroutine[Any, Any, None]]) -> None:
        """Run the resolver's background work (its prefetch) in the loop, over this view's `RoutedFetcher`."""
        self.blocking.submit(work(RoutedFetcher(self.blocking.client, self.sources)))

    def existing(self, names: Iterable[str]) -> set[str]:
        return self.blocking.run(_existing(self.sources, sorted(set(names))))

    def close_names(self, name: NormalizedName) -> tuple[str, ...]:
        return self.blocking.run(self.sources.close_names(name))

    def cancel(self) -> None:
        self.blocking.cancel()

    def routed(self, routing: Routing) -> RoutedIndex:
        return self.blocking.routed(routing)


class RoutedFetcher:
    """A view's answers in the loop, for background work: what the resolvers would be given, fetched now."""

    def __init__(self, client: IndexClient, sources: Sources) -> None:
        self.client, self.sources = client, sources

    async def project(self, name: NormalizedName) -> Project:
        return await self.sources.project(name)

    async def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        return await self.client.metadata(release, file)

    def fetched(self, name: NormalizedName) -> bool:
        return name in self.client.fetched_pages


async def _existing(sources: Sources, names: list[str]) -> set[str]:
    async def exists(name: str) -> str | None:
        try:
            project = await sources.project(canonicalize_name(name))
        except ProjectNotFound:
            return None
        return name if project.releases else None

    return {name for name in await asyncio.gather(*(exists(n) for n in names)) if name}


async def _call(factory: Callable[[], T]) -> T:
    return factory()


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    """A background job nobody waits for: its failure is logged (an index error is met again, and reported,
    by the resolver that needs the answer; anything else is a defect worth a warning)."""
    if future.cancelled():
        return
    error = future.exception()
    if isinstance(error, CudaConstraintsError):
        logger.debug("background fetch failed: %s", error.message())
    elif error is not None and not isinstance(error, asyncio.CancelledError):
        logger.warning("a background fetch failed unexpectedly: %s: %s", type(error).__name__, error)
