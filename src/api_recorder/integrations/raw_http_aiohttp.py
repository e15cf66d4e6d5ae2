"""Raw HTTP calls through ``aiohttp``, opted in per URL prefix like ``httpx``'s (see ``raw_http``).

Every request of a ``ClientSession`` (``get``, ``post``, ``request``, ``aiohttp.request``) goes
through ``ClientSession._request``; that is what is wrapped. A call to an opted-in URL is keyed
and stored exactly as ``raw_http`` keys and stores httpx's (llama-stack's raw HTTP files), so a
recording made through one client replays through the other.

A replayed answer is a real ``aiohttp.ClientResponse``: status, reason, the recorded headers, and
a real ``StreamReader`` as ``content`` that hands out the recorded body (a streamed answer one line
at a time, with its line boundaries), so ``read()``, ``text()``, ``json()``,
``raise_for_status()``, ``async with``, ``async for line in resp.content``, ``readline()`` and
``iter_any()`` behave as they did live.

Recording: an answer that is not streamed is read whole at once (then served again from memory to
the caller); a streamed one (Server-Sent Events, NDJSON) reaches the caller chunk by chunk as it
arrives and is saved when it ends, or, when the caller releases it early, once the rest has been
read (so the file holds the whole answer).

Not supported (such calls go to the network untouched, in every mode): request bodies that are
not JSON, bytes, text or a form dict (``FormData``, files, async generators), and websockets.
A replayed response has no redirect ``history`` and its ``url`` is the one requested.
"""

from __future__ import annotations

import asyncio
import http
import inspect
import json as jsonlib
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from ..patching import Patches
from ..recorder import Recorder
from . import sent_by_covered_sdk
from .raw_http import HttpCall, is_streamed_type, kept_headers, lines_of, stored_body

_DEFAULT_LIMIT = 2**16  # aiohttp's read_bufsize: a StreamReader's buffer limit


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    patches.wrap("aiohttp.client", "ClientSession._request", request_wrapper(recorder))
    return patches


def request_wrapper(recorder: Recorder) -> Any:
    """``ClientSession._request(method, url, **options)``: recorded, replayed, or untouched."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not recorder.intercepting or not recorder.http_prefixes:
            return wrapped(*args, **kwargs)
        method, str_or_url = _method_and_url(args, kwargs)
        try:
            url = _full_url(instance, str_or_url, kwargs.get("params"))
        except Exception:  # an invalid URL: aiohttp says so itself
            return wrapped(*args, **kwargs)
        if not recorder.records_http(str(url)) or recorder.is_passthrough(str(url)):
            return wrapped(*args, **kwargs)
        headers = instance._prepare_headers(kwargs.get("headers"))
        content = _request_content(kwargs)
        if content is None or sent_by_covered_sdk(headers) or "upgrade" in headers:  # no websockets
            return wrapped(*args, **kwargs)
        return _recorded_request(recorder, wrapped, instance, args, kwargs, method, url, headers, content)

    return wrapper


async def _recorded_request(
    recorder: Recorder,
    wrapped: Any,
    session: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    method: str,
    url: Any,
    headers: Any,
    content: bytes,
) -> Any:
    call = AiohttpCall(recorder, method, str(url), content, stream=True)
    call.builder = AiohttpResponses(session, method, url, headers)
    raise_for_status = kwargs.get("raise_for_status")
    # The answer is recorded whatever its status; the status check runs after, live or replayed.
    live_kwargs = {**kwargs, "raise_for_status": False}
    response = await recorder.run_async(call, lambda: wrapped(*args, **live_kwargs))
    if raise_for_status is None:
        raise_for_status = getattr(session, "_raise_for_status", None)
    if callable(raise_for_status):
        await raise_for_status(response)
    elif raise_for_status:
        response.raise_for_status()
    return response


def _method_and_url(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    def bind(method: str, str_or_url: Any, **_options: Any) -> tuple[str, Any]:
        return str(method).upper(), str_or_url

    return bind(*args, **kwargs)


def _full_url(session: Any, str_or_url: Any, params: Any) -> Any:
    """The URL aiohttp will request: the session's base URL joined, ``params`` added, no user-info."""
    from yarl import URL

    build = getattr(session, "_build_url", None)
    url = build(str_or_url) if build is not None else URL(str_or_url)
    if params:
        url = url.extend_query(params)
    return url.with_user(None) if url.user or url.password else url


def _request_content(kwargs: dict[str, Any]) -> bytes | None:
    """The request body as bytes, hashed as httpx's is; None for a body that cannot be read twice."""
    json_value, data = kwargs.get("json"), kwargs.get("data")
    if json_value is not None:
        # default=str: a value only the session's own serializer encodes (a datetime) is hashed as text
        return jsonlib.dumps(json_value, default=str).encode("utf-8")
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, dict) or (isinstance(data, (list, tuple)) and all(isinstance(i, tuple) for i in data)):
        return urlencode(list(data.items()) if isinstance(data, dict) else list(data), doseq=True).encode("utf-8")
    return None


class AiohttpCall(HttpCall):
    """``HttpCall`` for an ``aiohttp.ClientResponse``: the status is ``status``, the body a stream."""

    def capture(self, result: Any, save: Any) -> Any:
        self.status = int(result.status)
        self.headers = kept_headers(result.headers)
        return self.builder.recording(result, lambda content: self._save_answer(content, save))

    def _save_answer(self, content: bytes, save: Callable[..., Any]) -> None:
        if is_streamed_type(self.headers):
            save(lines_of(content), True)
        else:
            save(stored_body(content, self.headers), False)


class AiohttpResponses:
    """Real ``aiohttp.ClientResponse`` objects: replayed, and recording while read."""

    def __init__(self, session: Any, method: str, url: Any, headers: Any) -> None:
        self.session = session
        self.method = method
        self.url = url
        self.request_headers = headers

    def whole(self, status: int, headers: dict[str, str], content: bytes) -> Any:
        return self._response(status, headers, [content] if content else [])

    def streamed(self, status: int, headers: dict[str, str], lines: list[str]) -> Any:
        return self._response(status, headers, [(line + "\n").encode("utf-8") for line in lines])

    def recording(self, response: Any, save: Callable[[bytes], None]) -> Awaitable[Any]:
        return _recording(response, save, self.limit)

    @property
    def limit(self) -> int:
        return int(getattr(self.session, "_read_bufsize", None) or _DEFAULT_LIMIT)

    def _response(self, status: int, headers: dict[str, str], chunks: list[bytes]) -> Any:
        import aiohttp
        from aiohttp.client_reqrep import RequestInfo
        from aiohttp.helpers import TimerNoop
        from aiohttp.http import HttpVersion11
        from multidict import CIMultiDict, CIMultiDictProxy

        loop = asyncio.get_running_loop()
        response_class = getattr(self.session, "_response_class", None) or aiohttp.ClientResponse
        options: dict[str, Any] = {
            "writer": None,
            "continue100": None,
            "timer": TimerNoop(),
            "request_info": RequestInfo(self.url, self.method, CIMultiDictProxy(CIMultiDict(self.request_headers))),
            "traces": [],
            "loop": loop,
            "session": self.session,
            "stream_writer": SimpleNamespace(output_size=0),  # aiohttp 3.14: the request's writer
        }
        accepted = inspect.signature(response_class.__init__).parameters
        response = response_class(self.method, self.url, **{k: v for k, v in options.items() if k in accepted})
        response.version = HttpVersion11
        response.status = status
        response.reason = _reason(status)
        response._headers = CIMultiDictProxy(CIMultiDict(headers))
        response._raw_headers = tuple(
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        )
        source = iter(chunks)
        response.content = pulled_stream(lambda: _next_of(source), self.limit, loop)
        return response


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _next_of(chunks: Iterator[bytes]) -> bytes:
    return next(chunks, b"")


async def _recording(response: Any, save: Callable[[bytes], None], limit: int) -> Any:
    """The live response, recording: read whole now, or, streamed, as the caller reads it."""
    if not is_streamed_type(kept_headers(response.headers)):
        body = await response.read()  # the whole answer now; the caller reads it again from memory
        save(body)
        source = iter([body] if body else [])
        response.content = pulled_stream(lambda: _next_of(source), limit, asyncio.get_running_loop())
        response._body = None  # unread, as live: read() takes it from content, which it empties
        return response
    _StreamTap(response, save, limit).install()
    return response


class _StreamTap:
    """Stands between a live streamed response and its reader: keeps every chunk that passes and
    saves the whole when the stream ends; released early, it reads the rest first, then saves."""

    def __init__(self, response: Any, save: Callable[[bytes], None], limit: int) -> None:
        self.response = response
        self.live = response.content
        self.save = save
        self.chunks: list[bytes] = []
        self.done = False
        self.draining: asyncio.Task[None] | None = None
        self.stream = pulled_stream(self.pull, limit, asyncio.get_running_loop())

    def install(self) -> None:
        response = self.response
        release, close, wait_for_close = response.release, response.close, response.wait_for_close
        response.content = self.stream
        response.release = lambda: self.finish_then(release)
        response.close = lambda: self.finish_then(close)

        async def waiting_for_close() -> None:
            if self.draining is not None:
                await asyncio.shield(self.draining)
            await wait_for_close()

        response.wait_for_close = waiting_for_close

    async def pull(self) -> bytes:
        chunk: bytes = await self.live.readany()
        if chunk:
            self.chunks.append(chunk)
        else:
            self._finish()
        return chunk

    def finish_then(self, then: Callable[[], Any]) -> Any:
        """``release()`` / ``close()``: at once when the stream has ended, else after the rest is read."""
        if self.draining is None and self.done:
            return then()
        if self.draining is not None:
            return then() if self.draining.done() else None  # else it runs once the rest is read
        from aiohttp import ClientConnectionError

        self.stream.set_exception(ClientConnectionError("Connection closed"))  # as live, once released
        self.draining = asyncio.get_running_loop().create_task(self._drain())
        self.draining.add_done_callback(lambda _task: then())
        return None

    async def _drain(self) -> None:
        try:
            while chunk := await self.live.readany():
                self.chunks.append(chunk)
        except Exception:  # the connection failed: what arrived is not the whole answer
            self.done = True
            return
        self._finish()

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.save(b"".join(self.chunks))


class _Feeder:
    """The protocol a ``StreamReader`` nobody's socket feeds calls back: flow control, no-ops."""

    connected = True
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


_PULLED: list[type] = []


def pulled_stream(source: Callable[[], Awaitable[bytes]], limit: int, loop: asyncio.AbstractEventLoop) -> Any:
    """A real ``aiohttp.StreamReader`` that, whenever a reader waits for data, feeds itself the next
    chunk of ``source`` (``b""``: the end)."""
    if not _PULLED:
        from aiohttp import StreamReader

        class PulledStreamReader(StreamReader):
            def __init__(self, source: Callable[[], Awaitable[bytes]], limit: int, loop: Any) -> None:
                super().__init__(_Feeder(), limit, loop=loop)  # type: ignore[arg-type]
                self._source = source
                self._pulling = False

            async def _wait(self, func_name: str) -> None:
                if self._pulling:
                    raise RuntimeError(f"{func_name}() called while another coroutine is already waiting for data")
                self._pulling = True
                try:
                    chunk = await self._source()
                finally:
                    self._pulling = False
                if self._exception is not None:  # released while the chunk was on its way
                    raise self._exception
                if chunk:
                    self.feed_data(chunk)
                else:
                    self.feed_eof()

            async def wait_eof(self) -> None:
                while not self._eof:  # nothing feeds this stream but its readers: read to the end
                    await self._wait("wait_eof")

        _PULLED.append(PulledStreamReader)
    return _PULLED[0](source, limit, loop)
