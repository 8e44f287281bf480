"""The index client against respx routes: Simple API pages as JSON and HTML, every metadata path, the
fallbacks, retries, the cache, and how a routing composes a project from several indexes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.errors import (
    IndexUnavailable,
    MetadataMismatch,
    OfflineCacheMiss,
    ProjectNotFound,
)
from resolver.index.blocking import BlockingIndex, RoutedIndex
from resolver.index.cache import Cache
from resolver.index.client import ClientOptions, IndexClient
from resolver.index.pages import ROOT_NAMES, PageError, root_names
from resolver.index.sources import Sources
from resolver.model.indexes import IndexSource, Routing

from .synthetic import SyntheticIndex, served

ROOT = "https://index.test"


def run(coroutine):
    return asyncio.run(coroutine)


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


INDEX = Routing((IndexSource(f"{ROOT}/simple"),))


def client_for(cache_dir: Path | None = None, sleeps: Sleeps | None = None, **options) -> IndexClient:
    return IndexClient(ClientOptions(retries=3, **options), Cache(cache_dir), sleep=sleeps if sleeps is not None else Sleeps())


async def fetch(client: IndexClient, name: str, version: str | None = None, filename_part: str = "", routing: Routing = INDEX):
    try:
        project = await Sources(client, routing).project(canonicalize_name(name))
        if version is None:
            return project
        release = project.release(Version(version))
        file = next(f for f in release.files if filename_part in f.filename)
        return await client.metadata(release, file)
    finally:
        await client.close()


@pytest.fixture
def index() -> SyntheticIndex:
    index = SyntheticIndex()
    index.add("nixl", "1.5.1", ["nixl-cu12==1.5.1", "nixl-cu13==1.5.1"], extras={"cu13": ("nixl-cu13==1.5.1",)})
    index.add("nixl", "1.4.0", ["nixl-cu12==1.4.0"], yanked=True, requires_python=">=3.10")
    index.add("big-wheel", "2.0", ["numpy>=2"], padding=3000)
    index.add("metadata-served", "1.0", ["requests"], core_metadata=True)
    return index


@pytest.fixture
def mock(index: SyntheticIndex):
    with respx.mock(assert_all_called=False) as router:
        router.route(host="index.test").mock(side_effect=index.handler)
        yield router


def range_requests(index: SyntheticIndex) -> list[str]:
    return [path for method, path, range_header in index.requests if range_header]


def test_project_page_resolves_relative_urls_and_keeps_per_file_facts(index, mock):
    project = run(fetch(client_for(), "NIXL"))
    assert project.name == "nixl"
    assert [str(r.version) for r in project.releases] == ["1.5.1", "1.4.0"]
    old = project.release(Version("1.4.0"))
    assert old.yanked and old.files[0].yanked
    assert old.files[0].requires_python == ">=3.10"
    # "../../packages/<file>" against https://index.test/simple/nixl/
    assert project.releases[0].files[0].url == f"{ROOT}/packages/nixl-1.5.1-py3-none-any.whl"
    assert project.releases[0].files[0].upload_time is not None and project.releases[0].files[0].size
    assert project.releases[0].files[0].index == f"{ROOT}/simple"
    assert index.paths() == ["/simple/nixl/"]


def test_dependencies_come_from_the_file(index, mock):
    metadata = run(fetch(client_for(), "nixl", "1.5.1"))
    assert metadata.requires_dist == ("nixl-cu12==1.5.1", "nixl-cu13==1.5.1", 'nixl-cu13==1.5.1; extra == "cu13"')
    assert metadata.provides_extra == ("cu13",)
    assert metadata.source == "range"


def test_pep658_metadata_is_used_when_advertised(index, mock):
    metadata = run(fetch(client_for(), "metadata-served", "1.0"))
    assert metadata.source == "pep658" and metadata.requires_dist == ("requests",)
    assert index.paths() == ["/simple/metadata-served/", "/packages/metadata_served-1.0-py3-none-any.whl.metadata"]


def test_pep658_with_a_wrong_hash_falls_back(index, mock):
    release = index.releases["metadata-served"][0]
    index.override("/packages/metadata_served-1.0-py3-none-any.whl.metadata", httpx.Response(200, content=b"Name: evil\nVersion: 9\n"))
    metadata = run(fetch(client_for(), "metadata-served", "1.0"))
    assert metadata.source == "range" and metadata.name == "metadata-served"
    assert release.requires == metadata.requires_dist


def test_small_wheel_is_read_with_one_range_request(index, mock):
    run(fetch(client_for(), "nixl", "1.5.1"))
    assert len(range_requests(index)) == 1


def test_range_read_of_a_wheel_whose_central_directory_outgrows_the_tail(index, mock):
    content = index.file_bytes("big_wheel-2.0-py3-none-any.whl")
    assert len(content) > 200_000
    client = client_for()
    metadata = run(fetch(client, "big-wheel", "2.0"))
    assert metadata.requires_dist == ("numpy>=2",) and metadata.source == "range"
    assert 2 <= len(range_requests(index)) <= 3
    assert client.stats.bytes_by_kind["range"] < len(content) / 2


def test_server_that_ignores_range_on_a_small_file_is_read_from_the_full_answer(index, mock):
    content = index.file_bytes("nixl-1.5.1-py3-none-any.whl")
    index.override("/packages/nixl-1.5.1-py3-none-any.whl", httpx.Response(200, content=content))
    metadata = run(fetch(client_for(), "nixl", "1.5.1"))
    assert metadata.source == "download" and metadata.name == "nixl"
    assert [p for p in index.paths() if p.startswith("/packages")] == ["/packages/nixl-1.5.1-py3-none-any.whl"]


def test_unknown_project_is_a_clear_error(index, mock):
    with pytest.raises(ProjectNotFound) as failure:
        run(fetch(client_for(), "no-such-project"))
    assert failure.value.exit_code == 2
    assert "no project named 'no-such-project' on https://index.test/simple" in str(failure.value)


async def close_names_of(client: IndexClient, *names: str, routing: Routing = INDEX) -> list[tuple[str, ...]]:
    """For each name: the project is not found, then the close names the indexes list are asked for."""
    sources, found = Sources(client, routing), []
    try:
        for name in names:
            with pytest.raises(ProjectNotFound):
                await sources.project(canonicalize_name(name))
            found.append(await sources.close_names(canonicalize_name(name)))
    finally:
        await client.close()
    return found


def test_a_misspelt_project_is_suggested_from_the_root_listing_asked_once_a_run(index, mock):
    """However many names are asked about, the root is fetched once; the names it lists are suggested."""
    assert run(close_names_of(client_for(), "nixll", "metadata-servd", "nixll")) == [("nixl",), ("metadata-served",), ("nixl",)]
    assert index.paths().count("/simple/") == 1


def test_a_project_no_index_has_fetches_no_root_listing_until_its_close_names_are_asked_for(index, mock):
    """A missing project below the top level only has no candidates: the miss alone reads no listing."""
    with pytest.raises(ProjectNotFound) as failure:
        run(fetch(client_for(), "nixll"))
    assert "/simple/" not in index.paths() and failure.value.suggestions == ()


def test_pypi_is_never_asked_for_its_root_listing():
    """PyPI's root lists 700,000 names in tens of MB: a name it does not have gets no listing read."""
    with respx.mock(assert_all_called=False) as router:
        root = router.get("https://pypi.org/simple/").mock(return_value=httpx.Response(200, json={"projects": [{"name": "nixl"}]}))
        router.get("https://pypi.org/simple/nixll/").mock(return_value=httpx.Response(404))
        pypi = Routing((IndexSource("https://pypi.org/simple"),))
        assert run(close_names_of(client_for(), "nixll", routing=pypi)) == [()]
    assert not root.called


def test_offline_no_root_listing_is_asked_for(index, mock, tmp_path):
    async def missing_online_then_offline() -> list[tuple[str, ...]]:
        online = client_for(tmp_path)
        await online.page(f"{ROOT}/simple", canonicalize_name("nixll"))  # a 404, cached as such
        await online.close()
        return await close_names_of(client_for(tmp_path, offline=True), "nixll")

    assert run(missing_online_then_offline()) == [()]
    assert index.paths() == ["/simple/nixll/"]


def test_a_root_listing_that_does_not_come_soon_is_given_up(index, mock, monkeypatch):
    monkeypatch.setattr("resolver.index.client.ROOT_TIMEOUT", 0.2)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json={"projects": [{"name": "nixl"}]})

    index.override("/simple/", slow)
    assert run(asyncio.wait_for(close_names_of(client_for(), "nixll"), 10)) == [()]


def test_a_root_listing_that_fails_is_asked_once_and_the_error_is_not_held_up_by_retries(index, mock):
    """Pages are retried (3 times here, with backoff); a root listing is only for suggestions: one attempt."""
    sleeps = Sleeps()
    index.override("/simple/", httpx.Response(503), httpx.Response(200, json={"projects": [{"name": "nixl"}]}))
    assert run(close_names_of(client_for(sleeps=sleeps), "nixll")) == [()]
    assert index.paths().count("/simple/") == 1 and not sleeps


def test_a_root_listing_is_read_as_json_or_html_and_only_valid_names_are_kept():
    listing = {"meta": {"api-version": "1.0"}, "projects": [
        {"name": "Our_Kernels"}, {"name": "-bad"}, {"name": "a\nb"}, {"name": 7}, "numpy", {"name": "zope.interface"}]}
    assert root_names(json.dumps(listing).encode(), "application/vnd.pypi.simple.v1+json") == {"our-kernels", "zope-interface"}
    http_server = b'<html><body><ul><li><a href="our_kernels/">our_kernels/</a></li><li><a href="../">..</a></li>' \
                  b'<li><a href="?C=N;O=D">Name</a></li><li><a href="https://host/simple/Torch/">Torch</a></ul></body></html>'
    assert root_names(http_server, "text/html") == {"our-kernels", "torch"}
    with pytest.raises(PageError):
        root_names(b'{"files": []}', "application/json")
    with pytest.raises(PageError):
        root_names(json.dumps({"projects": [{"name": f"p{n}"} for n in range(ROOT_NAMES + 1)]}).encode(), "")


def test_429_waits_as_long_as_retry_after_says(index, mock):
    page = json.dumps(index.project_page("nixl")).encode()
    index.override("/simple/nixl/", httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, content=page))
    sleeps = Sleeps()
    project = run(fetch(client_for(sleeps=sleeps), "nixl"))
    assert project.name == "nixl" and sleeps == [7.0]


def test_5xx_and_connection_errors_are_retried_with_backoff(index, mock):
    page = json.dumps(index.project_page("nixl")).encode()
    index.override("/simple/nixl/", httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(200, content=page))
    sleeps = Sleeps()
    client = client_for(sleeps=sleeps)
    assert run(fetch(client, "nixl")).name == "nixl"
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] > 0
    assert client.stats.retries == 2


def test_persistent_server_error_names_the_url_and_status(index, mock):
    index.override("/simple/nixl/", lambda request: httpx.Response(500))
    sleeps = Sleeps()
    with pytest.raises(IndexUnavailable) as failure:
        run(fetch(client_for(sleeps=sleeps), "nixl"))
    assert failure.value.exit_code == 5 and failure.value.status == 500
    assert f"{ROOT}/simple/nixl/" in str(failure.value) and "HTTP 500" in str(failure.value)
    assert "4 attempts" in str(failure.value)
    assert len(sleeps) == 3


def test_timeouts_are_retried_then_reported(index, mock):
    index.override("/simple/nixl/", *(httpx.ReadTimeout("slow") for _ in range(4)))
    with pytest.raises(IndexUnavailable) as failure:
        run(fetch(client_for(), "nixl"))
    assert "timed out" in str(failure.value) and "4 attempts" in str(failure.value)


def test_an_html_page_is_read_as_pep_503(index, mock):
    """An index that answers HTML to the JSON request (the PyTorch index does): links with their attributes."""
    page = index.simple_page("nixl").encode()
    index.override("/simple/nixl/", httpx.Response(200, content=page, headers={"Content-Type": "text/html"}))
    project = run(fetch(client_for(), "nixl"))
    assert [str(r.version) for r in project.releases] == ["1.5.1", "1.4.0"]
    old = project.release(Version("1.4.0"))
    assert old.yanked and old.files[0].requires_python == ">=3.10"
    assert project.releases[0].files[0].sha256 == hashlib.sha256(index.file_bytes(project.releases[0].files[0].filename)).hexdigest()


def test_a_login_page_is_an_index_with_no_such_project_not_a_crash(index, mock):
    index.override("/simple/nixl/", httpx.Response(200, content=b"<html><body>Login</body></html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(ProjectNotFound):
        run(fetch(client_for(), "nixl"))


def test_json_that_is_not_a_project_page(index, mock):
    content_type = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
    index.override("/simple/nixl/", httpx.Response(200, content=b'{"projects": []}', headers=content_type))
    with pytest.raises(IndexUnavailable) as failure:
        run(fetch(client_for(), "nixl"))
    assert "not a PEP 691 project page" in str(failure.value) and f"{ROOT}/simple/nixl/" in str(failure.value)


def test_truncated_json(index, mock):
    page = json.dumps(index.project_page("nixl")).encode()
    content_type = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
    index.override("/simple/nixl/", httpx.Response(200, content=page[: len(page) // 2], headers=content_type))
    with pytest.raises(IndexUnavailable) as failure:
        run(fetch(client_for(), "nixl"))
    assert "truncated" in str(failure.value)


def test_metadata_naming_another_project_is_refused(index, mock):
    index.add("liar", "1.0", claimed_name="somebody-else")
    with pytest.raises(MetadataMismatch) as failure:
        run(fetch(client_for(), "liar", "1.0"))
    assert "somebody-else" in str(failure.value) and "liar 1.0" in str(failure.value)


def test_metadata_naming_another_version_is_refused(index, mock):
    index.add("liar", "1.0", claimed_version="2.0")
    with pytest.raises(MetadataMismatch) as failure:
        run(fetch(client_for(), "liar", "1.0"))
    assert "liar 2.0" in str(failure.value)


def test_metadata_is_cached_by_file_hash(index, mock, tmp_path):
    run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    first = len(index.requests)
    metadata = run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    assert metadata.source == "cache"
    assert len(index.requests) == first  # page still fresh, metadata immutable: nothing fetched


def test_a_corrupt_cache_entry_is_refetched(index, mock, tmp_path):
    run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    entries = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {path.suffix for path in entries} == {".json", ".page"}
    for entry in entries:
        entry.write_bytes(b"\x00{not json")
    metadata = run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    assert metadata.source == "range"
    # every entry was discarded and written again: metadata as JSON, pages as a JSON header line and a body
    assert all(json.loads(e.read_bytes().split(b"\n", 1)[0])["format"] for e in tmp_path.rglob("*") if e.is_file())


def test_a_cached_page_whose_body_was_cut_short_is_refetched(index, mock, tmp_path):
    run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    (page,) = tmp_path.rglob("*.page")
    page.write_bytes(page.read_bytes()[:-10])  # a release's files now end past the body
    requests = len(index.requests)
    run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    assert any(path.endswith("/simple/nixl/") for path in index.paths()[requests:])


def test_project_page_is_revalidated_with_its_etag(index, mock, tmp_path):
    page = json.dumps(index.project_page("nixl")).encode()
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=page, headers={"ETag": '"v1"'})

    index.override("/simple/nixl/", answer)
    run(fetch(client_for(tmp_path), "nixl"))
    project = run(fetch(client_for(tmp_path), "nixl"))
    assert seen == [None, '"v1"'] and project.releases[0].version == Version("1.5.1")


def test_offline_uses_the_cache_and_names_what_is_missing(index, mock, tmp_path):
    run(fetch(client_for(tmp_path), "nixl", "1.5.1"))
    count = len(index.requests)
    assert run(fetch(client_for(tmp_path, offline=True), "nixl", "1.5.1")).name == "nixl"
    assert len(index.requests) == count
    with pytest.raises(OfflineCacheMiss) as failure:
        run(fetch(client_for(tmp_path, offline=True), "big-wheel"))
    assert "--offline" in str(failure.value) and failure.value.exit_code == 5


def test_a_cache_directory_that_cannot_be_written_degrades_to_no_cache(index, mock):
    """/proc refuses new files to every user, root included (a chmod would not stop root)."""
    warnings = []
    cache = Cache(Path("/proc/self/cuda-constraints-cache"), warn=warnings.append)
    client = IndexClient(ClientOptions(), cache, sleep=Sleeps())
    metadata = run(fetch(client, "nixl", "1.5.1"))
    assert metadata.name == "nixl"
    assert len(warnings) == 1 and "cannot be written" in warnings[0] and "continuing without caching" in warnings[0]


def test_requests_are_coalesced(index, mock):
    async def many():
        client = client_for()
        try:
            sources = Sources(client, INDEX)
            projects = await asyncio.gather(*(sources.project(canonicalize_name("nixl")) for _ in range(10)))
            release = projects[0].releases[0]
            await asyncio.gather(*(client.metadata(release, release.files[0]) for _ in range(10)))
        finally:
            await client.close()

    run(many())
    assert index.paths().count("/simple/nixl/") == 1
    assert len(range_requests(index)) == 1


def test_sha256_of_files_is_kept(index, mock):
    project = run(fetch(client_for(), "nixl"))
    file = project.releases[0].files[0]
    assert file.sha256 == hashlib.sha256(index.file_bytes(file.filename)).hexdigest()


def test_metadata_read_before_an_interruption_is_cached_when_the_client_closes(index, mock, tmp_path):
    async def read_then_interrupt():
        client = client_for(tmp_path)
        project = await Sources(client, INDEX).project(canonicalize_name("nixl"))
        release = project.release(Version("1.5.1"))
        await client.metadata(release, release.files[0])
        client.cancel_all()  # what Ctrl-C does in the loop
        await client.close()

    run(read_then_interrupt())
    reads = len(index.requests)
    assert run(fetch(client_for(tmp_path), "nixl", "1.5.1")).source == "cache"
    assert len(index.requests) == reads


def test_a_fetched_page_the_cache_cannot_keep_is_used_as_fetched_not_the_older_cached_one(index, mock, tmp_path):
    run(fetch(client_for(tmp_path), "nixl"))
    index.add("nixl", "1.6.0", ["nixl-cu12==1.6.0"])
    client = client_for(tmp_path, refresh=True)
    client.cache._write_failed = True  # as after a failed write: the cache still reads, it no longer writes
    project = run(fetch(client, "nixl"))
    assert str(project.releases[0].version) == "1.6.0"


def test_metadata_the_disk_cache_holds_is_not_prefetched_through_the_loop(tmp_path):
    """The resolvers ask to prefetch the metadata of the releases a walk will meet next (hundreds in a warm
    run); one the cache holds is read when it is needed, in the asking thread, with no trip through the
    loop. One it does not hold is fetched ahead."""
    index = SyntheticIndex()
    index.add("goodpkg", "1.0")
    index.add("goodpkg", "2.0")
    name = canonicalize_name("goodpkg")
    with served(index):
        with _view(tmp_path) as view:
            older = view.project(name).release(Version("1.0"))
            view.metadata(older, older.files[0])  # now in the disk cache
        with _view(tmp_path) as view:
            project = view.project(name)
            submitted = _trips_through_the_loop(view.blocking)
            for release in project.releases:
                view.prefetch_metadata(release, release.files[0])
            assert submitted == ["IndexClient.metadata"]  # 2.0's, which the cache does not hold
            newer = project.release(Version("2.0"))
            assert view.metadata(newer, newer.files[0]).version == Version("2.0")


def test_what_the_loop_fetched_any_thread_reads_from_the_store_without_the_disk_or_the_loop():
    """One store: a page and a file's metadata fetched once (here by prefetches, in the loop) are what every
    view and every thread then read, from memory (no disk cache at all), with no second request and no trip
    through the loop; another routing's view makes its project from the same page."""
    import threading

    index = SyntheticIndex()
    index.add("goodpkg", "1.0", ["requests"])
    name = canonicalize_name("goodpkg")
    with served(index) as served_index, BlockingIndex(lambda: IndexClient(ClientOptions(retries=0), Cache(None))) as blocking:
        view = blocking.routed(INDEX)
        release = view.project(name).release(Version("1.0"))
        view.prefetch_metadata(release, release.files[0])
        while not blocking.store.has_metadata(release.files[0]):
            threading.Event().wait(0.01)
        requests = len(served_index.requests)
        trips = _trips_through_the_loop(blocking)
        other = blocking.routed(Routing((IndexSource(f"{ROOT}/simple"),), strategy="unsafe-best-match"))
        answers = []
        thread = threading.Thread(target=lambda: answers.append((other.project(name), view.metadata(release, release.files[0]))))
        thread.start()
        thread.join(timeout=30)
        (project, metadata), = answers
        assert project is not view.project(name) and project.release(Version("1.0")).files == release.files
        assert metadata.requires_dist == ("requests",)
        assert trips == [] and len(served_index.requests) == requests


def test_file_lists_the_disk_cache_holds_are_read_without_a_trip_through_the_loop(tmp_path):
    """As for metadata: the file lists of wheels with builds per torch version, asked ahead for the next
    older releases, are read in the asking thread when the cache holds them, a wheel without any
    extension module too (an empty list); one it does not hold is fetched ahead."""
    index = SyntheticIndex()
    index.add("ext", "1.0", members=(("ext/_ops_torch212.so", b"\x7fELF"),))
    index.add("ext", "2.0")
    index.add("ext", "3.0")
    name = canonicalize_name("ext")
    with served(index):
        with _view(tmp_path) as view:
            for version in ("1.0", "2.0"):
                view.extension_modules(view.project(name).release(Version(version)).files[0])  # now in the disk cache
        with _view(tmp_path) as view:
            project = view.project(name)
            submitted = _trips_through_the_loop(view.blocking)
            for release in project.releases:
                view.prefetch_extension_modules(release.files[0])
            assert submitted == ["IndexClient.extension_modules"]  # 3.0's, which the cache does not hold
            assert view.extension_modules(project.release(Version("1.0")).files[0]) == ("ext/_ops_torch212.so",)
            assert view.extension_modules(project.release(Version("2.0")).files[0]) == ()
            assert submitted == ["IndexClient.extension_modules"]
            assert view.extension_modules(project.release(Version("3.0")).files[0]) == ()


@contextlib.contextmanager
def _view(cache: Path) -> Iterator[RoutedIndex]:
    """The index's view for the resolvers, over a client of its own on the disk cache `cache`."""
    with BlockingIndex(lambda: IndexClient(ClientOptions(retries=0), Cache(cache))) as blocking:
        yield blocking.routed(INDEX)


def _trips_through_the_loop(blocking: BlockingIndex) -> list[str]:
    """The coroutines the resolvers' side hands to the index's loop from now on (started or waited for)."""
    trips: list[str] = []
    for method in ("submit", "run"):
        original = getattr(blocking, method)
        setattr(blocking, method, lambda coroutine, original=original: trips.append(coroutine.__qualname__) or original(coroutine))
    return trips


def test_a_local_read_that_hangs_ends_at_the_deadline_in_a_thread_the_process_need_not_wait_for(tmp_path, monkeypatch):
    """A find-links file on a mount that stops answering: the read gives up at the deadline of one request,
    and the thread still stuck in it is a daemon (an interpreter waits for its executor's threads at exit)."""
    import threading
    import time

    from resolver.index import reading
    from resolver.index.http import Limits

    index = SyntheticIndex()
    release = index.add("local", "1.0")
    (tmp_path / release.wheel_filename("py3-none-any")).write_bytes(release.wheel_bytes("py3-none-any"))
    release_hang = threading.Event()
    monkeypatch.setattr(reading, "metadata_from_wheel", lambda *arguments: release_hang.wait(30))
    routing = Routing((), find_links=(IndexSource(str(tmp_path), find_links=True),))
    started = time.monotonic()
    try:
        with pytest.raises(IndexUnavailable, match="did not finish within 1s"):
            run(fetch(client_for(limits=Limits(deadline=1)), "local", "1.0", routing=routing))
        assert time.monotonic() - started < 10
        stuck = [thread for thread in threading.enumerate() if thread.name == "local-read"]
        assert stuck and all(thread.daemon for thread in stuck)
    finally:
        release_hang.set()
