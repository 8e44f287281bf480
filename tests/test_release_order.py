"""A project made from one parsed page keeps its releases in the page's order and makes each when it is
looked at; checked against making and sorting them all, on the real version lists of the frozen snapshot
of PyPI (309 projects) and on spellings that need care."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.index.pages import Listing, Page, Row, _page, project_from_pages
from resolver.model.distributions import OrderedReleases

PROJECTS = Path(__file__).parent / "data" / "frozen" / "index" / "projects"


def rows_of(document: dict) -> list[Row]:
    """The frozen page's files as the rows a Simple API page becomes."""
    return [
        Row(filename, f"https://files.example/{filename}", sha256, requires_python, yanked, size, uploaded, False, None)
        for rows in document["releases"].values()
        for filename, sha256, requires_python, yanked, uploaded, size in rows
    ]


def shape(project) -> list[tuple[Version, list[str]]]:
    return [(release.version, sorted(f.filename for f in release.files)) for release in project.releases]


def both_ways(name: str, rows: list[Row]):
    """The project made from one page (its releases in the page's order, made when looked at), and made
    as from several pages (every release made and sorted), the other one empty."""
    page = _page(canonicalize_name(name), rows)
    ordered = project_from_pages(canonicalize_name(name), [Listing(page, "https://index.example/simple/x/", "index")])
    eager = project_from_pages(canonicalize_name(name), [Listing(page, "https://index.example/simple/x/", "index"),
                                                         Listing(Page(canonicalize_name(name)), "https://other.example/", "other")])
    return ordered, eager


@pytest.mark.parametrize("path", sorted(PROJECTS.glob("*.json")), ids=lambda path: path.stem)
def test_releases_in_the_pages_order_are_the_releases_sorted(path):
    document = json.loads(path.read_text())
    ordered, eager = both_ways(document["name"], rows_of(document))
    assert isinstance(ordered.releases, OrderedReleases) and not isinstance(eager.releases, OrderedReleases)
    assert shape(ordered) == shape(eager)


def test_spellings_of_one_version_merge_and_versions_that_do_not_parse_are_left_out():
    names = ["demo-1.0.tar.gz", "demo-1.0.0-py3-none-any.whl", "demo-2.0rc1.tar.gz", "demo-2.0.post1.tar.gz",
             "demo-2.0.tar.gz", "demo-2.0.dev3.tar.gz", "demo-10.0.tar.gz", "demo-not.a.version.tar.gz",
             "demo-1!0.5.tar.gz", "demo-2.0+cu130-py3-none-any.whl"]
    rows = [Row(name, f"https://files.example/{name}", None, None, False, 1, None, False, None) for name in names]
    ordered, eager = both_ways("demo", rows)
    assert shape(ordered) == shape(eager)
    assert [str(r.version) for r in ordered.releases] == ["1!0.5", "10.0", "2.0.post1", "2.0+cu130", "2.0", "2.0rc1", "2.0.dev3", "1.0"]
    assert shape(ordered)[-1] == (Version("1.0"), ["demo-1.0.0-py3-none-any.whl", "demo-1.0.tar.gz"])


def test_releases_are_made_when_looked_at_and_once_for_every_thread():
    releases = OrderedReleases(canonicalize_name("demo"), [f"{n}.0" for n in range(100, 0, -1)], lambda version: ())
    assert len(releases) == 100 and releases._made == []
    assert str(releases[0].version) == "100.0" and len(releases._made) == 1  # only what was looked at
    assert str(releases[-1].version) == "1.0" and [str(r.version) for r in releases[1:3]] == ["99.0", "98.0"]
    with pytest.raises(IndexError):
        releases[100]



def test_threads_walking_one_project_see_one_object_per_release():
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two steps: a race would show
    try:
        for _ in range(20):
            releases = OrderedReleases(canonicalize_name("demo"), [f"{n}.0" for n in range(300, 0, -1)], lambda version: ())
            seen: list[list[int]] = []

            def walk() -> None:
                seen.append([id(release) for release in releases])

            threads = [threading.Thread(target=walk) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert all(ids == seen[0] for ids in seen) and len(set(seen[0])) == 300
            assert [str(r.version) for r in releases] == [f"{n}.0" for n in range(300, 0, -1)]
    finally:
        sys.setswitchinterval(switch)
