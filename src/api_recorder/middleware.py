"""Server mode: the test id crosses processes in a header.

A test talks over HTTP to a server in another process (an app built on the OpenAI SDK, a
llama-stack server). Clients send the current test id in ``X-Api-Recorder-Test-Id`` (OpenAI SDK
clients do it by themselves while a test context is set); these middlewares make it the test
context of the request on the server side, so that the server's own OpenAI and tool calls land in
the calling test's recordings. OGX's ``X-OGX-Provider-Data`` and llama-stack's
``X-LlamaStack-Provider-Data`` (``{"__test_id": ...}``) are honoured too, and clients send the test
id in them as well, so a server that runs llama-stack's own recorder attributes calls too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

import wrapt

from .context import test_id_from_headers, test_id_headers_for
from .recorder import RECORDER

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class TestIdMiddleware:
    """ASGI middleware: ``app = TestIdMiddleware(app)``, or FastAPI's ``app.add_middleware(...)``."""

    __test__ = False

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        test_id = test_id_from_headers(headers)
        if test_id is None:
            await self.app(scope, receive, send)
            return
        with RECORDER.test_ids.scope(test_id, process_wide=False):
            await self.app(scope, receive, send)


class WSGITestIdMiddleware:
    """WSGI middleware: ``app.wsgi_app = WSGITestIdMiddleware(app.wsgi_app)`` (Flask, Django...)."""

    __test__ = False

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        test_id = test_id_from_headers(headers)
        if test_id is None:
            return self.app(environ, start_response)
        with RECORDER.test_ids.scope(test_id, process_wide=False):
            body = self.app(environ, start_response)
        return _BodyInTestContext(body, test_id)


class _BodyInTestContext:
    """A WSGI body whose lazy parts are produced in the request's test context, closed as PEP 3333 asks."""

    def __init__(self, body: Iterable[bytes], test_id: str) -> None:
        self._body = body
        self._test_id = test_id

    def __iter__(self) -> Iterator[bytes]:
        parts = iter(self._body)
        while True:
            with RECORDER.test_ids.scope(self._test_id, process_wide=False):
                try:
                    part = next(parts)
                except StopIteration:
                    return
            yield part

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def propagate_test_id(client: Any) -> Any:
    """Make an HTTP client you call a server with send the current test id on every request.

    Works with ``httpx``/``httpx2`` clients (sync or async: an event hook) and ``requests``
    sessions (their ``request`` method is wrapped). OpenAI SDK clients need nothing: they send it
    by themselves. Returns the client.
    """
    hooks = getattr(client, "event_hooks", None)
    if isinstance(hooks, dict):
        is_async = inspect.iscoroutinefunction(getattr(client, "send", None))
        hooks.setdefault("request", []).append(_async_header_hook if is_async else _header_hook)
        client.event_hooks = hooks
        return client
    if callable(getattr(client, "request", None)) and hasattr(client, "headers"):
        client.request = wrapt.FunctionWrapper(client.request, _with_test_id_header)
        return client
    raise TypeError(
        f"propagate_test_id supports httpx/httpx2 clients and requests sessions, not {type(client).__name__}; "
        "send api_recorder.test_id_headers() with your requests instead."
    )


def _header_hook(request: Any) -> None:
    test_id = RECORDER.current_test_id()
    if test_id:
        request.headers.update(test_id_headers_for(test_id, request.headers))


async def _async_header_hook(request: Any) -> None:
    _header_hook(request)


def _with_test_id_header(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    test_id = RECORDER.current_test_id()
    if test_id:
        headers = {**(getattr(instance, "headers", None) or {}), **(kwargs.get("headers") or {})}
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **test_id_headers_for(test_id, headers)}
    return wrapped(*args, **kwargs)
