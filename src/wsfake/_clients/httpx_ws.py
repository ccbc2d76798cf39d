"""httpx-ws: ``aconnect_ws`` / ``connect_ws`` (asyncio, trio, threads), with or without ``client=``.

httpx-ws sends its upgrade through an httpx client, whose transport hands every
request to an httpcore connection pool. The hook is the pool's request method
(``AsyncConnectionPool.handle_async_request``, ``ConnectionPool.handle_request``,
inherited by the proxy pools): it is where the request is known (its URL and
its ``Upgrade: websocket`` header), so the route is chosen with the URL's path.
A routed upgrade does not go through the pool: it gets an
``AsyncHTTPConnection`` / ``HTTPConnection`` of its own, configured as the pool
would configure it, whose network backend opens the in-memory pipe (a
configured proxy is not used: there is no network to cross). httpcore's
own connection code (connect retries, HTTP/1.1 handshake, timeouts) and its own
stream classes (``AnyIOStream`` over the pipe's anyio end, ``SyncStream`` over a
:class:`~wsfake._blocking.BlockingSocket`) then run unchanged; only
``start_tls`` differs, returning the stream as it is (``wss://`` is served
without TLS). Keeping the connection out of the pool means a routed upgrade
never reuses an idle real connection to the same origin, and plain HTTP never
reuses an in-memory one; httpcore closes it when the response ends (after a
101 the stream belongs to httpx-ws; a refusal says ``Connection: close``). A
refused URL fails in ``connect_tcp`` with the :class:`~wsfake.NoRoute` (a
``ConnectionRefusedError``) mapped as httpcore maps a closed port, so httpx
raises ``httpx.ConnectError``.

Everything else (plain HTTP, pass-through URLs, Unix sockets) goes to the
pool's own method, past the network guard. Hooks are installed when
``httpx_ws`` is imported, so code using httpx alone is never touched;
``ASGIWebSocketTransport`` does not use httpcore and is left alone.

httpcore internals relied on: the stream classes of ``httpcore._backends``
and the pool's connection settings (``_ssl_context``, ``_retries``, ...).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

import anyio

from .._blocking import BlockingSocket
from .._url import URL, normalize_host
from . import Destination, Dialer, Undo

NAME = "httpx-ws"
MODULE = "httpx_ws"
SUPPORTED = "httpx-ws >= 0.7.2 (httpcore >= 1.0.4, < 1.1)"

#: WebSocket schemes of the URL schemes httpcore accepts.
_SCHEMES = {b"http": "ws", b"ws": "ws", b"https": "wss", b"wss": "wss"}
#: The pool settings an ``HTTPConnection`` takes (keyword = pool attribute without its underscore).
_SETTINGS = ("ssl_context", "keepalive_expiry", "http1", "http2", "retries", "local_address", "socket_options")

Decision = Destination | ConnectionRefusedError


def is_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True if the request asks for a WebSocket (``Upgrade: websocket``)."""
    for name, value in headers:
        if name.lower() == b"upgrade" and b"websocket" in (token.strip() for token in value.lower().split(b",")):
            return True
    return False


def target_url(request: Any) -> URL | None:
    """The WebSocket URL a request is sent to (its origin and target), or None if it is not an http(s)/ws(s) one."""
    url = request.url
    scheme = _SCHEMES.get(url.scheme)
    if scheme is None or not url.host:
        return None
    path, _, query = url.target.decode("ascii", "replace").partition("?")
    return URL(scheme, normalize_host(url.host.decode("ascii")), url.origin.port, path or "/", query)


def _settings(pool: Any) -> dict[str, Any]:
    """The connection settings of ``pool``, as its ``create_connection`` passes them."""
    return {name: getattr(pool, f"_{name}") for name in _SETTINGS if hasattr(pool, f"_{name}")}


def _decide(dialer: Dialer, url: URL) -> Decision | None:
    """The destination of ``url``, the refusal to raise on connecting, or None (the real network)."""
    try:
        return dialer.resolve(url)
    except ConnectionRefusedError as exc:
        return exc


@contextlib.contextmanager
def _connect_errors(httpcore: Any) -> Iterator[None]:
    """Map errors as httpcore's backends map a failed ``connect_tcp`` (a closed port is ``ConnectError``)."""
    try:
        yield
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(exc) from exc
    except OSError as exc:
        raise httpcore.ConnectError(exc) from exc


def _async_backend(httpcore: Any) -> type:
    from httpcore._backends.anyio import AnyIOStream

    class InMemoryStream(AnyIOStream):
        """httpcore's anyio stream over the pipe's anyio end (asyncio and trio); TLS is skipped."""

        async def start_tls(self, ssl_context: Any, server_hostname: Any = None, timeout: Any = None) -> Any:
            return self

    class InMemoryBackend(httpcore.AsyncNetworkBackend):  # type: ignore[misc]
        """Connects one routed request in memory (every retry opens a new connection)."""

        def __init__(self, decision: Decision) -> None:
            self._decision = decision

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            with _connect_errors(httpcore), anyio.fail_after(timeout):
                if isinstance(self._decision, ConnectionRefusedError):
                    raise self._decision
                pipe = await self._decision.open()
            return InMemoryStream(pipe.client_stream())

        async def sleep(self, seconds: float) -> None:
            await anyio.sleep(seconds)

    return InMemoryBackend


def _sync_backend(httpcore: Any) -> type:
    from httpcore._backends.sync import SyncStream

    class InMemoryStream(SyncStream):
        """httpcore's socket stream over a BlockingSocket; TLS is skipped."""

        def start_tls(self, ssl_context: Any, server_hostname: Any = None, timeout: Any = None) -> Any:
            return self

    class InMemoryBackend(httpcore.NetworkBackend):  # type: ignore[misc]
        """Connects one routed request in memory, served on the network's background loop."""

        def __init__(self, decision: Decision) -> None:
            self._decision = decision

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            with _connect_errors(httpcore):
                if isinstance(self._decision, ConnectionRefusedError):
                    raise self._decision
                sock: BlockingSocket = self._decision.open_from_thread(BlockingSocket, timeout)
            return InMemoryStream(sock)  # type: ignore[arg-type]

        def sleep(self, seconds: float) -> None:
            time.sleep(seconds)

    return InMemoryBackend


def _address(request: Any) -> tuple[str, int] | None:
    """The host and port a request is sent to, if it has them."""
    url = request.url
    if url.scheme not in _SCHEMES or not url.host:
        return None
    return url.host.decode("ascii"), url.origin.port


def install(module: ModuleType, dialer: Dialer) -> Undo:
    import httpcore

    async_pool = httpcore.AsyncConnectionPool
    sync_pool = httpcore.ConnectionPool
    async_original = vars(async_pool)["handle_async_request"]
    sync_original = vars(sync_pool)["handle_request"]
    AsyncBackend = _async_backend(httpcore)
    SyncBackend = _sync_backend(httpcore)

    def route(pool: Any, request: Any) -> Decision | None:
        """Where a WebSocket upgrade over TCP goes; None for the real network (and for anything else)."""
        if getattr(pool, "_uds", None) is not None or not is_upgrade(request.headers):
            return None
        url = target_url(request)
        return None if url is None else _decide(dialer, url)

    def real(request: Any) -> contextlib.AbstractContextManager[None]:
        address = _address(request)
        return contextlib.nullcontext() if address is None else dialer.allow_real(*address)

    async def handle_async_request(self: Any, request: Any) -> Any:
        decision = route(self, request)
        if decision is None:
            with real(request):
                return await async_original(self, request)
        connection = httpcore.AsyncHTTPConnection(
            origin=request.url.origin, network_backend=AsyncBackend(decision), **_settings(self)
        )
        return await connection.handle_async_request(request)

    def handle_request(self: Any, request: Any) -> Any:
        decision = route(self, request)
        if decision is None:
            with real(request):
                return sync_original(self, request)
        connection = httpcore.HTTPConnection(
            origin=request.url.origin, network_backend=SyncBackend(decision), **_settings(self)
        )
        return connection.handle_request(request)

    handle_async_request.__wrapped__ = async_original  # type: ignore[attr-defined]
    handle_request.__wrapped__ = sync_original  # type: ignore[attr-defined]
    async_pool.handle_async_request = handle_async_request  # type: ignore[method-assign]
    sync_pool.handle_request = handle_request  # type: ignore[method-assign]

    def undo() -> None:
        async_pool.handle_async_request = async_original  # type: ignore[method-assign]
        sync_pool.handle_request = sync_original  # type: ignore[method-assign]

    return undo
