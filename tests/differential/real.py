"""The real servers, on 127.0.0.1, started once per test session in a thread of their own.

Handlers run under ``websockets.serve``; ASGI apps under uvicorn with each of its
WebSocket implementations. A server is started on first need for each set of
options and serves every later run with those options, so a scenario costs its
client's work, not a server start. Running on their own loop, in their own
thread, they serve clients of every kind: asyncio, trio and threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from scenarios import Scenario
from servers import app, handler
from websockets.asyncio.server import serve

UVICORN_IMPLS = ("websockets-sansio", "wsproto", "websockets")
DEFAULT_UVICORN_IMPL = "websockets-sansio"


def real_server_names(scenario: Scenario) -> list[str]:
    if scenario.kind == "handler":
        return ["websockets.serve"]
    return [f"uvicorn ws={impl}" for impl in UVICORN_IMPLS]


def _key(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in options.items()))


class RealServers:
    """Real servers on 127.0.0.1, in a background thread; ``port(server, scenario)`` starts one on first need."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ports: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self._thread = threading.Thread(target=self._run, name="differential real servers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coroutine: Awaitable[Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]

    def port(self, server: str, scenario: Scenario) -> int:
        key = (server, _key(scenario.options))
        if key not in self._ports:
            if server == "websockets.serve":
                self._ports[key] = self._call(self._start_handler(scenario.options))
            else:
                self._ports[key] = self._call(self._start_uvicorn(server.partition("=")[2], scenario.options))
        return self._ports[key]

    async def _start_handler(self, options: dict[str, Any]) -> int:
        server = await serve(handler, "127.0.0.1", 0, **options)
        self._stops.append(_stop_websockets(server))
        return int(server.sockets[0].getsockname()[1])

    async def _start_uvicorn(self, impl: str, options: dict[str, Any]) -> int:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, ws=impl, log_level="critical", lifespan="off", **options)
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        self._stops.append(_stop_uvicorn(server, task))
        return int(server.servers[0].sockets[0].getsockname()[1])

    def close(self) -> None:
        async def stop_all() -> None:
            for stop in self._stops:
                await stop()

        try:
            self._call(stop_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


def _stop_websockets(server: Any) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return stop


def _stop_uvicorn(server: uvicorn.Server, task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        server.should_exit = True
        await task

    return stop
