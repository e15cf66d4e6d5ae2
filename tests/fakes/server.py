"""Serve an ASGI app on 127.0.0.1 from a background thread, plus tiny ASGI helpers.

The fakes in this package are raw ASGI apps (no framework) so that the real
OpenAI and Tavily clients talk real HTTP to them.  `LocalServer` binds the
listening socket *before* the server thread starts, so a client may connect
the moment `start()` returns: the kernel queues the connection until uvicorn's
loop accepts it.  Nothing here sleeps or polls.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import uvicorn

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STOP_TIMEOUT_SECONDS = 5.0


class _PromptExitServer(uvicorn.Server):
    """A uvicorn server whose main loop waits on an event instead of a 100 ms poll.

    Stock uvicorn checks `should_exit` every 0.1 s and then sleeps 0.1 s more
    while shutting down; here `stop()` wakes the loop at once and shutdown
    skips the grace sleep, so a start/stop cycle costs a few milliseconds.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_requested: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._exit_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        await self.on_tick(0)  # sets uvicorn's default response headers once
        if self.should_exit:  # stop() ran before the event existed
            return
        await self._exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close listeners and connections without uvicorn's fixed 100 ms grace sleep.

        A fake has nothing to flush: idle keep-alive connections close at once,
        and a response still streaming to an abandoned client is cancelled.
        """
        for server in getattr(self, "servers", []):
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for task in list(self.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)  # one loop turn so transports act on close()

    def request_exit(self) -> None:
        """Ask the server to exit; safe to call from any thread, any time."""
        self.should_exit = True
        self.force_exit = True  # do not wait for open (e.g. abandoned streaming) connections
        loop, event = self._loop, self._exit_requested
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed: the server is gone anyway
                pass


class LocalServer:
    """Run `app` with uvicorn in a daemon thread on 127.0.0.1 and an OS-chosen port."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._server: _PromptExitServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalServer has never been started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server's event loop (None before it starts): for waking it from another thread."""
        return self._server._loop if self._server is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalServer:
        """Bind, listen, and start serving; clients can connect as soon as this returns."""
        if self._thread is not None:
            raise RuntimeError("LocalServer already started")
        # proto must be IPPROTO_TCP (not the default 0): asyncio only sets TCP_NODELAY on
        # accepted sockets whose proto says TCP, and without it every response that is
        # written in two parts (headers, body) stalls ~40 ms on Nagle + delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,  # leave the test process's logging configuration alone
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._socket = sock
        self._port = int(sock.getsockname()[1])
        self._server = _PromptExitServer(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"LocalServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Make uvicorn exit and join its thread; open connections are not waited for."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.request_exit()
        thread.join(_STOP_TIMEOUT_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._thread = None
        self._server = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RunningFake:
    """What every fake server shares: start and stop (also as a context manager), its port, and
    the requests its app logged. A subclass sets ``self.app`` (with a ``log``) and ``self.server``."""

    app: Any
    server: LocalServer
    api_prefix = ""  # the path prefix of the wire format's API ("/v1", "/api"), optional in requests_to

    def start(self: _Fake) -> _Fake:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self: _Fake) -> _Fake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.log.snapshot()  # type: ignore[no-any-return]

    @property
    def request_count(self) -> int:
        return len(self.app.log)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Requests whose path is `path`, with or without the API prefix (the query is ignored)."""
        wanted = "/" + path.lstrip("/")
        return [r for r in self.requests if r.path in (wanted, self.api_prefix + wanted)]

    @property
    def last_request(self) -> RecordedRequest:
        requests = self.requests
        if not requests:
            raise AssertionError(f"{type(self).__name__} has received no request")
        return requests[-1]


_Fake = TypeVar("_Fake", bound=RunningFake)


# ---------------------------------------------------------------------------
# Request recording and one-shot rules shared by the fakes.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """What a fake received, so tests can assert on exactly what a client sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes = field(repr=False)

    def json(self) -> Any:
        return self.body


class RequestLog:
    """A list of received requests that the server thread appends to and tests read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []

    def append(self, request: RecordedRequest) -> None:
        with self._lock:
            self._items.append(request)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def path_matches(request_path: str, wanted: str | None, prefix: str = "") -> bool:
    """`wanted=None` matches everything; otherwise compare with or without the API prefix."""
    if wanted is None:
        return True
    normalized = "/" + wanted.lstrip("/")
    return request_path in (normalized, prefix + normalized)


@dataclass
class _Rule:
    payload: Any
    remaining: int
    path: str | None


class OneShotRules:
    """Thread-safe queue of "do X to the next N matching requests" instructions."""

    def __init__(self, prefix: str = "") -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._prefix = prefix

    def add(self, payload: Any, count: int = 1, path: str | None = None) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._rules.append(_Rule(payload=payload, remaining=count, path=path))

    def take(self, request_path: str) -> Any:
        """Consume one use of the first rule matching `request_path`; None if none match."""
        with self._lock:
            for rule in self._rules:
                if path_matches(request_path, rule.path, self._prefix):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule.payload
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)


# ---------------------------------------------------------------------------
# Minimal ASGI plumbing.
# ---------------------------------------------------------------------------


async def read_request(scope: Scope, receive: Receive) -> RecordedRequest:
    """Drain the request body and parse it as JSON when possible."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw_body = b"".join(chunks)
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    body: Any = None
    if raw_body:
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        query=query,
        headers=headers,
        body=body,
        raw_body=raw_body,
    )


def _encode_headers(content_type: str, extra: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type.encode("latin-1"))]
    for name, value in (extra or {}).items():
        headers.append((name.lower().encode("latin-1"), str(value).encode("latin-1")))
    return headers


async def send_json(send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps(payload).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *_encode_headers("application/json", headers),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_stream(
    send: Send,
    frames: Iterable[bytes],
    headers: Mapping[str, str] | None = None,
    *,
    start: bool = True,
    finish: bool = True,
) -> None:
    """Send a text/event-stream response, one body message per SSE frame (chunked encoding).

    `start=False` / `finish=False` send only part of it (a stream that stalls in the middle).
    """
    if start:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *_encode_headers("text/event-stream; charset=utf-8", headers),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
    for frame in frames:
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    if finish:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def sse_frame(data: Any, event: str | None = None) -> bytes:
    """Encode one server-sent event; `data` that is not a str is JSON-encoded."""
    text = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()
