"""Fetching ahead of the resolvers (resolve/prefetch.py): batches of the next releases' metadata while the
resolver walks down a project's releases, on uv's schedule; and the crawl of a target's preferred tree,
over the real client, into the run's store."""

from __future__ import annotations

import threading
import time

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.index.blocking import BlockingIndex
from resolver.index.cache import Cache
from resolver.index.client import ClientOptions, IndexClient
from resolver.model.families import FamilyTable
from resolver.model.indexes import IndexSource, Routing
from resolver.model.targets import Environment, PythonVersion, Target
from resolver.resolve.candidates import Req
from resolver.resolve.policy import Policy
from resolver.resolve.prefetch import Crawl, TargetPrefetch
from resolver.resolve.provider import CudaProvider
from resolver.resolve.resolution import resolve_target
from resolver.resolve.selection import Selector

from .conftest import X86
from .synthetic import SyntheticIndex, served

ENVIRONMENT = Environment(PythonVersion(3, 12), X86)


def rules() -> Policy:
    return Policy(Selector(13, ENVIRONMENT, (ENVIRONMENT,), FamilyTable()))


class Recording(SyntheticIndex):
    """A synthetic index that records, in order, the metadata fetched ahead and the metadata read."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []

    def prefetch_metadata(self, release, file) -> None:
        self.events.append(("ahead", release.name, str(release.version)))

    def metadata(self, release, file):
        self.events.append(("read", release.name, str(release.version)))
        return super().metadata(release, file)


def test_batches_grow_as_uvs_do_from_the_second_release_tried():
    """8 releases ahead at the 2nd and 5th tried, then as many as were tried at the 10th and 20th, and 50
    every 20 more; nothing between."""
    schedule, last = [], 0
    for tried in range(1, 121):
        size = TargetPrefetch.batch_size(tried, last)
        if size:
            schedule.append((tried, size))
            last = tried
    assert schedule == [(2, 8), (5, 8), (10, 10), (20, 20), (40, 40), (60, 50), (80, 50), (100, 50), (120, 50)]


def test_walking_down_a_projects_releases_reads_each_after_it_was_fetched_ahead():
    """`lib` 40 to 2 each need a `dep` the index does not have: the resolver tries them one after the
    other down to 1. From the third on, every release it reads was fetched ahead first, none twice, and
    nothing below the release it settles on beyond one batch."""
    index = Recording()
    index.add("app", "1.0", ["lib"])
    index.add("dep", "1.0")
    for minor in range(1, 41):
        index.add("lib", f"{minor}.0", [] if minor == 1 else ["dep<1"])
    policy = rules()
    provider = CudaProvider(policy, index, TargetPrefetch(policy, index))
    resolution = resolve_target(provider, Target(13, ENVIRONMENT), [Req(canonicalize_name("app"))])
    assert resolution.pins[canonicalize_name("lib")].version == Version("1.0")
    lib = [(kind, version) for kind, name, version in index.events if name == "lib"]
    read = [version for kind, version in lib if kind == "read"]
    ahead = [version for kind, version in lib if kind == "ahead"]
    assert read == [f"{minor}.0" for minor in range(40, 0, -1)]
    assert len(ahead) == len(set(ahead)) and set(read[2:]) <= set(ahead)
    for version in read[2:]:
        assert lib.index(("ahead", version)) < lib.index(("read", version)), version


def test_a_release_reached_by_walking_down_has_its_subtree_crawled():
    """`lib` 2.0 needs a `dep` that does not exist; 1.0, reached by walking down, needs `leaf`: the crawl
    is started from 1.0's dependencies, while the resolver goes on."""
    started: list[list[str]] = []

    class Crawled(Crawl):
        def start(self, plans) -> None:
            started.extend([str(requirement) for requirement in roots] for _, roots in plans)

    index = SyntheticIndex()
    index.add("lib", "2.0", ["dep<1"])
    index.add("lib", "1.0", ["leaf>=1"])
    index.add("dep", "1.0")
    index.add("leaf", "1.0")
    policy = rules()
    provider = CudaProvider(policy, index, TargetPrefetch(policy, index, Crawled(index)))  # type: ignore[arg-type]
    resolve_target(provider, Target(13, ENVIRONMENT), [Req(canonicalize_name("lib"))])
    assert started == [["leaf>=1"]]


def test_the_crawl_fetches_a_targets_preferred_tree_into_the_store_before_it_is_asked():
    """Over the real client: the crawl walks the newest releases' dependencies (app, then lib 2.0, then
    leaf), fetching pages and metadata in the loop into the run's store; lib 1.0, which no resolver would
    try first, and what only it needs, are not fetched."""
    index = SyntheticIndex()
    index.add("app", "1.0", ["lib"])
    index.add("lib", "2.0", ["leaf"])
    index.add("lib", "1.0", ["other"])
    index.add("leaf", "1.0")
    index.add("other", "1.0")
    with served(index) as served_index, BlockingIndex(lambda: IndexClient(ClientOptions(retries=0), Cache(None))) as blocking:
        view = blocking.routed(Routing((IndexSource("https://index.test/simple"),)))
        Crawl(view).start([(rules(), [Req(canonicalize_name("app"), SpecifierSet())])])
        deadline = time.monotonic() + 30
        leaf = None
        while leaf is None and time.monotonic() < deadline:
            page = blocking.store.page("https://index.test/simple", "leaf")
            leaf = page if page is not None and blocking.store.has_metadata(view.project(canonicalize_name("leaf")).releases[0].files[0]) else None
            threading.Event().wait(0.01)
        assert leaf is not None
        lib = view.project(canonicalize_name("lib"))
        assert blocking.store.has_metadata(lib.release(Version("2.0")).files[0])
        assert not blocking.store.has_metadata(lib.release(Version("1.0")).files[0])
        assert "/simple/other/" not in served_index.paths()
