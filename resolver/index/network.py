"""httpcore's network layer on asyncio's own transports, for the connections the client opens itself.

httpcore reaches the network through anyio, whose streams add Python layers to every read: a cancel scope
for the timeout, checkpoints, and TLS done in Python over a memory BIO. A cold run is short of CPU in
this process, and that made it 5 to 10 % slower: a page costs 5.5 ms of CPU a megabyte through anyio and
3.1 ms here, a range read over HTTP/2 1.7 ms and 1.35 ms (benchmarks/README.md). Here a connection is an
asyncio protocol that buffers what arrives, and TLS is asyncio's; reads, writes and timeouts keep
httpcore's contract (its ReadTimeout, ConnectError, ... which httpx maps as it always does).

Used for the client's own connections only: behind a proxy from the environment, httpx's default layer
does it all, as before (`transport`).
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpcore

if TYPE_CHECKING:
    import httpx

# A connection reads no further ahead of httpcore than this (then the socket waits, as the kernel's does).
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18
HAPPY_EYEBALLS_DELAY = 0.25  # as anyio: an address family that is slow to connect is raced by the next


def transport(verify: ssl.SSLContext | bool, http2: bool, limits: httpx.Limits) -> httpx.AsyncHTTPTransport | None:
    """An httpx transport whose connections are asyncio's; None where httpx's own is to be used: behind
    a proxy from the environment (which httpx reads only for a client it makes the transport of), or with
    an httpx whose transport is not built as this one knows."""
    import urllib.request

    import httpx

    proxies = {scheme for scheme in urllib.request.getproxies() if scheme != "no"}  # NO_PROXY alone is no proxy
    if not isinstance(verify, ssl.SSLContext) or proxies:
        return None
    made = httpx.AsyncHTTPTransport(verify=verify, http2=http2, limits=limits)
    if not isinstance(getattr(made, "_pool", None), httpcore.AsyncConnectionPool):
        return None
    made._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        network_backend=Backend(),
    )
    return made


class Backend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            connecting = loop.create_connection(
                _Buffered, host, port, local_addr=None if local_address is None else (local_address, 0),
                happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
            )
            made, protocol = await asyncio.wait_for(connecting, timeout)
        except asyncio.TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} within {timeout}s") from None
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from None
        sock = made.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return Stream(made, protocol)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not used by this client")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Buffered(asyncio.Protocol):
    """A connection's incoming bytes, buffered until httpcore reads them; reading pauses past _HIGH_WATER."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False  # end of stream, or the connection is lost
        self.error: BaseException | None = None
        self.arrived: asyncio.Future[None] | None = None  # a reader waits for bytes
        self.drained: asyncio.Future[None] | None = None  # writing is paused until this is done
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        _settle(self.arrived)

    def eof_received(self) -> bool:
        self.ended = True
        _settle(self.arrived)
        return False  # the transport closes itself

    def connection_lost(self, error: Exception | None) -> None:
        self.ended, self.error = True, error
        _settle(self.arrived)
        _settle(self.drained)

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _settle(self.drained)
        self.drained = None

    def take(self, most: int) -> bytes:
        if len(self.buffer) <= most:
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:most])
            del self.buffer[:most]
        if self.paused and len(self.buffer) < _LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


class Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Buffered) -> None:
        self._transport, self._protocol = transport, protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.ended:
            loop = asyncio.get_running_loop()
            arrived = protocol.arrived = loop.create_future()
            expiry = loop.call_later(timeout, _expire, arrived) if timeout is not None else None
            try:
                await arrived
            except TimeoutError:
                raise httpcore.ReadTimeout(f"nothing read within {timeout}s") from None
            finally:
                protocol.arrived = None
                if expiry is not None:
                    expiry.cancel()
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the end of the stream: httpcore tells a complete answer from a cut one

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        drained = self._protocol.drained
        if drained is not None:
            try:
                await asyncio.wait_for(asyncio.shield(drained), timeout)
            except asyncio.TimeoutError:
                raise httpcore.WriteTimeout(f"nothing written within {timeout}s") from None

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            secured = await asyncio.wait_for(
                loop.start_tls(self._transport, self._protocol, ssl_context, server_hostname=server_hostname), timeout
            )
        except asyncio.TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout}s") from None
        except (OSError, ssl.SSLError) as error:  # ssl.SSLError is an OSError; named for the reader
            self._transport.close()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from None
        if secured is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(secured, asyncio.Transport)
        self._protocol.transport = secured
        return Stream(secured, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "is_readable":  # an idle connection with something to read has been closed (or is broken)
            return bool(self._protocol.buffer) or self._protocol.ended or _readable(self._transport.get_extra_info("socket"))
        return None


def _readable(sock: socket.socket | None) -> bool:
    """Whether the socket has something to read (or is gone), without waiting."""
    if sock is None or sock.fileno() < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
