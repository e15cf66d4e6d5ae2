"""A small HTTP API (raw ASGI) for raw HTTP recording tests: JSON, SSE, NDJSON, text, errors.

Every answer carries fresh ids and timestamps (a second call never answers the same bytes), while
its content is a function of the request. Streams are sent in chunks that do not follow line
boundaries, so a test can tell lines from chunks.

Routes (under any prefix: ``/api/...`` and ``/other/...`` answer alike):

* ``POST /json``: ``{"id", "created", "echo": <body>}`` with a ``set-cookie`` and
  an ``x-request-id`` header;
* ``POST /sse`` (and ``POST /messages`` with ``"stream": true``): Server-Sent Events, ``events``
  (default 4) ``event:``/``data:`` frames then ``data: [DONE]``;
* ``POST /ndjson``: ``application/x-ndjson``, ``rows`` (default 3) JSON lines;
* ``GET /text``: ``text/plain`` with a fresh id in it;
* ``GET /error``: ``429`` with a JSON error body.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .server import LocalServer, Receive, RequestLog, Scope, Send, read_request, send_json


def fresh_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def sse_body(body: dict[str, Any]) -> bytes:
    text = body.get("prompt", "hello")
    frames = []
    for index in range(int(body.get("events", 4))):
        data = {"id": fresh_id("evt"), "index": index, "created": time.time_ns(), "text": f"{text}-{index}"}
        frames.append(f"event: delta\ndata: {json.dumps(data)}\n\n")
    frames.append("data: [DONE]\n\n")
    return "".join(frames).encode()


def ndjson_body(body: dict[str, Any]) -> bytes:
    rows = [
        {"id": fresh_id("row"), "n": index, "created": time.time_ns(), "done": index == int(body.get("rows", 3)) - 1}
        for index in range(int(body.get("rows", 3)))
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def pieces(content: bytes, size: int = 7) -> list[bytes]:
    """Chunks that cut lines in the middle."""
    return [content[start : start + size] for start in range(0, len(content), size)]


class HttpApp:
    """The ASGI app; ``requests`` logs what it received."""

    def __init__(self) -> None:
        self.requests = RequestLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        self.requests.append(request)
        route = request.path.rsplit("/", 1)[-1]
        body = request.body if isinstance(request.body, dict) else {}
        if route == "json":
            answer = {"id": fresh_id("json"), "created": time.time_ns(), "echo": body}
            headers = {"x-request-id": fresh_id("req"), "set-cookie": f"session={uuid.uuid4().hex}; Path=/"}
            await send_json(send, 200, answer, headers)
        elif route == "sse" or (route == "messages" and body.get("stream")):
            await self._stream(send, "text/event-stream; charset=utf-8", sse_body(body))
        elif route == "ndjson":
            await self._stream(send, "application/x-ndjson", ndjson_body(body))
        elif route == "text":
            await self._whole(send, 200, "text/plain; charset=utf-8", f"plain text {fresh_id('txt')}\n".encode())
        elif route == "error":
            error = {"error": {"message": "slow down", "type": "rate_limit"}, "request_id": fresh_id("req")}
            await send_json(send, 429, error, {"retry-after": "7"})
        else:
            await send_json(send, 404, {"error": {"message": f"no route {request.path}"}})

    async def _stream(self, send: Send, content_type: str, content: bytes) -> None:
        headers = [(b"content-type", content_type.encode()), (b"x-request-id", fresh_id("req").encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for piece in pieces(content):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _whole(self, send: Send, status: int, content_type: str, content: bytes) -> None:
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})


class FakeHttpApi(LocalServer):
    """``with FakeHttpApi() as api: httpx.post(api.base_url + "/api/json", json=...)``."""

    def __init__(self) -> None:
        self.http_app = HttpApp()
        super().__init__(self.http_app)

    @property
    def request_count(self) -> int:
        return len(self.http_app.requests)
