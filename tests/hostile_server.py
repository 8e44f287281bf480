"""A hostile index on 127.0.0.1: raw HTTP/1.1 answers that lie about their size, never end, drip, or carry
zip bombs. Streaming limits cannot be tested with an in-memory mock: only a socket shows whether the client
stopped reading. Each path maps to a function that writes the whole answer to the socket; every request
and the bytes each answer got onto the wire are recorded.
"""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Answer = Callable[["Connection"], None]
CHUNK = 64 * 1024


class Connection:
    """The client's socket, for an answer to write to; counts what was sent until the client hung up."""

    def __init__(self, sock: socket.socket, request_headers: dict[str, str]) -> None:
        self.sock, self.headers, self.sent = sock, request_headers, 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close", "", ""]
        self.send("\r\n".join(lines).encode())

    def whole(self, status: int, body: bytes, content_type: str = "application/octet-stream", **headers: str) -> None:
        self.head(status, {"Content-Type": content_type, "Content-Length": str(len(body)), **headers})
        self.send(body)

    def stream(self, status: int, chunks: Iterator[bytes], **headers: str) -> None:
        """A body with no declared length: it ends when the server closes the connection (if ever)."""
        self.head(status, headers)
        for chunk in chunks:
            self.send(chunk)


@dataclass
class HostileServer:
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[float, str]] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = b""
                while b"\r\n\r\n" not in data:
                    received = self.request.recv(65536)
                    if not received:
                        return
                    data += received
                head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1].split("?")[0]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
                server.requests.append((time.monotonic(), path))
                answer = server.answers.get(path, lambda c: c.whole(404, b"not found"))
                connection = Connection(self.request, headers)
                try:
                    answer(connection)
                except OSError:  # the client hung up: exactly what a limit should make it do
                    pass
                finally:
                    server.sent[path] = server.sent.get(path, 0) + connection.sent

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def page(self, name: str, files: list[dict]) -> None:
        """A PEP 691 project page for `name` with these file entries (url relative to the server)."""
        document = {"meta": {"api-version": "1.1"}, "name": name, "files": files}
        self.answers[f"/simple/{name}/"] = lambda c: c.whole(200, json.dumps(document).encode(), SIMPLE_JSON)

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


def file_entry(filename: str, content: bytes | None = None, size: int | None = None, sha256: str | None = None) -> dict:
    return {
        "filename": filename,
        "url": f"/packages/{filename}",
        "hashes": {"sha256": sha256 or hashlib.sha256(content or b"").hexdigest()},
        "requires-python": None,
        "yanked": False,
        "size": size if size is not None else len(content or b""),
        "upload-time": "2026-01-01T00:00:00Z",
    }


def endless(piece: bytes = b" " * CHUNK, delay: float = 0.0) -> Iterator[bytes]:
    while True:
        yield piece
        if delay:
            time.sleep(delay)


def serve_ranges(content: bytes, total: int | None = None) -> Answer:
    """Range requests answered from `content`, which sits at the end of a file of `total` bytes."""
    size = total if total is not None else len(content)
    offset = size - len(content)

    def answer(connection: Connection) -> None:
        spec = connection.headers.get("range", "")
        first, _, last = spec.removeprefix("bytes=").partition("-")
        if first == "":
            start, end = size - int(last), size - 1
        else:
            start, end = int(first), min(int(last), size - 1)
        body = content[max(0, start - offset) : end + 1 - offset]
        connection.whole(206, body, **{"Content-Range": f"bytes {start}-{end}/{size}"})

    return answer


# -- zip archives written by hand, so every size they declare can be a lie -------------------------------


def deflated(chunks: Iterator[bytes]) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b"".join(compressor.compress(chunk) for chunk in chunks) + compressor.flush()


def zip_with_member(name: str, data: bytes, method: int, declared_size: int, crc: int = 0) -> bytes:
    """A zip of one member whose central directory declares `declared_size` bytes uncompressed."""
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), declared_size, len(encoded), 0)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), declared_size, len(encoded), 0, 0, 0, 0, 0, 0
    )
    directory = central + encoded
    body = local + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def end_record(directory_offset: int, directory_size: int) -> bytes:
    """Only an end-of-central-directory record, pointing wherever it is told to."""
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, directory_size, directory_offset, 0)
