"""Large pages parsed in a worker process: the same compact page and the same errors as parsing here, a
worker that survives the terminal's SIGINT, and parsing here whenever a worker cannot answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import respx
from packaging.utils import canonicalize_name

from resolver.errors import IndexUnavailable
from resolver.index import cache as cache_module
from resolver.index.cache import Cache, CachedPage
from resolver.index.client import ClientOptions, IndexClient
from resolver.index.page_worker import LARGE_PAGE, PageWorker
from resolver.index.pages import Page, PageContent, PageError, parse_simple
from resolver.index.sources import Sources
from resolver.model.indexes import IndexSource, Routing

JSON = "application/vnd.pypi.simple.v1+json"
NAME = canonicalize_name("pydantic-core")
PLATFORMS = ("manylinux_2_17_x86_64.manylinux2014_x86_64", "manylinux_2_17_aarch64.manylinux2014_aarch64",
             "musllinux_1_1_x86_64", "macosx_11_0_arm64", "win_amd64", "win32")


def large_page(**overrides) -> dict:
    """A PEP 691 page shaped like pydantic-core's (over LARGE_PAGE bytes): wheels for every Python and
    platform, sdists, yanked releases, core-metadata, a file of another project and one with a control
    character in its name (both left out)."""
    files = []
    for minor in range(160):
        version = f"2.{minor}.0"
        yanked = "broken build" if minor % 17 == 0 else False
        for python in ("cp39", "cp310", "cp311", "cp312", "cp313", "pp310"):
            for platform in PLATFORMS:
                filename = f"pydantic_core-{version}-{python}-{python}-{platform}.whl"
                files.append({
                    "filename": filename, "url": f"https://files.example/{minor:04x}/{filename}",
                    "hashes": {"sha256": f"{minor:064x}"}, "requires-python": ">=3.9", "yanked": yanked,
                    "size": 2_000_000 + minor, "upload-time": "2026-01-02T03:04:05.123456Z",
                    "core-metadata": {"sha256": f"{minor + 1:064x}"} if minor % 2 else False,
                })
        files.append({"filename": f"pydantic_core-{version}.tar.gz", "url": f"https://files.example/{minor:04x}/sdist.tar.gz",
                      "hashes": {}, "yanked": yanked})
    files.append({"filename": "other_project-1.0-py3-none-any.whl", "url": "https://files.example/other.whl", "hashes": {}})
    files.append({"filename": "pydantic_core-9.9.9-py3-none-any\x01.whl", "url": "https://files.example/x.whl", "hashes": {}})
    page = {"meta": {"api-version": "1.1"}, "name": "pydantic-core", "files": files, **overrides}
    return page


def body_of(page: dict) -> bytes:
    body = json.dumps(page).encode()
    assert len(body) > LARGE_PAGE
    return body


def materialised(page: PageContent | None) -> dict:
    """A page with its releases' rows parsed, to compare."""
    assert isinstance(page, Page), page
    return {"name": page.name, "secret": page.secret, "releases": {
        version: json.loads(bytes(rows) if isinstance(rows, memoryview) else rows) for version, rows in page.releases.items()}}


def parsed(worker: PageWorker, body: bytes) -> Page:
    """A page parsed (by the worker when it is large), not written anywhere."""
    kept = worker.keep_simple(body, JSON, NAME)
    assert isinstance(kept.content, Page) and kept.unwritten is None
    return kept.content


@pytest.fixture
def worker():
    worker = PageWorker()
    yield worker
    worker.close()


def test_a_large_page_parsed_by_the_worker_is_the_page_parsed_here(worker):
    body = body_of(large_page())
    here = parse_simple(body, JSON, NAME)
    there = parsed(worker, body)
    assert worker.pid is not None and worker.pid != os.getpid()
    assert materialised(there) == materialised(here)
    assert len(here.releases) == 160 and "9.9.9" not in here.releases


def test_a_small_page_is_parsed_here_until_a_large_one_started_the_worker(worker):
    page = large_page()
    page["files"] = page["files"][:20]
    small = json.dumps(page).encode()
    assert materialised(parsed(worker, small))["releases"]
    assert worker.pid is None and not worker.takes(small)
    parsed(worker, body_of(large_page()))
    assert worker.pid is not None and worker.takes(small)  # its pages take no time from this process now


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"files": [' + b", ".join([b'{"filename": "a.whl"}'] * 60_000) + b"]}", PageError),  # no url: the page is refused
        (body_of(large_page())[:-100], "answered invalid or truncated JSON"),
        (b"[" * (LARGE_PAGE + 1) + b"]" * (LARGE_PAGE + 1), "answered JSON nested more than 1000 levels deep"),
        (body_of(large_page(name="pydantic")), "answered the page of 'pydantic'"),  # another project's page
    ],
)
def test_a_bad_large_page_fails_as_it_fails_here(worker, body, error):
    """The worker's refusal is the PageError parsing here raises, with the same words."""
    assert len(body) > LARGE_PAGE
    with pytest.raises(PageError) as here:
        parse_simple(body, JSON, NAME)
    with pytest.raises(PageError) as there:
        parsed(worker, body)
    assert str(there.value) == str(here.value)
    assert error is PageError or str(here.value) == error
    assert worker.pid is not None  # the worker answered, and still does
    assert materialised(parsed(worker, body_of(large_page())))["releases"]


def test_pages_from_two_threads_each_get_their_own_answer(worker):
    """The client's two page threads share the one worker: requests never interleave on its pipes."""
    bodies = []
    for minor in range(12):
        page = large_page()
        page["files"] = [f for f in page["files"] if f"-2.{minor}." not in f["filename"]][: 300 + 60 * minor]
        bodies.append(json.dumps(page).encode())
    parsed(worker, body_of(large_page()))  # the worker runs: now every page goes to it
    answers: dict[int, dict] = {}

    def parse(indexes):
        for index in indexes:
            answers[index] = materialised(parsed(worker, bodies[index]))

    threads = [threading.Thread(target=parse, args=(range(start, 12, 2),), daemon=True) for start in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert answers == {index: materialised(parse_simple(body, JSON, NAME)) for index, body in enumerate(bodies)}


def test_the_worker_ignores_the_terminals_sigint(worker):
    body = body_of(large_page())
    parsed(worker, body)
    pid = worker.pid
    os.kill(pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    assert materialised(parsed(worker, body))["releases"]
    assert worker.pid == pid  # the same worker answered: the interruption is the parent's to report


def test_a_worker_that_dies_leaves_parsing_to_this_process(worker):
    body = body_of(large_page())
    parsed(worker, body)
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    while Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":  # dead (not yet reaped): a broken pipe
        time.sleep(0.01)
    assert materialised(parsed(worker, body)) == materialised(parse_simple(body, JSON, NAME))
    assert worker.pid is None


def test_a_worker_that_cannot_start_leaves_parsing_to_this_process(worker, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    body = body_of(large_page())
    assert materialised(parsed(worker, body)) == materialised(parse_simple(body, JSON, NAME))


def test_the_client_reads_a_large_page_through_the_worker_and_reports_a_bad_one_by_url(tmp_path):
    good, bad = body_of(large_page()), body_of(large_page())[:-100]

    async def fetch(name: str):
        client = IndexClient(ClientOptions(retries=0), Cache(tmp_path))
        try:
            project = await Sources(client, Routing((IndexSource("https://index.test/simple"),))).project(canonicalize_name(name))
            return project, client.page_worker.pid
        finally:
            await client.close()

    with respx.mock(assert_all_called=False) as router:
        router.get("https://index.test/simple/pydantic-core/").mock(return_value=httpx.Response(200, content=good, headers={"content-type": JSON}))
        router.get("https://index.test/simple/bad/").mock(return_value=httpx.Response(200, content=bad, headers={"content-type": JSON}))
        project, pid = asyncio.run(fetch("pydantic-core"))
        assert pid is not None
        assert str(project.releases[0].version) == "2.159.0"
        assert {f.filename for f in project.releases[0].files} >= {"pydantic_core-2.159.0.tar.gz"}
        with pytest.raises(IndexUnavailable) as failure:
            asyncio.run(fetch("bad"))
    assert "https://index.test/simple/bad/" in failure.value.message() and "invalid or truncated JSON" in failure.value.message()
    # the large page was cached, and reads back the same
    cached = Cache(tmp_path).load_page("https://index.test/simple", "pydantic-core")
    assert cached is not None and materialised(cached.content) == materialised(parse_simple(good, JSON, NAME))


def fetch_large_page(cache: Cache):
    async def fetch():
        client = IndexClient(ClientOptions(retries=0), cache)
        try:
            project = await Sources(client, Routing((IndexSource("https://index.test/simple"),))).project(NAME)
            return project, client.page_worker.pid
        finally:
            await client.close()

    with respx.mock() as router:
        router.get("https://index.test/simple/pydantic-core/").mock(
            return_value=httpx.Response(200, content=body_of(large_page()), headers={"content-type": JSON})
        )
        return asyncio.run(fetch())


def test_the_worker_writes_the_large_page_it_parses(tmp_path, monkeypatch):
    """This process writes no page file of a large page: its megabytes are written on the other core."""
    def no_writes_here(path, pieces):
        raise AssertionError(f"{path} written by the parent")

    monkeypatch.setattr(cache_module, "_write_atomically", no_writes_here)
    project, pid = fetch_large_page(Cache(tmp_path))
    assert pid is not None and [f.filename for f in project.releases[0].files][-1] == "pydantic_core-2.159.0.tar.gz"
    cached = Cache(tmp_path).load_page("https://index.test/simple", NAME)
    assert cached is not None and cached.url == "https://index.test/simple/pydantic-core/"
    assert materialised(cached.content) == materialised(parse_simple(body_of(large_page()), JSON, NAME))


def test_a_page_file_the_worker_cannot_write_is_one_warning_and_the_page_as_parsed():
    """/proc refuses new files to every user, root included."""
    warnings: list[str] = []
    cache = Cache(Path("/proc/self/cuda-constraints-cache"), warn=warnings.append)
    project, pid = fetch_large_page(cache)
    assert pid is not None and len(project.releases) == 160
    assert len(warnings) == 1 and "cannot be written" in warnings[0] and "continuing without caching" in warnings[0]
    assert cache.page_file("https://index.test/simple", NAME, CachedPage("u", {}, None, None, 0.0, None)) is None


def test_a_large_cached_page_is_mapped_and_reads_back_the_same_and_a_cut_one_is_a_miss(tmp_path):
    from resolver.index.cache import MAP_AT_LEAST

    slim = parse_simple(body_of(large_page()), JSON, NAME)
    cache = Cache(tmp_path)
    cache.store_page("https://index.test/simple", NAME, CachedPage("https://index.test/simple/pydantic-core/", slim, None, None, 0.0, None))
    (path,) = tmp_path.rglob("*.page")
    assert path.stat().st_size >= MAP_AT_LEAST
    loaded = cache.load_page("https://index.test/simple", NAME)
    assert loaded is not None and materialised(loaded.content) == materialised(slim)
    assert isinstance(loaded.content, Page)
    assert type(next(iter(loaded.content.releases.values())).obj).__name__ == "mmap"  # mapped, not read
    path.write_bytes(path.read_bytes()[:-1000])
    assert cache.load_page("https://index.test/simple", NAME) is None and not path.exists()
