"""Raw HTTP calls, opted in per URL prefix: ``httpx`` (and its fork ``httpx2``) clients.

Most HTTP in a test is not an API call, so nothing is recorded unless its URL starts with a
prefix given to ``enable(http=[...])`` (or ``API_RECORDER_HTTP``, comma-separated): rerankers,
``/v1/messages`` servers, Gemini's interactions API, vendors' REST endpoints. Requests sent by a
client whose SDK integration records it already (OpenAI, Anthropic, Gemini, Ollama clients) are
left to that integration, never recorded twice.

Files and hashes are llama-stack's for its raw HTTP recordings: the request section is
``{"test_id", "url", "method", "payload"}`` (the JSON body; ``{}`` when there is none), hashed
by ``normalize_http_request``; the response holds ``status``, the non-secret ``headers`` and the
``body``: JSON as JSON, other text as a string, and a streamed answer (Server-Sent Events,
NDJSON) as its list of lines, replayed with the same line boundaries so that ``iter_lines()`` /
``aiter_lines()`` consumers see what they saw live. The interception point is the client's
``send``: every request goes through it, ``client.stream(...)`` included.
"""

from __future__ import annotations

import base64
import datetime
import importlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

from ..hashing import http_hash
from ..patching import Patches
from ..recorder import Recorder, RequestKey
from ..redaction import is_credential_name
from ..storage import Recording
from . import sent_by_covered_sdk

STREAMED_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl", "application/json-seq")
_DROPPED_HEADERS = {"set-cookie", "content-length", "content-encoding", "transfer-encoding", "date", "connection"}
BYTES_KEY = "__base64__"  # a body that is not text, stored as {"__base64__": "..."}


def install_httpx(recorder: Recorder) -> Patches:
    return _install(recorder, "httpx")


def install_httpx2(recorder: Recorder) -> Patches:
    return _install(recorder, "httpx2")


def _install(recorder: Recorder, package: str) -> Patches:
    patches = Patches()
    patches.wrap(f"{package}._client", "Client.send", send_wrapper(recorder, package, is_async=False))
    patches.wrap(f"{package}._client", "AsyncClient.send", send_wrapper(recorder, package, is_async=True))
    return patches


def send_wrapper(recorder: Recorder, package: str, *, is_async: bool) -> Any:
    """``Client.send(request, stream=...)``: recorded, replayed, or passed through untouched."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request: Any = kwargs.get("request", args[0] if args else None)  # an httpx(2).Request
        url = str(getattr(request, "url", ""))
        if not recorder.records_http(url) or recorder.is_passthrough(url) or sent_by_covered_sdk(request.headers):
            return wrapped(*args, **kwargs)
        http = importlib.import_module(package)
        call = HttpCall(recorder, request.method, url, request_content(request), stream=bool(kwargs.get("stream")))
        call.builder = HttpxResponses(http, request, stream=call.stream)
        if is_async:
            return recorder.run_async(call, lambda: wrapped(*args, **kwargs))
        return recorder.run(call, lambda: wrapped(*args, **kwargs))

    return wrapper


def request_content(request: Any) -> bytes:
    """The request's body bytes (an unread streaming body is read: it must be hashed)."""
    try:
        return bytes(request.content)
    except Exception:  # httpx.RequestNotRead: a generator body
        return bytes(request.read())


def payload_of(content: bytes) -> Any:
    """llama-stack's ``payload``: the JSON body, ``{}`` when there is none, else the text."""
    if not content:
        return {}
    try:
        return json.loads(content)
    except ValueError:
        return {"__text__": content.decode("utf-8", "replace")}


class HttpCall:
    """One raw HTTP call: llama-stack's key, and the answer as status, headers and body."""

    normalizes_ids = False  # an API's answer is stored as it came (secrets aside)

    def __init__(self, recorder: Recorder, method: str, url: str, content: bytes, *, stream: bool) -> None:
        self.stream = stream
        self.builder: Any = None  # builds the client library's response objects
        self.status = 200
        self.headers: dict[str, str] = {}
        payload = payload_of(content)
        if isinstance(payload, dict):
            payload = recorder.prepare_body(payload)
        stored_url = recorder.redactor.url(url)
        test_id = recorder.current_test_id()
        request_hash = http_hash(stored_url, method, payload, test_id)
        self.key = RequestKey(
            hash=request_hash,
            request={"test_id": test_id, "url": stored_url, "method": method.upper(), "payload": payload},
            label=f"{method.upper()} {stored_url}",
            test_id=test_id,
            model=payload.get("model") if isinstance(payload, dict) and isinstance(payload.get("model"), str) else None,
        )

    # -- answers --------------------------------------------------------------------------

    def replay(self, recording: Recording) -> Any:
        response = recording.response
        headers = dict(response.headers or {})
        status = response.status or 200
        if response.is_streaming:
            lines = [str(line) for line in response.body]
            headers.setdefault("content-type", "text/event-stream")
            return self.builder.streamed(status, headers, lines)
        body = response.body
        content, content_type = body_bytes(body, headers.get("content-type") or headers.get("Content-Type"))
        headers.setdefault("content-type", content_type)
        return self.builder.whole(status, headers, content)

    def capture(self, result: Any, save: Any) -> Any:
        self.status = int(result.status_code)
        self.headers = kept_headers(result.headers)
        if not self.stream:
            self._save_streamed(result.content, save)  # an SSE answer read whole is still lines
            return result
        return self.builder.recording(result, lambda content: self._save_streamed(content, save))

    def _save_streamed(self, content: bytes, save: Callable[..., Any]) -> None:
        if is_streamed_type(self.headers):
            save(lines_of(content), True)
        else:
            save(stored_body(content, self.headers), False)

    def response_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": self.status}
        if self.headers:
            fields["headers"] = self.headers
        return fields

    def dump_answer(self, answer: Any) -> Any:
        return answer

    def is_recordable_error(self, error: Exception) -> bool:
        return False  # a connection that failed is no answer; error statuses are answers, recorded

    def answer_despite(self, error: Exception) -> Any:
        return None

    def filename_for(self, body: Any) -> str:
        return f"{self.key.hash}.json"


def lines_of(content: bytes) -> list[str]:
    """A streamed body's lines as ``iter_lines()`` / ``readline()`` cut them: at ``\n`` only (not
    at ``\r`` or ``\u2028`` inside a line), without their endings; the newline that ends the body
    ends the last line, not one more empty line."""
    lines = content.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_streamed_type(headers: dict[str, str]) -> bool:
    content_type = headers.get("content-type", "").lower()
    return any(kind in content_type for kind in STREAMED_TYPES)


def kept_headers(headers: Any) -> dict[str, str]:
    """The answer's headers worth replaying: no credentials, cookies, dates or transfer details."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if lowered in _DROPPED_HEADERS or is_credential_name(lowered):
            continue
        kept[lowered] = str(value)
    return kept


def stored_body(content: bytes, headers: dict[str, str]) -> Any:
    """JSON as JSON, text as a string, anything else as base64."""
    if "json" in headers.get("content-type", "").lower():
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return {BYTES_KEY: base64.b64encode(content).decode("ascii")}


def body_bytes(body: Any, content_type: str | None) -> tuple[bytes, str]:
    """The bytes to serve for a stored body, and its content type when none was recorded."""
    if isinstance(body, dict) and set(body) == {BYTES_KEY}:
        return base64.b64decode(body[BYTES_KEY]), content_type or "application/octet-stream"
    if isinstance(body, str) and not (content_type and "json" in content_type.lower()):
        return body.encode("utf-8"), content_type or "text/plain; charset=utf-8"
    return json.dumps(body).encode("utf-8"), content_type or "application/json"


class HttpxResponses:
    """Real ``httpx.Response`` objects (or ``httpx2``'s): replayed, and recording while read."""

    def __init__(self, http: ModuleType, request: Any, *, stream: bool) -> None:
        self.http = http
        self.request = request
        self.stream = stream

    def whole(self, status: int, headers: dict[str, str], content: bytes) -> Any:
        response = self.http.Response(status, headers=headers, content=content, request=self.request)
        response.elapsed = datetime.timedelta(0)
        return response

    def streamed(self, status: int, headers: dict[str, str], lines: list[str]) -> Any:
        stream = _line_stream_class(self.http)(lines)
        response = self.http.Response(status, headers=headers, stream=stream, request=self.request)
        response.elapsed = datetime.timedelta(0)
        if not self.stream:  # the caller asked for a read response: read it, as send() does
            response.read()
        return response

    def recording(self, response: Any, save: Callable[[bytes], None]) -> Any:
        response.stream = _recording_stream_class(self.http)(response.stream, save)
        return response


_CLASSES: dict[tuple[str, str], type] = {}


def _line_stream_class(http: ModuleType) -> type:
    """A byte stream (sync and async) that yields each recorded line, then its newline."""
    key = (http.__name__, "lines")
    if key not in _CLASSES:

        class LineStream(http.SyncByteStream, http.AsyncByteStream):  # type: ignore[misc,name-defined]
            def __init__(self, lines: list[str]) -> None:
                self._lines = lines

            def __iter__(self) -> Iterator[bytes]:
                for line in self._lines:
                    yield (line + "\n").encode("utf-8")

            async def __aiter__(self) -> AsyncIterator[bytes]:
                for line in self._lines:
                    yield (line + "\n").encode("utf-8")

        _CLASSES[key] = LineStream
    return _CLASSES[key]


def _recording_stream_class(http: ModuleType) -> type:
    """A live byte stream that keeps what passes; closed, it reads the rest and saves the whole."""
    key = (http.__name__, "recording")
    if key not in _CLASSES:

        class RecordingByteStream(http.SyncByteStream, http.AsyncByteStream):  # type: ignore[misc,name-defined]
            def __init__(self, inner: Any, save: Callable[[bytes], None]) -> None:
                self._inner = inner
                self._save = save
                self._chunks: list[bytes] = []
                self._sync: Iterator[bytes] | None = None
                self._async: AsyncIterator[bytes] | None = None
                self._saved = False

            def __iter__(self) -> Iterator[bytes]:
                self._sync = iter(self._inner)
                for chunk in self._sync:
                    self._chunks.append(chunk)
                    yield chunk
                self._finish()

            async def __aiter__(self) -> AsyncIterator[bytes]:
                self._async = self._inner.__aiter__()
                async for chunk in self._async:
                    self._chunks.append(chunk)
                    yield chunk
                self._finish()

            def close(self) -> None:
                if not self._saved:  # left early: read the rest, so the recording is whole
                    self._chunks.extend(self._sync if self._sync is not None else iter(self._inner))
                    self._finish()
                self._inner.close()

            async def aclose(self) -> None:
                if not self._saved:
                    source = self._async if self._async is not None else self._inner.__aiter__()
                    self._chunks.extend([chunk async for chunk in source])
                    self._finish()
                await self._inner.aclose()

            def _finish(self) -> None:
                if not self._saved:
                    self._saved = True
                    self._save(b"".join(self._chunks))

        _CLASSES[key] = RecordingByteStream
    return _CLASSES[key]


def render(recording: Recording) -> str | None:
    """A person's view of a raw HTTP answer: its status, then its JSON, text or lines."""
    if "payload" not in recording.request:
        return None
    response = recording.response
    body = response.body
    if response.is_streaming:
        shown = "\n".join(str(line) for line in body)
        return f"status {response.status or 200}, {len(body)} lines\n{shown}"
    shown = body if isinstance(body, str) else json.dumps(body, indent=2, ensure_ascii=False)
    return f"status {response.status or 200}\n{shown}"
