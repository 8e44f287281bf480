"""Parsing the PyPI JSON API's project page, kept apart from fetching it.

`/pypi/<name>/json` lists every release and file. Only the per-file facts are used (URL resolved
against the page URL, sha256, yanked, requires_python, upload time, PEP 658 metadata); `info.requires_dist`
describes one file of one release and is never used for another.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import partial
from typing import Any
from urllib.parse import urljoin

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors.display import has_secret
from ..model.distributions import DistFile, Project, Release

_CONTROL = re.compile("[\x00-\x20\x7f-\x9f]")

# A compact, JSON-serialisable form of a project page: what the cache stores. Each release's files are
# kept as one JSON text and parsed only when the resolver looks at that release: a project such as
# pydantic-core lists 18,000 files, of which a resolution reads a handful.
Slim = dict[str, Any]


class PageError(ValueError):
    """The document is not a usable project page; the client names the URL."""


def parse_page(body: bytes) -> Slim:
    """Parse a project page straight into its slim form.

    Each file entry is slimmed as the parser meets it, so the page's 18,000 full file objects never
    exist at once: a 12 MB page costs a few MB of memory instead of a hundred. Raises ValueError for
    text that is not JSON, PageError for JSON that is not a project page.
    """
    document = json.loads(body, object_hook=_slim_object)
    if not isinstance(document, dict) or not isinstance(document.get("releases"), dict):
        raise PageError("not a PyPI JSON project page (no 'releases' object)")
    info = document.get("info")
    info = info if isinstance(info, dict) else {}
    releases: dict[str, str] = {}
    secret = False
    for version, files in document["releases"].items():
        if not isinstance(files, list) or not all(isinstance(f, (_Row, _Unusable)) for f in files):
            raise PageError(f"release {version!r} is not a list of files with a filename and url")
        rows = [f for f in files if isinstance(f, _Row)]
        secret = secret or any("?" in row[1] and has_secret(row[1]) for row in rows)
        if rows:
            releases[str(version)] = json.dumps(rows, separators=(",", ":"))
    # `secret`: some file URL carries a token; the client keeps such a page out of the disk cache.
    return {"name": str(info.get("name") or ""), "releases": releases, "secret": secret}


class _Row(list[Any]):
    """A slimmed file entry (a list subclass, so the page check can tell it from any JSON array)."""


class _Unusable:
    """A file entry whose name or URL holds control characters: no real file has them; it is left out."""


def _slim_object(entry: dict[str, Any]) -> Any:
    if "filename" not in entry:
        return entry
    if not isinstance(entry.get("filename"), str) or not entry.get("url"):
        raise PageError("a file entry has no filename or url")
    if _CONTROL.search(entry["filename"]) or _CONTROL.search(str(entry["url"])):
        return _Unusable()
    digests = entry.get("digests")
    core = entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
    size = entry.get("size")
    return _Row(
        (
            entry["filename"],
            str(entry["url"]),
            digests.get("sha256") if isinstance(digests, dict) else None,
            entry.get("requires_python") or None,
            bool(entry.get("yanked", False)),
            size if isinstance(size, int) else None,
            entry.get("upload_time_iso_8601") or entry.get("upload_time"),
            bool(core),
            core.get("sha256") if isinstance(core, dict) else None,
        )
    )


def project_from_slim(slim: Slim, name: str, page_url: str) -> Project:
    """The project, newest release first; unparseable versions are skipped as pip skips them."""
    name = canonicalize_name(name)
    releases = []
    for version_text, files in slim["releases"].items():
        try:
            version = Version(version_text)
        except InvalidVersion:
            continue
        releases.append(Release(name, version, partial(_files, files, page_url)))
    releases.sort(key=lambda r: r.version, reverse=True)
    return Project(name, tuple(releases), page_url)


def _files(text: str, page_url: str) -> tuple[DistFile, ...]:
    return tuple(_file(row, page_url) for row in json.loads(text))


def _file(row: list[Any], page_url: str) -> DistFile:
    filename, url, sha256, requires_python, yanked, size, uploaded, core, core_sha = row
    return DistFile(
        filename=filename,
        url=url if url.startswith(("https://", "http://")) else urljoin(page_url, url),
        sha256=sha256,
        requires_python=requires_python,
        yanked=yanked,
        size=size,
        upload_time=_parse_time(uploaded),
        core_metadata=core,
        core_metadata_sha256=core_sha,
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def version_page_requires_dist(document: object, version: Version) -> tuple[tuple[str, ...], str | None] | None:
    """`requires_dist` and `requires_python` of a per-version page, if it really describes `version`."""
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        return None
    info = document["info"]
    try:
        if Version(str(info.get("version"))) != version:
            return None
    except InvalidVersion:
        return None
    requires = info.get("requires_dist")
    # null means "no dependencies" or "not known"; only a list can be trusted.
    if not (isinstance(requires, list) and all(isinstance(r, str) for r in requires)):
        return None
    return tuple(requires), info.get("requires_python") or None
