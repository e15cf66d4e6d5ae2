"""Serving the fake MCP server over HTTP (streamable HTTP, SSE), and comparing MCP answers.

``MCPServer``'s streamable-HTTP app runs its session manager in the ASGI lifespan, which
``LocalServer`` leaves off (the other fakes have none): :class:`McpHttpServer` turns it on, and
runs its shutdown when stopped. The listening socket is bound before the thread starts, and
uvicorn accepts only once the lifespan has started, so nothing waits or polls.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import uvicorn

from fakes.mcp_server import build_server
from fakes.server import LocalServer, _PromptExitServer


class _LifespanServer(_PromptExitServer):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        await self.lifespan.shutdown()  # the MCP session manager's task group ends


class HeaderLog:
    """An ASGI wrapper noting the headers of every HTTP request before the app answers it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            with self._lock:
                self.headers.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await self.app(scope, receive, send)


class McpHttpServer(LocalServer):
    """The fake MCP server on 127.0.0.1: its streamable-HTTP app (``url`` ends in ``/mcp``), or
    with ``sse=True`` its SSE app (``/sse``)."""

    def __init__(self, *, sse: bool = False) -> None:
        self.tool_calls: list[str] = []  # the tools the server ran
        server = build_server(self.tool_calls)
        self.path = "/sse" if sse else "/mcp"
        self.log = HeaderLog(server.sse_app() if sse else server.streamable_http_app())
        super().__init__(self.log)

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def start(self) -> McpHttpServer:
        if self._thread is not None:
            raise RuntimeError("McpHttpServer already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        config = uvicorn.Config(self.app, log_level="warning", log_config=None, lifespan="on", access_log=False)
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        self._server = _LifespanServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"McpHttpServer:{self.port}", daemon=True
        )
        self._thread.start()
        return self


def same_answers(live: list[Any], replayed: list[Any]) -> None:
    """Object for object: the same class and the same fields (those the server sent, too)."""
    assert len(replayed) == len(live)
    for index, (was, now) in enumerate(zip(live, replayed, strict=True)):
        assert type(now) is type(was), (index, was, now)
        assert now == was, (index, was, now)
        if hasattr(was, "model_fields_set"):
            assert now.model_fields_set == was.model_fields_set, index
            assert now.model_dump(by_alias=True, exclude_unset=True) == was.model_dump(
                by_alias=True, exclude_unset=True
            )
