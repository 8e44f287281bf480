"""Parsing index pages, kept apart from fetching them: the Simple API as JSON (PEP 691, with PEP 700's
upload times and sizes) and as HTML (PEP 503, with `data-requires-python`, `data-yanked` and PEP 658/714
`data-core-metadata`), and find-links pages (HTML links to the files of any project).

Every kind becomes one compact form, a `Page` (what the cache stores): the files of each version, kept as
one JSON text of `Row`s each and parsed only when the resolver looks at that version (pydantic-core lists
18,000 files, of which a resolution reads a handful). A find-links page is a `LinksPage` of them, by
project; an index that has no such project answers `MISSING`. A file's version comes from its name (`name-1.0-…
.whl`, `name-1.0.tar.gz`); names that are not a wheel's or an sdist's, files of another project, and
entries with control characters (no real file has them) are left out, as pip leaves them out.

What a page says is checked before it is kept, since some of it is written into files: a sha256 (of a file,
or of its PEP 658 metadata) must be 64 lowercase hex digits, or the page is unusable (it would be copied
into `--hash=sha256:…` lines); an upload time that is not an ISO 8601 time is dropped; a file whose
requires-python holds a control character is left out; a yank reason is kept on one line, shortened.
"""

from __future__ import annotations

import enum
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors.display import has_secret
from ..model.distributions import SDIST_SUFFIXES, SHA256_HEX, DistFile, OrderedReleases, Project, Release


class Row(NamedTuple):
    """One file as an index page lists it; a page keeps each release's rows as one JSON array of them."""

    filename: str
    url: str  # as the page gives it: relative to the page's URL, or absolute
    sha256: str | None
    requires_python: str | None
    yanked: bool | str  # False, True, or the reason given
    size: int | None
    uploaded: str | None  # PEP 700's upload time (ISO 8601)
    core_metadata: bool  # PEP 658: `<url>.metadata` is served
    core_metadata_sha256: str | None


# A release's rows as a page holds them: JSON text, or a view of a cached page file's bytes.
Rows = str | memoryview


@dataclass(frozen=True)
class Page:
    """A project's files on one index page: each version's rows, newest version first (versions that do
    not parse are left out), kept as text until the resolver looks at that version."""

    name: NormalizedName
    releases: Mapping[str, Rows] = field(default_factory=dict)
    # Some file URL carries a token or credentials: the page is kept out of the disk cache.
    secret: bool = False


@dataclass(frozen=True)
class LinksPage:
    """A find-links page (or directory): the files it links to, as one page per project."""

    projects: Mapping[NormalizedName, Page] = field(default_factory=dict)


class Missing(enum.Enum):
    """What an index answers for a project it does not have (404, 410): remembered as a page would be."""

    MISSING = "missing"


MISSING = Missing.MISSING
# What one fetch of a page yields.
PageContent = Page | LinksPage | Missing
_CONTROL = re.compile("[\x00-\x20\x7f-\x9f]")
# PEP 508's project name (the core metadata spec's), in ASCII letters and digits only.
_PROJECT_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")
_CONTROL_BUT_SPACE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
YANK_REASON_LENGTH = 200
# PEP 700's upload-time: `2026-01-02T03:04:05.123456Z` (a UTC offset is read too).
_UPLOAD_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
_rows_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder for a page's thousands of releases
ACCEPT = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


# The json module gives up (RecursionError) about here; a project page nests 3 levels.
JSON_DEPTH = 1000
# Projects an index's root may list for "did you mean": a longer listing (a mirror of PyPI) is not used.
ROOT_NAMES = 50_000


class PageError(ValueError):
    """The document is not a usable index page; the client names the URL."""


def parse_simple(body: bytes, content_type: str, name: NormalizedName) -> Page:
    """A project's Simple API page, JSON or HTML by its content type; PageError when it is not one."""
    start = body.lstrip()[:1]
    if "json" in content_type or (not content_type and start == b"{"):
        try:
            document = json.loads(body)
        except RecursionError:
            raise PageError(f"answered JSON nested more than {JSON_DEPTH} levels deep") from None
        except ValueError:
            raise PageError("answered invalid or truncated JSON") from None
        return _page(name, _json_rows(document, name))
    if "html" in content_type or start == b"<":
        return _page(name, (row for row in html_rows(body) if project_of(row.filename) == name))
    raise PageError(f"answered {content_type or 'an unknown content type'} where a Simple API page was expected")


def root_names(body: bytes, content_type: str) -> frozenset[NormalizedName]:
    """The projects an index's root lists, JSON (PEP 691: `projects[].name`) or HTML (PEP 503: a link per
    project, named by its last path segment, as a PEP 503 tree or a directory listing names it), canonical;
    names that are not valid project names are left out. PageError when it is no listing, or lists more
    than ROOT_NAMES."""
    start = body.lstrip()[:1]
    if "json" in content_type or (not content_type and start == b"{"):
        try:
            document = json.loads(body)
        except (RecursionError, ValueError):
            raise PageError("answered a root that is not valid JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("projects"), list):
            raise PageError("not a PEP 691 root (no 'projects' list)")
        listed: Iterable[object] = (entry.get("name") for entry in document["projects"] if isinstance(entry, dict))
    elif "html" in content_type or start == b"<":
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        parser.close()
        listed = (unquote(urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1]) for href in _hrefs(parser.links))
    else:
        raise PageError(f"answered {content_type or 'an unknown content type'} where a root listing was expected")
    names = set()
    for text in listed:
        if isinstance(text, str) and _PROJECT_NAME.fullmatch(text):
            names.add(canonicalize_name(text))
            if len(names) > ROOT_NAMES:
                raise PageError(f"lists more than {ROOT_NAMES:,} projects")
    return frozenset(names)


def _hrefs(links: list[dict[str, str | None]]) -> Iterator[str]:
    for attributes in links:
        href = attributes.get("href")
        if href:
            yield href


def find_links_page(body: bytes) -> LinksPage:
    """An HTML page of links to the files of any projects, by project."""
    rows: dict[NormalizedName, list[Row]] = defaultdict(list)
    for row in html_rows(body):
        project = project_of(row.filename)
        if project is not None:
            rows[project].append(row)
    return LinksPage({name: _page(name, found) for name, found in rows.items()})


def find_links_directory(entries: Iterable[tuple[str, str, int]]) -> LinksPage:
    """A directory of files (name, file URL, size), by project."""
    rows: dict[NormalizedName, list[Row]] = defaultdict(list)
    for filename, url, size in entries:
        project = project_of(filename)
        if project is not None and not _CONTROL.search(filename):
            rows[project].append(Row(filename, url, None, None, False, size, None, False, None))
    return LinksPage({name: _page(name, found) for name, found in rows.items()})


def _json_rows(document: Any, name: NormalizedName) -> Iterator[Row]:
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise PageError("not a PEP 691 project page (no 'files' list)")
    named = document.get("name")
    if isinstance(named, str) and canonicalize_name(named) != name:
        raise PageError(f"answered the page of {named!r}")
    for entry in document["files"]:
        row = _json_row(entry)
        if row is not None:
            yield row


def _json_row(entry: Any) -> Row | None:
    """A file entry as a row; None for one with control characters in its name or URL (left out)."""
    if not isinstance(entry, dict):
        raise PageError("a file entry has no filename or url")
    filename, url = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str) or not url:
        raise PageError("a file entry has no filename or url")
    requires_python = entry.get("requires-python") or None
    if _CONTROL.search(filename) or _CONTROL.search(url):
        return None
    if not isinstance(requires_python, str | None):
        raise PageError(f"{filename[:200]!r} has a requires-python that is not a string")
    if requires_python and _CONTROL_BUT_SPACE.search(requires_python):
        return None
    hashes = entry.get("hashes")
    core = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    size = entry.get("size")
    uploaded = entry.get("upload-time")
    return Row(
        filename,
        url,
        checked_sha256(hashes.get("sha256") if isinstance(hashes, dict) else None, filename),
        requires_python,
        _yanked(entry.get("yanked", False)),
        size if isinstance(size, int) else None,
        uploaded if isinstance(uploaded, str) and _UPLOAD_TIME.fullmatch(uploaded) else None,
        bool(core),
        checked_sha256(core.get("sha256") if isinstance(core, dict) else None, f"{filename}.metadata"),
    )


def _yanked(value: object) -> bool | str:
    """PEP 592's yanked: False, True, or the reason given (on one line, at most YANK_REASON_LENGTH characters)."""
    if not isinstance(value, str):
        return bool(value)
    reason = " ".join(_CONTROL_BUT_SPACE.sub(" ", value).split())
    reason = reason if len(reason) <= YANK_REASON_LENGTH else reason[: YANK_REASON_LENGTH - 3] + "..."
    return reason or True


def checked_sha256(value: object, filename: str) -> str | None:
    """The sha256 an index gives for a file; None when it gives none. Anything but 64 lowercase hex digits
    makes the page unusable, as uv refuses a digest of the wrong length: the value is written into
    `--hash=sha256:…` lines, where anything else could add a line or an option."""
    if value is None:
        return None
    if isinstance(value, str) and SHA256_HEX.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise PageError(f"the sha256 it gives for {filename!r} is not 64 lowercase hex digits: {shown}")


def html_rows(body: bytes) -> Iterator[Row]:
    """The file links of a PEP 503 page (or any page of links), each as a row."""
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    for attributes in parser.links:
        row = _html_row(attributes, parser.base)
        if row is not None:
            yield row


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str | None]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def _html_row(attributes: dict[str, str | None], base: str | None) -> Row | None:
    href = attributes.get("href")
    if not href or _CONTROL.search(href):
        return None
    location, _, fragment = href.partition("#")
    filename = unquote(urlsplit(location).path.rsplit("/", 1)[-1])
    if not filename or _CONTROL.search(filename):
        return None
    requires_python = attributes.get("data-requires-python") or None
    if requires_python and _CONTROL_BUT_SPACE.search(requires_python):
        return None
    algorithm, _, digest = fragment.partition("=")
    core_key = next((key for key in ("data-core-metadata", "data-dist-info-metadata") if key in attributes), None)
    core = (attributes.get(core_key) or "true") if core_key else "false"  # present without a value: true
    core_algorithm, _, core_digest = core.partition("=")
    return Row(
        filename,
        urljoin(base, location) if base else location,
        checked_sha256(digest or None, filename) if algorithm == "sha256" else None,
        requires_python,
        _yanked(attributes["data-yanked"] or True) if "data-yanked" in attributes else False,
        None,
        None,
        core.lower() != "false",
        checked_sha256(core_digest or None, f"{filename}.metadata") if core_algorithm == "sha256" else None,
    )


def project_of(filename: str) -> NormalizedName | None:
    """The project a wheel's or an sdist's file name is for; None for anything else."""
    name_version = _name_and_version(filename)
    return canonicalize_name(name_version[0]) if name_version else None


def _name_and_version(filename: str) -> tuple[str, str] | None:
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return (parts[0], parts[1]) if len(parts) in (5, 6) else None
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            name, dash, version = filename[: -len(suffix)].rpartition("-")
            return (name, version) if dash and name else None
    return None


def _page(name: NormalizedName, rows: Iterable[Row]) -> Page:
    by_version: dict[str, list[Row]] = defaultdict(list)
    secret = False
    ours: dict[str, bool] = {}  # a page spells its project's name a few ways in 10,000 file names
    for row in rows:
        name_version = _name_and_version(row.filename)
        if name_version is None:
            continue
        spelled = name_version[0]
        if spelled not in ours:
            ours[spelled] = canonicalize_name(spelled) == name
        if not ours[spelled]:
            continue
        by_version[name_version[1]].append(row)
        secret = secret or (("?" in row.url or "@" in row.url) and has_secret(row.url))
    # Newest first, once, here: a project made from one page then parses only the versions looked at.
    # Versions that do not parse are left out, as pip leaves them out; two spellings of one version merge.
    parsed: dict[Version, list[Row]] = {}
    for text, files in by_version.items():
        try:
            parsed.setdefault(Version(text), []).extend(files)
        except InvalidVersion:
            continue
    releases = {str(version): _rows_json(parsed[version]) for version in sorted(parsed, reverse=True)}
    return Page(name, releases, secret)


class Listing(NamedTuple):
    """A page as a project is made from it: the URL its relative links are resolved against, and the
    source that served it, as shown."""

    page: Page
    base_url: str
    shown: str


def project_from_pages(name: NormalizedName, listings: Iterable[Listing]) -> Project:
    """One project from its pages. Newest release first; a version named in several pages has all their
    files (the first page's where two share a file name)."""
    listings = list(listings)
    if len(listings) == 1:
        page, base_url, shown = listings[0]
        listed = page.releases
        return Project(name, OrderedReleases(name, list(listed), lambda version: _files([(listed[version], base_url, shown)])))
    by_version: dict[Version, list[tuple[Rows, str, str]]] = defaultdict(list)
    for page, base_url, shown in listings:
        for version_text, rows in page.releases.items():
            by_version[Version(version_text)].append((rows, base_url, shown))
    releases = [Release(name, version, partial(_files, parts)) for version, parts in by_version.items()]
    releases.sort(key=lambda r: r.version, reverse=True)
    return Project(name, tuple(releases))


def _files(parts: list[tuple[Rows, str, str]]) -> tuple[DistFile, ...]:
    files: dict[str, DistFile] = {}
    for rows, base_url, shown in parts:
        for fields in json.loads(rows if isinstance(rows, str) else bytes(rows)):
            row = Row(*fields)
            files.setdefault(row.filename, _file(row, base_url, shown))
    return tuple(files.values())


def _file(row: Row, base_url: str, shown: str) -> DistFile:
    url = row.url
    return DistFile(
        filename=row.filename,
        url=url if url.startswith(("https://", "http://", "file://")) else urljoin(base_url, url),
        sha256=row.sha256,
        requires_python=row.requires_python,
        yanked=bool(row.yanked),
        yank_reason=row.yanked if isinstance(row.yanked, str) else None,
        size=row.size,
        uploaded=row.uploaded,
        core_metadata=row.core_metadata,
        core_metadata_sha256=row.core_metadata_sha256,
        index=shown,
    )


# -- pages as the cache and the page worker hold them -----------------------------------------------------------
#
# A page is packed into a small JSON header and a body: the header names, for each release, the [start, end)
# of its rows' JSON text in the body, so that loading a page parses its header only.
#   {"name", "releases": {version: [start, end]}, "secret", "ordered": true}   a project's page
#   {"projects": {name: <as above>}}                                           a find-links page
#   {"missing": true}                                                          no such project


def pack(content: PageContent) -> tuple[dict[str, Any], list[bytes | memoryview]]:
    """A page as a header and the pieces of its body (`unpack` reverses it)."""
    body = _Body()
    if content is MISSING:
        return {"missing": True}, []
    if isinstance(content, LinksPage):
        return {"projects": {name: _pack(page, body) for name, page in content.projects.items()}}, body.chunks
    return _pack(content, body), body.chunks


class _Body:
    """The body of a page file as it is written: each release's files, one after the other."""

    def __init__(self) -> None:
        self.chunks: list[bytes | memoryview] = []  # a view stays a view: written as it is, never copied
        self.size = 0

    def add(self, rows: str | bytes | memoryview) -> list[int]:
        data = rows.encode() if isinstance(rows, str) else rows
        self.chunks.append(data)
        self.size += len(data)
        return [self.size - len(data), self.size]


def _pack(page: Page, body: _Body) -> dict[str, Any]:
    releases = {version: body.add(rows) for version, rows in page.releases.items()}
    return {"name": page.name, "releases": releases, "secret": page.secret, "ordered": True}


def unpack(header: Mapping[str, Any], body: memoryview) -> PageContent:
    """A packed page back, each release's rows a view of the body (parsed when looked at); ValueError (or
    KeyError, TypeError) for a damaged one."""
    if header.get("missing") is True:
        return MISSING
    if "projects" in header:
        return LinksPage({NormalizedName(name): _unpack(packed, body) for name, packed in dict(header["projects"]).items()})
    return _unpack(header, body)


def _unpack(packed: Mapping[str, Any], body: memoryview) -> Page:
    releases: dict[str, Rows] = {}
    for version, (start, end) in dict(packed["releases"]).items():
        if not 0 <= start <= end <= len(body):
            raise ValueError("a release outside the page's body")
        releases[str(version)] = body[start:end]
    if packed.get("ordered") is not True:  # written by an older version: put newest first, as a page is now
        ordered = sorted(((Version(v), v) for v in releases), reverse=True)
        releases = {text: releases[text] for _, text in ordered}
    return Page(NormalizedName(str(packed["name"])), releases, bool(packed.get("secret")))
