"""The client's connections (httpx's own transport), against real servers on 127.0.0.1: TLS verified
against the CA the environment names, answers of megabytes read whole, a silent server timed out, an idle
connection the server closed replaced without a retry, and the proxy the environment names used (and
NO_PROXY honoured)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import trustme

from resolver.errors import IndexUnavailable
from resolver.index.http import Http, Limits, Response

from .hostile_server import HostileServer

BIG = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # 8 MiB, sent as they are (no Content-Encoding)


def get(url: str, timeout: float = 10.0, deadline: float = 20.0, retries: int = 0, twice_after: float | None = None) -> tuple[list[Response], Http]:
    """GET a URL (again after `twice_after` seconds), in a fresh client, as the index client does."""
    http = Http(timeout=timeout, retries=retries, backoff=0.01, limits=Limits(deadline=deadline))

    async def fetch() -> list[Response]:
        try:
            answers = [await http.get(url, "project")]
            if twice_after is not None:
                await asyncio.sleep(twice_after)
                answers.append(await http.get(url, "project"))
            return answers
        finally:
            await http.close()

    return asyncio.run(fetch()), http


@contextmanager
def raw_server(handle: Callable[[socket.socket], None], wrap: ssl.SSLContext | None = None) -> Iterator[str]:
    """A server whose every connection is handled by `handle` (in its own thread); yields host:port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_handled, args=(handle, connection, wrap), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _handled(handle: Callable[[socket.socket], None], connection: socket.socket, wrap: ssl.SSLContext | None) -> None:
    try:
        with connection:
            handle(wrap.wrap_socket(connection, server_side=True) if wrap is not None else connection)
    except OSError:
        pass  # the client hung up, or refused the certificate


def read_request(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        received = connection.recv(65536)
        if not received:
            raise ConnectionError("closed")
        data += received
    return data


def answer_big(connection: socket.socket) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(BIG) + BIG)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_an_answer_of_megabytes_over_tls_is_read_whole_from_a_server_the_environment_trusts(ca, tls, tmp_path, monkeypatch):
    """8 MiB arrive faster than they are read: the connection pauses reading, and resumes."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with raw_server(answer_big, wrap=tls) as address:
        (response,), _ = get(f"https://{address}/simple/big/")
    assert response.status == 200 and response.body == BIG


def test_a_server_with_a_certificate_nobody_trusts_cannot_be_connected_to(tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with raw_server(answer_big, wrap=tls) as address, pytest.raises(IndexUnavailable) as failure:
        get(f"https://{address}/simple/big/")
    message = failure.value.message()
    assert f"https://{address}/simple/big/" in message and "cannot connect" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_an_answer_of_megabytes_over_plain_http_is_read_whole():
    with raw_server(answer_big) as address:
        (response,), _ = get(f"http://{address}/simple/big/")
    assert response.body == BIG


def test_a_server_that_goes_silent_is_timed_out_by_the_read_timeout():
    def silent(connection: socket.socket) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.")
        time.sleep(5)

    started = time.monotonic()
    with raw_server(silent) as address, pytest.raises(IndexUnavailable) as failure:
        get(f"http://{address}/simple/slow/", timeout=0.5, deadline=20)
    assert "timed out" in failure.value.message()
    assert time.monotonic() - started < 4


def test_an_idle_connection_the_server_closed_is_replaced_without_a_retry():
    """A server that ends kept-alive connections after a while (as nginx and CDNs do): the next request
    opens a new connection instead of failing on the closed one and being retried."""
    connections = []

    def keep_alive_briefly(connection: socket.socket) -> None:
        connections.append(connection)
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.1)  # then the server closes it, idle

    with raw_server(keep_alive_briefly) as address:
        answers, http = get(f"http://{address}/simple/a/", retries=2, twice_after=0.5)
    assert [answer.body for answer in answers] == [b"ok", b"ok"]
    assert http.stats.retries == 0 and len(connections) == 2


def test_a_proxy_from_the_environment_is_used(monkeypatch):
    """Behind a proxy, httpx's own transport reads the environment: the index's host need not resolve."""
    with HostileServer() as proxy:
        proxy.answers["http://index.invalid/simple/a/"] = lambda c: c.whole(200, b"through the proxy")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        (response,), _ = get("http://index.invalid/simple/a/")
    assert response.body == b"through the proxy"
    assert [path for _, path in proxy.requests] == ["http://index.invalid/simple/a/"]


def test_a_host_no_proxy_names_is_asked_directly(monkeypatch):
    with HostileServer() as proxy, HostileServer() as index:
        index.answers["/simple/a/"] = lambda c: c.whole(200, b"directly")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        (response,), _ = get(f"{index.url}/simple/a/")
    assert response.body == b"directly" and proxy.requests == [] and [path for _, path in index.requests] == ["/simple/a/"]
