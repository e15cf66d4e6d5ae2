"""A fake Anthropic Messages API server (raw ASGI) that the real `anthropic` SDK can talk to.

Point `anthropic.Anthropic(base_url=fake.base_url, api_key=..., max_retries=0)`
at it (the SDK adds the `/v1` prefix itself), or use `fake.client()`.

Design rule, as in `openai_app`: every answer has FRESH ids (`msg_...`,
`toolu_...`, the `request-id` header) while its CONTENT (text, tool input,
stop reason, token counts) is a pure function of the request body, less the
ids earlier answers handed out (so a tool loop answers the same words on every
run).  That lets tests prove that a recorder normalizes volatile fields yet
reproduces content exactly.

Served: `POST /v1/messages` (JSON, or SSE with `"stream": true`),
`POST /v1/messages/count_tokens`, `GET /v1/models`, `GET /v1/models/{id}`.
A `?beta=true` query (what `client.beta.*` may add) is accepted and ignored,
so the beta surface gets the same answers.

Wire formats follow anthropic 2.14.0 (`anthropic/types/message.py`,
`raw_message_stream_event.py`, `_streaming.py`, `lib/streaming/_messages.py`):
every SSE frame carries an `event:` line (the SDK drops frames without one),
`ping` frames are skipped by the SDK, and an `event: error` frame makes the
SDK raise from inside the iteration (see `FakeAnthropic.fail_mid_stream`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .openai_app import (
    count_words,
    fragments,
    reply_pieces,
    sample_from_schema,
    split_pieces,
    stable_seed,
    tool_arguments,
)
from .server import (
    LocalServer,
    OneShotRules,
    Receive,
    RecordedRequest,
    RequestLog,
    RunningFake,
    Scope,
    Send,
    read_request,
    send_json,
    send_stream,
    sse_frame,
)

API_PREFIX = "/v1"
TOOL_CONTENT_LIMIT = 200
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 1000
TOKENS_PER_MESSAGE = 3

DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {"id": "claude-opus-5", "display_name": "Claude Opus 5", "created_at": "2026-09-30T00:00:00Z"},
    {"id": "claude-sonnet-5", "display_name": "Claude Sonnet 5", "created_at": "2026-09-30T00:00:00Z"},
    {"id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6", "created_at": "2026-02-17T00:00:00Z"},
    {"id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-15T00:00:00Z"},
    {"id": "claude-haiku-4-5-20251001", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-15T00:00:00Z"},
)

_BASE62 = string.ascii_letters + string.digits


# ---------------------------------------------------------------------------
# Volatile values: fresh on every answer.
# ---------------------------------------------------------------------------


def fresh_id(prefix: str, length: int = 24) -> str:
    """`prefix` + "01" + random base62, the shape of Anthropic's ids (msg_01..., toolu_01..., req_01...)."""
    return prefix + "01" + "".join(secrets.choice(_BASE62) for _ in range(length - 2))


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request (injected by FakeAnthropic).",
    "authentication_error": "invalid x-api-key (injected by FakeAnthropic).",
    "billing_error": "Your credit balance is too low (injected by FakeAnthropic).",
    "permission_error": "Your API key may not use this resource (injected by FakeAnthropic).",
    "not_found_error": "The requested resource could not be found (injected by FakeAnthropic).",
    "timeout_error": "Request timed out (injected by FakeAnthropic).",
    "conflict_error": "Conflict (injected by FakeAnthropic).",
    "request_too_large": "Request exceeds the maximum allowed number of bytes (injected by FakeAnthropic).",
    "rate_limit_error": "Number of requests has exceeded your rate limit (injected by FakeAnthropic).",
    "api_error": "Internal server error (injected by FakeAnthropic).",
    "overloaded_error": "Overloaded (injected by FakeAnthropic).",
}
_RETRYABLE_STATUSES = {408, 409, 429}


def error_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status (5xx other than 504/529 -> api_error)."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(type_: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


class ApiError(Exception):
    """Raised by handlers to answer with an Anthropic-style error instead of a result."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self, request_id: str) -> dict[str, Any]:
        return error_body(error_type(self.status), self.message, request_id)


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    message: str | None
    retry_after_ms: int | None
    type_: str | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        type_ = self.type_ or error_type(self.status)
        return error_body(type_, self.message or _DEFAULT_MESSAGES.get(type_, f"HTTP {self.status}."), request_id)

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.status == 429:
            headers["retry-after"] = "0"
        retryable = self.status in _RETRYABLE_STATUSES or self.status >= 500
        if retryable and self.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.retry_after_ms)
        return headers


@dataclass(frozen=True)
class MidStreamFailure:
    after_events: int
    message: str = "Overloaded (injected mid-stream by FakeAnthropic)."
    type_: str = "overloaded_error"

    def frame(self) -> bytes:
        return sse_frame(error_body(self.type_, self.message), "error")


@dataclass(frozen=True)
class MidStreamHold:
    """Send `after_events` events, then wait until the test releases the stream (a stalled server)."""

    after_events: int


# ---------------------------------------------------------------------------
# Reading request bodies.
# ---------------------------------------------------------------------------


def block_text(block: Any) -> str:
    """The words of one content block: text, a tool result's content, a tool call's input."""
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_result":
        return content_text(block.get("content"))
    if kind == "tool_use":
        return json.dumps(block.get("input", {}), sort_keys=True)
    return ""


def content_text(content: Any) -> str:
    """Text of a message `content` (or `system`): a string, or a list of blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text for text in (block_text(block) for block in content) if text)
    return str(content)


def plain_text(content: Any) -> str:
    """Only the `text` blocks of a content (what the user typed, without tool results)."""
    if isinstance(content, list):
        return " ".join(block_text(b) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return content_text(content)


_VOLATILE_KEYS = frozenset({"id", "tool_use_id"})


def without_volatile_ids(value: Any) -> Any:
    """`value` without the tool_use ids an earlier answer handed out (so tool loops are stable)."""
    if isinstance(value, dict):
        return {key: without_volatile_ids(item) for key, item in value.items() if key not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [without_volatile_ids(item) for item in value]
    return value


def require_fields(body: Any, *names: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body is not valid JSON.")
    for name in names:
        if body.get(name) is None:
            raise ApiError(400, f"{name}: Field required")
    messages = body.get("messages")
    if "messages" in names and (not isinstance(messages, list) or not messages):
        raise ApiError(400, "messages: at least one message is required")
    max_tokens = body.get("max_tokens")
    if "max_tokens" in names and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise ApiError(400, "max_tokens: Input should be a valid integer greater than or equal to 1")
    return body


def input_tokens(body: dict[str, Any]) -> int:
    """Roughly the request's word count: system, every message (+3 each) and the tool definitions."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    total = count_words(content_text(body.get("system")))
    total += sum(count_words(content_text(m.get("content"))) + TOKENS_PER_MESSAGE for m in messages)
    total += sum(count_words(json.dumps(tool, sort_keys=True)) for tool in tools)
    return max(1, total)


def tool_result_text(messages: list[Any]) -> str | None:
    """The joined tool_result contents of the last message; None unless it holds any."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user" or not isinstance(last.get("content"), list):
        return None
    results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not results:
        return None
    return "; ".join(content_text(b.get("content")) for b in results)


def choose_tool(tools: Any, tool_choice: Any) -> dict[str, Any] | None:
    """The client tool to call: the one `tool_choice` names, else the first; None if tools are off."""
    if not isinstance(tools, list):
        return None
    custom = [t for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str) and "input_schema" in t]
    choice = tool_choice.get("type", "auto") if isinstance(tool_choice, dict) else "auto"
    if choice == "none" or not custom:
        return None
    if choice == "tool":
        wanted = tool_choice.get("name")
        for tool in custom:
            if tool["name"] == wanted:
                return tool
        raise ApiError(400, f"tool_choice: tool '{wanted}' not found in tools")
    return custom[0]


# ---------------------------------------------------------------------------
# What the assistant says: one plan shared by the JSON and streamed encodings.
# ---------------------------------------------------------------------------


@dataclass
class ToolUsePlan:
    name: str
    input: dict[str, Any]

    @property
    def input_json(self) -> str:
        return json.dumps(self.input)


@dataclass
class TurnPlan:
    """The deterministic part of an answer, before ids and encodings are added."""

    input_tokens: int
    pieces: list[str] = field(default_factory=list)
    tool_use: ToolUsePlan | None = None
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        if self.tool_use is not None:
            return max(1, count_words(self.tool_use.input_json))
        return max(1, len(self.pieces))


def apply_stop_sequences(plan: TurnPlan, stop_sequences: Any) -> None:
    """Cut the text at the earliest stop sequence it contains (which is then not part of it)."""
    if not isinstance(stop_sequences, list):
        return
    text = plan.text
    hits = [(text.find(s), s) for s in stop_sequences if isinstance(s, str) and s and s in text]
    if hits:
        index, sequence = min(hits)
        kept = text[:index]
        plan.pieces = split_pieces(kept)
        if len("".join(plan.pieces)) < len(kept):  # keep the whitespace before the stop sequence
            plan.pieces.append(kept[len("".join(plan.pieces)) :])
        plan.stop_reason, plan.stop_sequence = "stop_sequence", sequence


def plan_turn(body: dict[str, Any]) -> TurnPlan:
    messages = body["messages"]
    plan = TurnPlan(input_tokens=input_tokens(body))
    result = tool_result_text(messages)
    tool = None if result is not None else choose_tool(body.get("tools"), body.get("tool_choice"))
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    user_text = plain_text(users[-1].get("content")) if users else ""
    if tool is not None:
        arguments = tool_arguments(tool.get("input_schema"), user_text)
        plan.tool_use = ToolUsePlan(name=tool["name"], input=json.loads(arguments))
        plan.stop_reason = "tool_use"
        return plan
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":  # structured outputs
        plan.pieces = split_pieces(json.dumps(sample_from_schema(output_format.get("schema") or {})))
        return plan
    base = f"Based on the tool result: {result[:TOOL_CONTENT_LIMIT]}" if result is not None else f"echo: {user_text}"
    seed = stable_seed("messages", content_text(body.get("system")), without_volatile_ids(messages))
    reply_words = body.get("reply_words")  # extra_body={"reply_words": N}: a longer answer (benchmarks)
    plan.pieces = reply_pieces(base, seed, reply_words if isinstance(reply_words, int) else None)
    apply_stop_sequences(plan, body.get("stop_sequences"))
    if len(plan.pieces) > body["max_tokens"]:
        plan.pieces = plan.pieces[: body["max_tokens"]]
        plan.stop_reason, plan.stop_sequence = "max_tokens", None
    return plan


# ---------------------------------------------------------------------------
# Encodings: a Message, and the event sequence that streams the same Message.
# ---------------------------------------------------------------------------


def usage_json(input_count: int, output_count: int) -> dict[str, Any]:
    return {
        "input_tokens": input_count,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_count,
        "service_tier": "standard",
    }


def content_blocks(plan: TurnPlan, tool_use_id: str) -> list[dict[str, Any]]:
    if plan.tool_use is not None:
        return [{"type": "tool_use", "id": tool_use_id, "name": plan.tool_use.name, "input": plan.tool_use.input}]
    return [{"type": "text", "text": plan.text}]


def message_json(body: dict[str, Any], plan: TurnPlan, *, started: bool = False) -> dict[str, Any]:
    """The Message; `started=True` gives the `message_start` form (no content, no stop reason yet)."""
    return {
        "id": fresh_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [] if started else content_blocks(plan, fresh_id("toolu_")),
        "stop_reason": None if started else plan.stop_reason,
        "stop_sequence": None if started else plan.stop_sequence,
        "stop_details": None,
        "usage": usage_json(plan.input_tokens, 1 if started else plan.output_tokens),
    }


def block_events(plan: TurnPlan) -> list[tuple[str, dict[str, Any]]]:
    """content_block_start, ping, the deltas, content_block_stop for the single block at index 0."""
    if plan.tool_use is not None:
        start = {"type": "tool_use", "id": fresh_id("toolu_"), "name": plan.tool_use.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in fragments(plan.tool_use.input_json)]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in plan.pieces]
    events = [("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start})]
    events.append(("ping", {"type": "ping"}))
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    return events


def stream_events(body: dict[str, Any], plan: TurnPlan) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs whose accumulation is the Message `message_json` would give."""
    delta = {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence, "stop_details": None}
    usage = {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": plan.output_tokens,
    }
    return [
        ("message_start", {"type": "message_start", "message": message_json(body, plan, started=True)}),
        *block_events(plan),
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
        ("message_stop", {"type": "message_stop"}),
    ]


def model_page(models: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """One page of `GET /v1/models`, honoring `limit`, `after_id` and `before_id` like the API."""
    try:
        limit = int(query.get("limit", DEFAULT_PAGE_LIMIT))
    except ValueError:
        raise ApiError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ApiError(400, f"limit: Input should be between 1 and {MAX_PAGE_LIMIT}")
    ids = [m["id"] for m in models]
    start, stop = 0, len(models)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        stop = ids.index(query["before_id"])
        start = max(start, stop - limit)
    data = models[start:stop][:limit]
    has_more = (start + len(data) < stop) if "before_id" not in query else start > 0
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def model_info(model: dict[str, Any]) -> dict[str, Any]:
    return {"type": "model", "lifecycle": "active", **model}


# ---------------------------------------------------------------------------
# The ASGI app.
# ---------------------------------------------------------------------------


@dataclass
class JsonReply:
    payload: Any
    status: int = 200


@dataclass
class StreamReply:
    frames: list[bytes]


class AnthropicApp:
    """Raw ASGI app answering the subset of /v1 that `FakeAnthropic` documents."""

    def __init__(self, models: Iterable[dict[str, Any]] | None = None) -> None:
        self.models = [model_info(m) for m in (models if models is not None else DEFAULT_MODELS)]
        self.log = RequestLog()
        self.failures = OneShotRules(prefix=API_PREFIX)
        self.stream_failures = OneShotRules(prefix=API_PREFIX)
        self.stream_holds = OneShotRules(prefix=API_PREFIX)
        self.released: asyncio.Event | None = None  # made in the server's loop, on first use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        self.log.append(request)
        request_id = fresh_id("req_")
        headers = {"request-id": request_id}
        failure: InjectedFailure | None = self.failures.take(request.path)
        if failure is not None:
            await send_json(send, failure.status, failure.body(request_id), {**headers, **failure.headers()})
            return
        try:
            reply = self.dispatch(request)
        except ApiError as exc:
            reply = JsonReply(exc.body(request_id), exc.status)
        except Exception as exc:  # a bug in the fake: say so, and tell the SDK not to retry
            message = f"FakeAnthropic failed to handle {request.method} {request.path}: {exc!r}"
            headers["x-should-retry"] = "false"
            reply = JsonReply(error_body("api_error", message, request_id), 500)
        if isinstance(reply, JsonReply):
            await send_json(send, reply.status, reply.payload, headers)
            return
        frames = self._maybe_break(request, reply.frames)
        hold: MidStreamHold | None = self.stream_holds.take(request.path)
        if hold is not None:
            await self._send_held(send, frames, hold, headers)
            return
        await send_stream(send, frames, headers)

    async def _send_held(self, send: Send, frames: list[bytes], hold: MidStreamHold, headers: dict[str, str]) -> None:
        """The first events, then nothing until `release_streams()` (or the server stops)."""
        if self.released is None or self.released.is_set():  # a released hold does not release later ones
            self.released = asyncio.Event()
        released = self.released
        await send_stream(send, frames[: hold.after_events], headers, finish=False)
        await released.wait()
        await send_stream(send, frames[hold.after_events :], None, start=False)

    def _maybe_break(self, request: RecordedRequest, frames: list[bytes]) -> list[bytes]:
        failure: MidStreamFailure | None = self.stream_failures.take(request.path)
        if failure is None:
            return frames
        return [*frames[: failure.after_events], failure.frame()]

    def dispatch(self, request: RecordedRequest) -> JsonReply | StreamReply:
        method, path, body = request.method, request.path.rstrip("/"), request.body
        if method == "POST" and path == "/v1/messages":
            return self.messages(body)
        if method == "POST" and path == "/v1/messages/count_tokens":
            require_fields(body, "model", "messages")
            return JsonReply({"input_tokens": input_tokens(body)})
        if method == "GET" and path == "/v1/models":
            return JsonReply(model_page(self.models, request.query))
        if method == "GET" and path.startswith("/v1/models/"):
            return self.retrieve_model(path[len("/v1/models/") :])
        raise ApiError(404, f"Not Found: {method} {request.path}")

    def messages(self, body: Any) -> JsonReply | StreamReply:
        body = require_fields(body, "model", "max_tokens", "messages")
        plan = plan_turn(body)
        if body.get("stream") is True:
            return StreamReply([sse_frame(data, event) for event, data in stream_events(body, plan)])
        return JsonReply(message_json(body, plan))

    def retrieve_model(self, model_id: str) -> JsonReply:
        for model in self.models:
            if model["id"] == model_id:
                return JsonReply(model)
        raise ApiError(404, f"model: {model_id}")


class FakeAnthropic(RunningFake):
    """A running fake Anthropic server: `with FakeAnthropic() as fake: fake.client().messages.create(...)`."""

    api_prefix = API_PREFIX
    api_key = "sk-ant-test"

    def __init__(self, models: Iterable[dict[str, Any]] | None = None) -> None:
        self.app = AnthropicApp(models)
        self.server = LocalServer(self.app)

    # addresses -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to pass as `Anthropic(base_url=...)`: the server root (the SDK's paths start with /v1)."""
        return self.server.base_url

    @property
    def url(self) -> str:
        """Alias of `base_url`, for symmetry with `FakeOpenAI.url`."""
        return self.base_url

    def client(self, **kwargs: Any) -> Any:
        """A real `anthropic.Anthropic` pointed here (max_retries=0 unless given)."""
        import anthropic

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("api_key", self.api_key)
        return anthropic.Anthropic(base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real `anthropic.AsyncAnthropic` pointed here (max_retries=0 unless given)."""
        import anthropic

        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("api_key", self.api_key)
        return anthropic.AsyncAnthropic(base_url=self.base_url, **kwargs)

    def reset(self) -> None:
        """Forget received requests and drop pending failure injections and holds."""
        self.app.log.clear()
        self.app.failures.clear()
        self.app.stream_failures.clear()
        self.app.stream_holds.clear()

    # failure injection -------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        path: str | None = None,
        message: str | None = None,
        *,
        retry_after_ms: int | None = 1,
        error_type: str | None = None,
    ) -> None:
        """Answer the next `count` requests (to `path`, if given) with an Anthropic error.

        The body is `{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`
        with the type Anthropic uses for `status` (400 invalid_request_error, 401
        authentication_error, 403 permission_error, 404 not_found_error, 413
        request_too_large, 429 rate_limit_error, 500 api_error, 529 overloaded_error)
        unless `error_type` overrides it.  Retryable statuses (408, 409, 429, 5xx) carry
        `retry-after-ms` (1 ms by default; None omits it), which the SDK obeys before
        its own backoff, so its retries do not sleep; 429 also carries `retry-after: 0`.
        """
        self.app.failures.add(InjectedFailure(status, message, retry_after_ms, error_type), count, path)

    def fail_mid_stream(self, after_events: int, path: str | None = None, message: str | None = None) -> None:
        """The next streamed answer (to `path`, if given) sends `after_events` events, then an error event.

        The frame is `event: error` / `{"type": "error", "error": {"type": "overloaded_error", ...}}`
        and the response ends there (HTTP status stays 200; `ping` counts as an event).
        anthropic 2.14.0 raises it from inside the iteration (`for event in stream`,
        `text_stream`, `get_final_message()`, sync and async alike) as the BASE class
        `anthropic.APIStatusError`, not `OverloadedError`: the SDK picks the class from
        the response's status code, which is 200.  The error has `status_code == 200`,
        `type == "overloaded_error"`, `api_message == message` and `body` == the event's JSON.
        """
        failure = MidStreamFailure(after_events) if message is None else MidStreamFailure(after_events, message)
        self.app.stream_failures.add(failure, 1, path)

    def hold_stream(self, after_events: int, path: str | None = None) -> None:
        """The next streamed answer sends `after_events` events, then stalls until `release_streams()`."""
        self.app.stream_holds.add(MidStreamHold(after_events), 1, path)

    def release_streams(self) -> None:
        """Let every held stream go on (from the test's thread: wakes the server's loop)."""
        released = self.app.released
        loop = self.server.loop
        if released is not None and loop is not None:
            loop.call_soon_threadsafe(released.set)
