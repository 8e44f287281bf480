"""A small synthetic index, modelled on the real shapes of the index, seen three ways:

- as a `MetadataSource` (for resolver tests: no HTTP at all);
- as HTTP answers (PyPI JSON API, PEP 503 pages, wheels with Range support) for respx or a real server;
- as real wheel files (zip archives with METADATA, and optionally an importable module).

File URLs in the JSON pages are relative (`../../packages/...`), as some mirrors serve them.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import respx
from packaging.utils import canonicalize_name
from packaging.version import Version

from resolver.errors import ProjectNotFound
from resolver.index.metadata import parse_core_metadata
from resolver.model.distributions import CoreMetadata, DistFile, Project, Release, close_names

LINUX_TAGS = ("py3-none-any",)
BOTH_ARCHES = ("cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-manylinux_2_28_aarch64")
UPLOADED = "2026-01-01T00:00:00Z"


@dataclass
class SyntheticRelease:
    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tags: tuple[str, ...] = LINUX_TAGS
    sdist: bool = False
    requires_python: str | None = None
    yanked: bool = False
    uploaded: str = UPLOADED
    module: str | None = None  # an importable package the wheel carries
    module_source: str = ""
    padding: int = 0  # extra files so the central directory outgrows a range tail
    core_metadata: bool = False
    # The sdist's PKG-INFO: its Metadata-Version and Dynamic fields (2.2 and none: static dependencies).
    sdist_metadata_version: str = "2.2"
    sdist_dynamic: tuple[str, ...] = ()
    # Bytes of incompressible padding in the sdist (to make it larger than the client downloads whole).
    sdist_padding: int = 0
    # What the METADATA inside the wheel claims, when it lies (fault injection).
    claimed_name: str | None = None
    claimed_version: str | None = None
    # Further members of the wheel: (path, bytes), such as extension modules (`x/ext_torch212.so`).
    members: tuple[tuple[str, bytes], ...] = ()
    # Extras declared for requirements given with their `extra == ...` markers in `requires`.
    provides: tuple[str, ...] = ()

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, _ in self.members if name.endswith(".so") or ".so." in name))

    @property
    def dist(self) -> str:
        return canonicalize_name(self.name).replace("-", "_")

    def wheel_filename(self, tag: str) -> str:
        return f"{self.dist}-{self.version}-{tag}.whl"

    @property
    def sdist_filename(self) -> str:
        return f"{self.dist}-{self.version}.tar.gz"

    def metadata_text(self) -> str:
        lines = [
            "Metadata-Version: 2.1",
            f"Name: {self.claimed_name or self.name}",
            f"Version: {self.claimed_version or self.version}",
        ]
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        lines += [f"Provides-Extra: {extra}" for extra in self.provides]
        lines += [f"Requires-Dist: {r}" for r in self.requires]
        for extra, requirements in self.extras.items():
            lines.append(f"Provides-Extra: {extra}")
            for requirement in requirements:
                text, _, marker = requirement.partition(";")
                condition = f'({marker.strip()}) and extra == "{extra}"' if marker else f'extra == "{extra}"'
                lines.append(f"Requires-Dist: {text.strip()}; {condition}")
        return "\n".join(lines) + "\n\nA synthetic release.\n"

    def wheel_bytes(self, tag: str) -> bytes:
        """A real wheel; the same bytes every time (fixed timestamps), so hashes are stable."""
        buffer = io.BytesIO()
        info = f"{self.dist}-{self.version}.dist-info"
        members: list[tuple[str, str | bytes]] = list(self.members)
        if self.module:
            members.append((f"{self.module}/__init__.py", self.module_source or f"VERSION = {self.version!r}\n"))
        members += [(f"{self.dist}/data/padding_file_with_a_long_name_{n:06d}.txt", f"{n}\n") for n in range(self.padding)]
        members.append((f"{info}/METADATA", self.metadata_text()))
        members.append((f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: synthetic\nRoot-Is-Purelib: true\nTag: {tag}\n"))
        record = "".join(f"{name},sha256={_record_hash(text)},{len(_bytes(text))}\n" for name, text in members)
        members.append((f"{info}/RECORD", record + f"{info}/RECORD,,\n"))
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in members:
                entry = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
                archive.writestr(entry, text)
        return buffer.getvalue()

    def sdist_bytes(self) -> bytes:
        import tarfile

        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w") as archive:
                text = self.metadata_text().replace("Metadata-Version: 2.1", f"Metadata-Version: {self.sdist_metadata_version}")
                dynamic = "".join(f"Dynamic: {field}\n" for field in self.sdist_dynamic)
                pkg_info = text.replace("\n\n", f"\n{dynamic}\n", 1).encode()
                member = tarfile.TarInfo(f"{self.dist}-{self.version}/PKG-INFO")
                member.size = len(pkg_info)
                archive.addfile(member, io.BytesIO(pkg_info))
                if self.sdist_padding:
                    padding = hashlib.shake_256(self.name.encode()).digest(self.sdist_padding)
                    member = tarfile.TarInfo(f"{self.dist}-{self.version}/padding.bin")
                    member.size = len(padding)
                    archive.addfile(member, io.BytesIO(padding))
        return buffer.getvalue()


class SyntheticIndex:
    """Projects and releases; answers as a MetadataSource and as an HTTP index."""

    def __init__(self, pages: str = "/simple/", files: str = "/packages/", html_only: bool = False) -> None:
        # Where project pages and files are served; an HTML-only index answers PEP 503 whatever is asked
        # (as the PyTorch index does, whose pages and files share one directory: /whl/cu129/torch/ and
        # /whl/cu129/torch-2.14.0%2Bcu129-….whl).
        self.pages, self.files, self.html_only = pages, files, html_only
        # A path answering an HTML page of links to every file (a GitHub release's asset list), for --find-links.
        self.links_page: str | None = None
        self.releases: dict[str, list[SyntheticRelease]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._files: dict[str, tuple[SyntheticRelease, str | None]] = {}
        # path -> answers to give before the normal one: httpx.Response, an exception to raise, or a
        # callable(request) -> httpx.Response; a callable stays, the others are used once each.
        self.overrides: dict[str, list] = {}

    def override(self, path: str, *answers) -> None:
        self.overrides.setdefault(path, []).extend(answers)

    # -- building --------------------------------------------------------------------------------------------

    def add(self, name: str, version: str, requires: Iterable[str] = (), **options) -> SyntheticRelease:
        release = SyntheticRelease(name, version, tuple(requires), **options)
        self.releases.setdefault(canonicalize_name(name), []).append(release)
        self._files.clear()
        return release

    def files_of(self, release: SyntheticRelease) -> list[tuple[str, str | None]]:
        """(filename, tag) of every file of a release; tag None for the sdist."""
        files = [(release.wheel_filename(tag), tag) for tag in release.tags]
        if release.sdist:
            files.append((release.sdist_filename, None))
        return files

    def file_bytes(self, filename: str) -> bytes | None:
        if not self._files:
            for releases in self.releases.values():
                for release in releases:
                    for name, tag in self.files_of(release):
                        self._files[name] = (release, tag)
        found = self._files.get(filename)
        if found is None:
            return None
        release, tag = found
        return release.wheel_bytes(tag) if tag is not None else release.sdist_bytes()

    # -- MetadataSource --------------------------------------------------------------------------------------

    def project(self, name: str) -> Project:
        name = canonicalize_name(name)
        if name not in self.releases:
            raise ProjectNotFound(name, "https://index.test/simple")
        releases = []
        for release in self.releases[name]:
            files = tuple(
                DistFile(
                    filename=filename,
                    url=f"https://index.test/packages/{filename}",
                    sha256=hashlib.sha256(filename.encode()).hexdigest(),
                    requires_python=release.requires_python,
                    yanked=release.yanked,
                    size=1000,
                    uploaded=release.uploaded,
                )
                for filename, _ in self.files_of(release)
            )
            releases.append(Release(name, Version(release.version), files))
        releases.sort(key=lambda r: r.version, reverse=True)
        return Project(name, tuple(releases))

    def metadata(self, release: Release, file: DistFile) -> CoreMetadata:
        for synthetic in self.releases[release.name]:
            if Version(synthetic.version) == release.version:
                return parse_core_metadata(synthetic.metadata_text().encode(), "synthetic")
        raise AssertionError(f"no synthetic release {release.name} {release.version}")

    def prefetch_metadata(self, release: Release, file: DistFile) -> None:
        pass

    def prefetch_extension_modules(self, file: DistFile) -> None:
        pass

    def extension_modules(self, file: DistFile) -> tuple[str, ...] | None:
        self.file_bytes(file.filename)  # fills the file table
        found = self._files.get(file.filename)
        return found[0].extensions if found is not None else None

    def start(self, work) -> None:  # background work (a prefetch): nothing to fetch ahead here
        pass

    def existing(self, names: Iterable[str]) -> set[str]:
        return {canonicalize_name(n) for n in names} & set(self.releases)

    def close_names(self, name: str) -> tuple[str, ...]:  # as an index's root listing would give them
        return close_names(name, self.releases)

    def cancel(self) -> None:
        pass

    def routed(self, routing: object) -> Any:
        return self

    # -- HTTP ------------------------------------------------------------------------------------------------

    def project_page(self, name: str) -> dict:
        """The PEP 691 JSON page (PEP 700 fields included), with relative file URLs."""
        releases = self.releases[canonicalize_name(name)]
        files = [self._file_entry(release, filename) for release in releases for filename, _ in self.files_of(release)]
        versions = sorted({release.version for release in releases}, key=Version)
        return {"meta": {"api-version": "1.1"}, "name": canonicalize_name(name), "files": files, "versions": versions}

    def _file_entry(self, release: SyntheticRelease, filename: str) -> dict:
        content = self.file_bytes(filename) or b""
        entry = {
            "filename": filename,
            "url": f"../../packages/{filename}",
            "hashes": {"sha256": hashlib.sha256(content).hexdigest()},
            "requires-python": release.requires_python,
            "yanked": "broken" if release.yanked else False,
            "size": len(content),
            "upload-time": release.uploaded,
        }
        if release.core_metadata and filename.endswith(".whl"):
            entry["core-metadata"] = {"sha256": hashlib.sha256(release.metadata_text().encode()).hexdigest()}
        return entry

    def root_listing(self, accept: str = "") -> tuple[int, dict[str, str], bytes]:
        """The index's root: every project, as PEP 691 JSON when asked for first, else as PEP 503 HTML."""
        if accept.lstrip().startswith("application/vnd.pypi.simple.v1+json") and not self.html_only:
            document = {"meta": {"api-version": "1.0"}, "projects": [{"name": name} for name in self.releases]}
            return 200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, json.dumps(document).encode()
        links = "".join(f'<a href="{self.pages}{quote(name)}/">{html.escape(name)}</a><br/>\n' for name in self.releases)
        return 200, {"Content-Type": "text/html"}, f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n".encode()

    def simple_page(self, name: str) -> str:
        """A PEP 503 page, with PEP 658 metadata links, for pip and uv."""
        releases = self.releases[canonicalize_name(name)]
        links = []
        for release in releases:
            for filename, _ in self.files_of(release):
                content = self.file_bytes(filename) or b""
                attributes = f'href="{self.files}{quote(filename)}#sha256={hashlib.sha256(content).hexdigest()}"'
                if release.requires_python:
                    attributes += f' data-requires-python="{html.escape(release.requires_python)}"'
                if release.yanked:
                    attributes += ' data-yanked="broken"'
                if release.core_metadata and filename.endswith(".whl"):
                    digest = hashlib.sha256(release.metadata_text().encode()).hexdigest()
                    attributes += f' data-core-metadata="sha256={digest}" data-dist-info-metadata="sha256={digest}"'
                links.append(f"<a {attributes}>{filename}</a><br/>")
        return "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"

    def respond(
        self, method: str, path: str, range_header: str | None = None, accept: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """The answer of the index to one request: (status, headers, body). Project pages are negotiated:
        PEP 691 JSON when asked for first (as this tool and uv ask), else PEP 503 HTML (as pip asks)."""
        self.requests.append((method, path, range_header))
        path = unquote(path)
        if path in (self.pages, self.pages.rstrip("/")):
            return self.root_listing(accept)
        if path == self.links_page:
            links = "".join(self.simple_page(name).split("<body>\n", 1)[1].split("</body>")[0] for name in self.releases)
            return 200, {"Content-Type": "text/html"}, f"<html><body>\n{links}</body></html>\n".encode()
        match = re.fullmatch(re.escape(self.pages) + r"([^/]+)/?", path)
        if match and self.file_bytes(match.group(1)) is None and not match.group(1).endswith(".metadata"):
            name = canonicalize_name(match.group(1))
            if name not in self.releases:
                return 404, {}, b"not found"
            if accept.lstrip().startswith("application/vnd.pypi.simple.v1+json") and not self.html_only:
                return 200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, json.dumps(self.project_page(name)).encode()
            return 200, {"Content-Type": "text/html"}, self.simple_page(name).encode()
        match = re.fullmatch(re.escape(self.files) + r"(.+)\.metadata", path)
        if match and self.file_bytes(match.group(1)) is not None:
            release, _ = self._files[match.group(1)]
            if release.core_metadata:
                return 200, {"Content-Type": "application/octet-stream"}, release.metadata_text().encode()
            return 404, {}, b"not found"
        match = re.fullmatch(re.escape(self.files) + r"(.+)", path)
        if match:
            content = self.file_bytes(match.group(1))
            if content is None:
                return 404, {}, b"not found"
            return serve_range(content, range_header)
        return 404, {}, b"not found"

    def handler(self, request: httpx.Request) -> httpx.Response:
        """An httpx handler (respx side effect or MockTransport), with the overrides applied first."""
        answers = self.overrides.get(request.url.path)
        if answers:
            answer = answers[0] if callable(answers[0]) and not isinstance(answers[0], httpx.Response) else answers.pop(0)
            self.requests.append((request.method, request.url.path, request.headers.get("range")))
            if isinstance(answer, BaseException):
                raise answer
            return answer(request) if callable(answer) and not isinstance(answer, httpx.Response) else answer
        status, headers, body = self.respond(request.method, request.url.path, request.headers.get("range"), request.headers.get("accept", ""))
        return httpx.Response(status, headers=headers, content=body)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


def serve_range(content: bytes, range_header: str | None) -> tuple[int, dict[str, str], bytes]:
    """Answer a (possibly ranged) GET of a file, as a CDN does."""
    if not range_header:
        return 200, {"Content-Length": str(len(content)), "Accept-Ranges": "bytes"}, content
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
    if not match:
        return 416, {}, b""
    first, last = match.groups()
    size = len(content)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start >= size:
        return 416, {"Content-Range": f"bytes */{size}"}, b""
    body = content[start : end + 1]
    return 206, {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(len(body))}, body


def _record_hash(text: str | bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(hashlib.sha256(_bytes(text)).digest()).rstrip(b"=").decode()


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def kv_connectors_index() -> SyntheticIndex:
    """The shapes of the real KV-connector set, small."""
    index = SyntheticIndex()
    both = {"tags": BOTH_ARCHES}
    # nixl: 1.1+ hard-requires both members; 0.7-1.0 required cu12 and offered extras.
    for version in ("0.9.0", "1.0.0"):
        index.add("nixl", version, [f"nixl-cu12=={version}"], extras={"cu12": (f"nixl-cu12=={version}",), "cu13": (f"nixl-cu13=={version}",)})
    for version in ("1.4.0", "1.5.1"):
        index.add(
            "nixl", version, [f"nixl-cu12=={version}", f"nixl-cu13=={version}"],
            extras={"cu12": (f"nixl-cu12=={version}",), "cu13": (f"nixl-cu13=={version}",)},
        )
    for version in ("0.9.0", "1.0.0", "1.4.0", "1.5.1"):
        index.add("nixl-cu12", version, ["torch", "numpy"], module="nixl_cu12_ext", **both)
        index.add("nixl-cu13", version, ["torch", "numpy"], module="nixl_cu13_ext", **both)
    # torch: <= 2.10 needs CUDA 12 libraries, >= 2.11 CUDA 13 ones (x86_64 only, by marker).
    on_x86 = '; platform_machine == "x86_64"'
    index.add("torch", "2.10.0", ["numpy", f"nvidia-cublas-cu12==12.8.4.1{on_x86}"], **both)
    index.add("torch", "2.11.0", ["numpy", f"cuda-toolkit[cublas]==13.*{on_x86}", f"nvidia-nccl-cu13==2.30.7{on_x86}"], **both)
    index.add("nvidia-cublas-cu12", "12.8.4.1", **both)
    index.add("nvidia-nccl-cu13", "2.30.7", **both)
    index.add("cuda-toolkit", "12.9.1", extras={"cublas": ("nvidia-cublas-cu12",)})
    index.add("cuda-toolkit", "13.2.2", extras={"cublas": ("nvidia-cublas==13.*",)})
    index.add("nvidia-cublas", "13.4.1.3", **both)
    index.add("numpy", "2.2.6", **both)
    # cupy: one project per major.
    for major in (12, 13):
        for version in ("14.1.0", "14.2.0"):
            index.add(f"cupy-cuda{major}x", version, ["numpy"], module=f"cupy_cuda{major}x", **both)
    # lmcache: <= 0.4.4 requires cupy-cuda12x; >= 0.4.5 cupy-cuda13x (and >= 0.5.5 cuda-python 13).
    index.add("lmcache", "0.4.4", ["torch", "cupy-cuda12x"], **both)
    index.add("lmcache", "0.4.5", ["torch", "cupy-cuda13x"], **both)
    index.add("lmcache", "0.5.6", ["torch", "cupy-cuda13x", "cuda-python<14,>=13"], **both)
    index.add("cuda-python", "12.9.4", **both)
    index.add("cuda-python", "13.4.4", **both)
    # mooncake: the unsuffixed name is the CUDA 12 build.
    for version in ("0.3.12", "0.3.13"):
        index.add("mooncake-transfer-engine", version, ["aiohttp"], module="mooncake_cu12", **both)
        index.add("mooncake-transfer-engine-cuda13", version, ["aiohttp"], module="mooncake_cu13", **both)
    index.add("aiohttp", "3.14.5", **both)
    return index


THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
THIS_PYTHON_CONFIG = f'python-versions = ["{THIS_PYTHON}"]\n'


def for_this_python(index: SyntheticIndex, python: str = THIS_PYTHON) -> SyntheticIndex:
    """The index with its cp312 wheels retagged for the interpreter running the tests (or `python`), whose
    files an `install` (even a dry run) accepts only when they were compiled for its Python."""
    tag = "cp" + python.replace(".", "")
    for releases in index.releases.values():
        for release in releases:
            release.tags = tuple(t.replace("cp312-cp312", f"{tag}-{tag}") for t in release.tags)
    index._files.clear()
    return index


KV_REQUIREMENTS = "lmcache >= 0.3.9\ncupy-cuda13x != 14.1.0\nnixl >= 1.1.0\nmooncake-transfer-engine >= 0.3.12\n"
PYPROJECT = """\
[tool.cuda-constraints]
requirements = ["requirements/kv.txt"]
index-url = "https://index.test/simple"
"""


@contextmanager
def served(index: SyntheticIndex) -> Iterator[SyntheticIndex]:
    """The index answering every request to https://index.test (through respx)."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host="index.test").mock(side_effect=index.handler)
        yield index


def write_project(root: Path, config: str = PYPROJECT, requirements: dict[str, str] | None = None) -> Path:
    """A project directory: pyproject.toml and its requirements files (default: the KV set)."""
    (root / "pyproject.toml").write_text(config)
    (root / "requirements").mkdir(exist_ok=True)
    for name, text in (requirements if requirements is not None else {"kv.txt": KV_REQUIREMENTS}).items():
        (root / "requirements" / name).write_text(text)
    return root
