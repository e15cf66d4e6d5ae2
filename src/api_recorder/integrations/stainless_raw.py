"""``.with_raw_response`` and ``.with_streaming_response``: the SDK's response objects, recorded.

LangChain sends most of its calls through ``with_raw_response`` (it reads ``.parse()`` and
``.headers``), the OpenAI Agents SDK its streams through ``with_streaming_response``. Both only add
a header to the call (``X-Stainless-Raw-Response``, in every Stainless SDK): the request is the
same, so its recording is the same file as a direct call's. What differs is the wrapping of the answer:

- recording, the live response object is returned as it came (live headers, status, bytes); its
  ``parse()`` gives the object or stream api-recorder records as it passes;
- replaying, a real ``LegacyAPIResponse`` (openai's ``with_raw_response``) / ``APIResponse`` /
  ``AsyncAPIResponse`` is built around an HTTP response that holds what the recorded objects
  serialize to (JSON, or SSE for streams), with the request id header normalized like ids; its
  ``parse()`` gives the replayed object.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import msgspec

from ..envelopes import envelope_data
from ..storage import RecordedResponse

if TYPE_CHECKING:
    from .stainless import StainlessSdk

RAW_RESPONSE_HEADER = "x-stainless-raw-response"
LEGACY = "true"  # openai's .with_raw_response: a LegacyAPIResponse, parse() is sync even for async clients
RAW = "raw"  # .with_raw_response of SDKs without the legacy class: an (Async)APIResponse
STREAMING = "stream"  # .with_streaming_response: an (Async)APIResponse inside a context manager


def raw_response_mode(kwargs: Mapping[str, Any]) -> str | None:
    """``"true"`` / ``"raw"`` for ``with_raw_response``, ``"stream"`` for ``with_streaming_response``."""
    headers = kwargs.get("extra_headers") or {}
    for name, value in headers.items():
        if str(name).lower() == RAW_RESPONSE_HEADER and value in (LEGACY, RAW, STREAMING):
            return str(value)
    return None


def hand_over(response: Any, answer: Any) -> Any:
    """Make ``response.parse()`` give ``answer`` (the object or stream being recorded).

    The SDK's responses cache what ``parse()`` returns per type; the answer goes in that cache.
    """
    response._parsed_by_type[response._cast_to] = answer
    return response


def then(value: Any, step: Callable[[Any], Any]) -> Any:
    """``step(value)``, after awaiting ``value`` if it is awaitable (async responses parse async)."""
    if inspect.isawaitable(value):

        async def awaited() -> Any:
            result = step(await value)
            return await result if inspect.isawaitable(result) else result

        return awaited()
    return step(value)


def replayed_response(
    sdk: StainlessSdk,
    mode: str,
    answer: Any,
    recorded: RecordedResponse,
    *,
    client: Any,
    method: str,
    url: str,
    request_id: str,
    is_async: bool,
    page: bool = False,
) -> Any:
    """The SDK's response object for a replayed ``answer``: parse() gives it, bytes are its JSON/SSE."""
    http = sdk.http
    streamed = recorded.is_streaming
    fields = sdk.page_fields(list(answer.data)) if page else None
    content = sse_body(recorded) if streamed else json_body(recorded, page_fields=fields)
    content_type = "text/event-stream; charset=utf-8" if streamed else "application/json"
    raw = http.Response(
        200,
        headers={"content-type": content_type, sdk.request_id_header: request_id},
        content=content,
        request=http.Request(method, url),
    )
    raw.elapsed = datetime.timedelta(0)
    if mode == LEGACY:
        cls: Any = importlib.import_module(f"{sdk.package}._legacy_response").LegacyAPIResponse
    else:
        responses = importlib.import_module(f"{sdk.package}._response")
        cls = responses.AsyncAPIResponse if is_async else responses.APIResponse
    final_options = importlib.import_module(f"{sdk.package}._models").FinalRequestOptions
    response = cls(
        raw=raw,
        cast_to=type(answer),
        client=client,
        stream=streamed,
        stream_cls=type(answer) if streamed else None,
        options=final_options.construct(method=method.lower(), url=url),
    )
    return hand_over(response, answer)


def wire_json(raw: msgspec.Raw | bytes) -> bytes:
    """One stored object as compact JSON, as it came over the wire (files are indented)."""
    return msgspec.json.format(envelope_data(raw), indent=-1)


def json_body(recorded: RecordedResponse, *, page_fields: dict[str, Any] | None) -> bytes:
    """The answer's JSON as the server sent it; a model list as its page (``data`` and the SDK's
    other page fields)."""
    if page_fields is None:
        return wire_json(cast(msgspec.Raw, recorded.raw_body))  # not streamed: one JSON value
    page = cast(msgspec.Raw, recorded.raw_body)  # a model list: one JSON list
    items = b",".join(wire_json(raw) for raw in msgspec.json.decode(page, type=list[msgspec.Raw]))
    fields = msgspec.json.encode(page_fields)[1:-1]
    return b'{"data":[' + items + b"]" + (b"," + fields if fields else b"") + b"}"


def sse_body(recorded: RecordedResponse) -> bytes:
    """The stream as Server-Sent Events: Responses-API events named, chat chunks ending in [DONE]."""
    frames = []
    named = False
    for raw in cast("list[msgspec.Raw]", recorded.raw_body):  # streamed: one JSON value a chunk
        data = wire_json(raw)
        kind = msgspec.json.decode(data, type=_EventType).type
        named = named or kind is not None
        prefix = b"event: " + kind.encode() + b"\n" if kind else b""
        frames.append(prefix + b"data: " + data + b"\n\n")
    if not named:
        frames.append(b"data: [DONE]\n\n")
    return b"".join(frames)


class _EventType(msgspec.Struct):
    type: str | None = None
