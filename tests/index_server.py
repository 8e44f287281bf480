"""A synthetic index served over real HTTP on 127.0.0.1, for the real pip and the real uv.

`IndexServer` wraps `SyntheticIndex.respond` (PEP 503 pages, the PyPI JSON API, wheels with Range support)
in a threaded `http.server`; every request lands in `index.requests`. `installable_kv_index` is the
KV-connector index of `synthetic.py` with wheels this interpreter can install, and a `nixl` meta package
that imports the member of the machine's CUDA major, as the real one loads its CUDA extension.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import platform
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from resolver.model.distributions import DistFile, Project, Release

from .synthetic import BOTH_ARCHES, SyntheticIndex, kv_connectors_index

PYTHON_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"
PLATFORM = f"manylinux_2_28_{platform.machine()}"
WHEEL_TAG = f"{PYTHON_TAG}-{PYTHON_TAG}-{PLATFORM}"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

# The canary: `import nixl` loads the extension of the machine's CUDA major (here: the override the tests
# set), and fails as the real one does when that member is missing.
NIXL_MODULE = """\
import importlib
import os

_major = os.environ.get("CUDA_CONSTRAINTS_CUDA_MAJOR", "13")
extension = importlib.import_module(f"nixl_cu{{_major}}_ext")
VERSION = {version!r}
"""


class ServedIndex(SyntheticIndex):
    """A synthetic index whose project pages carry the real sha256 of every file, as a served one does."""

    def project(self, name: str) -> Project:
        project = super().project(name)
        releases = tuple(Release(r.name, r.version, tuple(_with_real_hash(self, f) for f in r.files)) for r in project.releases)
        return Project(project.name, releases)


def _with_real_hash(index: SyntheticIndex, file: DistFile) -> DistFile:
    content = index.file_bytes(file.filename) or b""
    return DistFile(
        filename=file.filename,
        url=file.url,
        sha256=hashlib.sha256(content).hexdigest(),
        requires_python=file.requires_python,
        yanked=file.yanked,
        size=len(content),
        uploaded=file.uploaded,
    )


def installable_kv_index() -> ServedIndex:
    """`kv_connectors_index()` with wheels for this interpreter and an importable `nixl` meta package."""
    source = kv_connectors_index()
    index = ServedIndex()
    for name, releases in source.releases.items():
        index.releases[name] = releases
        for release in releases:
            if release.tags == BOTH_ARCHES:
                release.tags = (WHEEL_TAG,)
            if release.name == "nixl":
                release.module = "nixl"
                release.module_source = NIXL_MODULE.format(version=release.version)
    return index


class PyTorchIndex:
    """download.pytorch.org/whl as the tests imitate it: one HTML-only PEP 503 index per CUDA backend
    (`/whl/cu129/torch/`), files beside the pages with PEP 658 `.metadata` files, local versions
    (`2.14.0+cu129`). No JSON, whatever the Accept header asks."""

    def __init__(self, backends: Iterable[str]) -> None:
        self.backends = {backend: ServedIndex(pages=f"/whl/{backend}/", files=f"/whl/{backend}/", html_only=True) for backend in backends}
        self.requests: list[tuple[str, str, str | None]] = []

    def add(self, backend: str, name: str, version: str, requires: Iterable[str] = (), **options: object) -> None:
        self.backends[backend].add(name, version, requires, core_metadata=True, **options)

    def respond(self, method: str, path: str, range_header: str | None = None, accept: str = "") -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, path, range_header))
        for backend, index in self.backends.items():
            if path.startswith(f"/whl/{backend}/"):
                return index.respond(method, path, range_header, accept)
        return 404, {}, b"not found"

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up on a kept-alive connection (an installer or resolver exiting) is no error;
        anything else is reported as `socketserver` reports it."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class IndexServer:
    """`with IndexServer(index) as server:` serves `index` at `server.url`; `server.simple_url` for installers."""

    def __init__(self, index: SyntheticIndex | PyTorchIndex, credentials: tuple[str, str] | None = None) -> None:
        self.index = index
        # Basic auth the server demands (401 without it), and the Authorization header of every request.
        self.credentials = credentials
        self.authorizations: list[tuple[str, str | None]] = []
        # Path prefix -> base URL: such requests are redirected there (302), path kept.
        self.redirects: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="index-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple"

    def _respond(
        self, method: str, path: str, range_header: str | None, authorization: str | None, accept: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if authorization != expected:
                return 401, {"WWW-Authenticate": 'Basic realm="index"'}, b"authentication required"
        for prefix, base in self.redirects.items():
            if path.startswith(prefix):
                return 302, {"Location": base + path}, b""
        return self.index.respond(method, path, range_header, accept)

    def wheel_requests(self) -> list[str]:
        """The file names of every `/packages/` request, in order."""
        return [path.rsplit("/", 1)[-1] for _, path, _ in list(self.index.requests) if path.startswith("/packages/")]

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without TCP_NODELAY, the second waits for the client's
            # delayed ACK (40 ms a request on Linux).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                path = urlsplit(self.path).path
                authorization = self.headers.get("Authorization")
                with server._lock:
                    server.authorizations.append((path, authorization))
                    status, headers, content = server._respond(
                        self.command, path, self.headers.get("Range"), authorization, self.headers.get("Accept", "")
                    )
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    # The client may stop reading (a limit, an interrupt): fine.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


# -- a vLLM-shaped pair of indexes ---------------------------------------------------------------------------


def pypi_like() -> ServedIndex:
    """The KV set, and PyPI's torch 2.14.0: a CUDA 13 build (it needs cuBLAS 13), as on the real PyPI."""
    index = installable_kv_index()
    index.add("torch", "2.14.0", ["numpy", "nvidia-cublas==13.4.1.3"], tags=(WHEEL_TAG,))
    index.add("nvidia-cublas-cu12", "12.9.1.4", tags=(WHEEL_TAG,))
    return index


def pytorch_like() -> PyTorchIndex:
    """torch 2.14.0 per CUDA backend; the cu129 index also serves numpy and cuBLAS, as the real one does."""
    index = PyTorchIndex(["cu129", "cu130"])
    index.add("cu129", "torch", "2.14.0+cu129", ["numpy", "nvidia-cublas-cu12==12.9.1.4"], tags=(WHEEL_TAG,))
    index.add("cu130", "torch", "2.14.0+cu130", ["numpy", "nvidia-cublas==13.4.1.3"], tags=(WHEEL_TAG,))
    index.add("cu129", "numpy", "1.0.0", tags=(WHEEL_TAG,))
    index.add("cu129", "nvidia-cublas-cu12", "12.9.1.4", tags=(WHEEL_TAG,))
    return index
