"""A fake OpenAI API server (raw ASGI) that the real `openai` SDK can talk to.

Design rule: every answer has FRESH ids (uuid based) and the CURRENT timestamp,
while its CONTENT (text, tool arguments, structured output, embeddings) is a
pure function of the request body, less the ids earlier answers handed out
(so a tool loop answers the same words on every run).  That lets tests prove
that a recorder normalizes volatile fields yet reproduces content exactly.

Wire formats follow openai 3.57.0 (`openai/types/...`, `openai/_streaming.py`,
`openai/lib/streaming/...`); `test_fakes.py` validates every payload against
the SDK's pydantic types.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
AZURE_DEPLOYMENT = re.compile(r"^(?:/openai)?(?:/v1)?/deployments/[^/]+")
SYSTEM_FINGERPRINT = "fp_fake0001"
DEFAULT_REPLY_WORDS = 8
DEFAULT_EMBEDDING_DIMENSIONS = 1536
TOOL_CONTENT_LIMIT = 200
ARGUMENT_FRAGMENT_CHARS = 12

DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "gpt-4.1-mini", "object": "model", "created": 1744318173, "owned_by": "system"},
    {"id": "gpt-3.5-turbo-instruct", "object": "model", "created": 1692901427, "owned_by": "system"},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
    {"id": "text-embedding-3-large", "object": "model", "created": 1705953180, "owned_by": "system"},
)

_FILLER_WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "amber", "basalt", "cobalt", "dune", "ember", "fjord",
)  # fmt: skip


# ---------------------------------------------------------------------------
# Volatile values: fresh on every answer.
# ---------------------------------------------------------------------------


def new_id(prefix: str, hex_chars: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:hex_chars]


def unix_now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------

_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (injected by FakeOpenAI)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (injected by FakeOpenAI)."),
    403: ("permission_error", None, "You are not allowed to do this (injected by FakeOpenAI)."),
    404: ("invalid_request_error", "not_found", "Not found (injected by FakeOpenAI)."),
    408: ("timeout_error", None, "Request timed out (injected by FakeOpenAI)."),
    409: ("conflict_error", None, "Conflict (injected by FakeOpenAI)."),
    422: ("invalid_request_error", None, "Unprocessable entity (injected by FakeOpenAI)."),
    429: ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached (injected by FakeOpenAI)."),
}
_SERVER_ERROR_KIND = ("server_error", "server_error", "The server had an error (injected by FakeOpenAI).")
_RETRYABLE_STATUSES = {408, 409, 429}


def error_kind(status: int) -> tuple[str, str | None, str]:
    """(type, code, default message) for an HTTP status, the way OpenAI labels them."""
    if status >= 500:
        return _SERVER_ERROR_KIND
    return _ERROR_KINDS.get(status, ("api_error", None, f"HTTP {status} (injected by FakeOpenAI)."))


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ApiError(Exception):
    """Raised by handlers to answer with an OpenAI-style error instead of a result."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code if code is not None else error_kind(status)[1]

    def body(self) -> dict[str, Any]:
        return error_body(self.message, error_kind(self.status)[0], self.code, self.param)


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    message: str | None
    retry_after_ms: int | None

    def body(self) -> dict[str, Any]:
        type_, code, default_message = error_kind(self.status)
        return error_body(self.message or default_message, type_, code)

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
    after_chunks: int
    message: str = "The server had an error while streaming (injected by FakeOpenAI)."

    def body(self) -> dict[str, Any]:
        return error_body(self.message, "server_error", "server_error")


@dataclass(frozen=True)
class MidStreamHold:
    """Send `after_chunks` events, then wait until the test releases the stream (a stalled server)."""

    after_chunks: int


# ---------------------------------------------------------------------------
# Reading request bodies.
# ---------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """Text of a message `content`: a string, or a list of parts with `text` fields."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if isinstance(part, dict)]
        return " ".join(text for text in texts if isinstance(text, str) and text)
    return str(content)


def count_words(text: str) -> int:
    return len(text.split())


_VOLATILE_KEYS = frozenset({"id", "call_id", "tool_call_id"})


def without_volatile_ids(value: Any) -> Any:
    """`value` without the ids an earlier answer handed out (call ids, item ids).

    A tool loop sends back the fresh ids of the previous answer; seeding content
    from the request minus those ids keeps it the same from one run to the next.
    """
    if isinstance(value, dict):
        return {key: without_volatile_ids(item) for key, item in value.items() if key not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [without_volatile_ids(item) for item in value]
    return value


def stable_seed(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def require(body: Any, key: str) -> Any:
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request.")
    if body.get(key) in (None, "", []):
        raise ApiError(400, f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
    return body[key]


def requested_word_count(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return max(1, value)
    return None


# ---------------------------------------------------------------------------
# Deterministic content.
# ---------------------------------------------------------------------------


def split_pieces(text: str) -> list[str]:
    """Split into word pieces that keep their leading whitespace, so "".join == text."""
    return re.findall(r"\s*\S+", text)


def reply_pieces(base: str, seed: int, word_count: int | None) -> list[str]:
    """`word_count` pieces starting with `base`, padded with seeded filler words."""
    pieces = split_pieces(base)
    target = word_count if word_count is not None else max(DEFAULT_REPLY_WORDS, len(pieces) + 2)
    if target <= len(pieces):
        return pieces[:target]
    rng = random.Random(seed)
    return pieces + [" " + rng.choice(_FILLER_WORDS) for _ in range(target - len(pieces))]


def resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _clamp(value: float, schema: dict[str, Any]) -> float:
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        value = schema["exclusiveMinimum"] + 1
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        value = schema["exclusiveMaximum"] - 1
    return value


_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _sample_string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    if fmt in _STRING_FORMATS:
        return _STRING_FORMATS[fmt]
    if fmt in ("uri", "url"):
        return f"https://example.com/{name}"
    value = f"{name}-value"
    min_length = schema.get("minLength", 0)
    if len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    if "maxLength" in schema:
        value = value[: schema["maxLength"]]
    return value


def _is_null_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def sample_from_schema(schema: Any, root: Any = None, name: str = "value", depth: int = 0) -> Any:
    """A deterministic JSON value that satisfies `schema` (the subset Structured Outputs uses).

    string -> "<name>-value", integer -> 42, number -> 1.5, boolean -> true,
    array -> one item, object -> every property; `$ref`, `anyOf`/`oneOf`
    (first non-null branch), `allOf`, `enum` (first value) and `const` honored.
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 32:
        return None if depth > 32 else f"{name}-value"
    if "$ref" in schema:
        return sample_from_schema(resolve_ref(root, schema["$ref"]), root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = [b for b in schema[key] if not _is_null_schema(b)] or schema[key]
            return sample_from_schema(branches[0], root, name, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = resolve_ref(root, part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                merged.update(part)
        return sample_from_schema(merged, root, name, depth + 1)
    type_ = schema.get("type")
    if isinstance(type_, list):
        type_ = next((t for t in type_ if t != "null"), "null")
    if type_ is None:
        type_ = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if type_ == "object":
        properties = schema.get("properties") or {}
        return {key: sample_from_schema(sub, root, key, depth + 1) for key, sub in properties.items()}
    if type_ == "array":
        if schema.get("prefixItems"):
            return [sample_from_schema(sub, root, name, depth + 1) for sub in schema["prefixItems"]]
        count = max(1, int(schema.get("minItems", 1)))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        item = schema.get("items", {})
        return [sample_from_schema(item, root, name, depth + 1) for _ in range(count)]
    if type_ == "string":
        return _sample_string(schema, name)
    if type_ == "integer":
        return int(_clamp(42, schema))
    if type_ == "number":
        return float(_clamp(1.5, schema))
    if type_ == "boolean":
        return True
    return None


_STRING_CONSTRAINTS = ("enum", "const", "format", "pattern")


def _accepts_text(schema: Any, root: Any, text: str) -> bool:
    """Whether the free text `text` is itself valid for `schema` (a plain string, no format or pattern)."""
    if not isinstance(schema, dict):
        return True
    if "$ref" in schema:
        return _accepts_text(resolve_ref(root, schema["$ref"]), root, text)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return any(_accepts_text(branch, root, text) for branch in schema[key])
    if any(key in schema for key in _STRING_CONSTRAINTS):
        return False
    if len(text) < schema.get("minLength", 0) or len(text) > schema.get("maxLength", len(text)):
        return False
    type_ = schema.get("type")
    return type_ is None or type_ == "string" or (isinstance(type_, list) and "string" in type_)


def tool_arguments(parameters: Any, text: str) -> str:
    """JSON arguments for a tool call: every property sampled, the key one set to `text`.

    The key property is the schema's first required property (else "query"),
    so a search-style tool receives the user's question verbatim; when that
    property cannot hold the text (a number, an enum, a date, a pattern, a
    length limit), it keeps its sampled value, so the arguments always fit.
    """
    schema = parameters if isinstance(parameters, dict) else {}
    properties = schema.get("properties") or {}
    arguments = sample_from_schema(schema) if properties else {}
    if not isinstance(arguments, dict):
        arguments = {}
    required = [key for key in (schema.get("required") or []) if isinstance(key, str)]
    key = required[0] if required else "query"
    if not properties or _accepts_text(properties.get(key), schema, text):
        arguments[key] = text
    return json.dumps(arguments)


def fragments(text: str, size: int = ARGUMENT_FRAGMENT_CHARS) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# ---------------------------------------------------------------------------
# What the assistant says: one plan shared by the JSON and streamed encodings.
# ---------------------------------------------------------------------------


@dataclass
class ToolCallPlan:
    name: str
    arguments: str


@dataclass
class TurnPlan:
    """The deterministic part of an answer, before ids and encodings are added."""

    pieces: list[str] = field(default_factory=list)
    tool_call: ToolCallPlan | None = None
    prompt_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        if self.tool_call is not None:
            return max(1, count_words(self.tool_call.arguments))
        return len(self.pieces)


def _function_tool_name(tool: dict[str, Any]) -> str | None:
    if tool.get("type") != "function":
        return None
    function = tool.get("function")
    if isinstance(function, dict):  # chat completions shape
        return function.get("name")
    return tool.get("name")  # responses shape


def _function_tool_parameters(tool: dict[str, Any]) -> Any:
    function = tool.get("function")
    return function.get("parameters") if isinstance(function, dict) else tool.get("parameters")


def choose_function_tool(tools: Any, tool_choice: Any) -> dict[str, Any] | None:
    """The tool to call: the forced one, else the first function tool; None if tools are off."""
    if tool_choice == "none" or not isinstance(tools, list):
        return None
    function_tools = [t for t in tools if isinstance(t, dict) and _function_tool_name(t)]
    if not function_tools:
        return None
    forced: str | None = None
    if isinstance(tool_choice, dict):
        forced = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    for tool in function_tools:
        if forced is None or _function_tool_name(tool) == forced:
            return tool
    return function_tools[0]


def structured_content(response_format: Any, user_text: str) -> str | None:
    """JSON text for json_schema / json_object formats (chat `response_format` or responses `text.format`)."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema", response_format)  # chat nests it, responses does not
        return json.dumps(sample_from_schema(spec.get("schema") or {}))
    if response_format.get("type") == "json_object":
        return json.dumps({"echo": user_text})
    return None


def tool_results(
    items: list[Any],
    is_result: Callable[[dict[str, Any]], bool],
    text_of: Callable[[dict[str, Any]], str],
    is_user: Callable[[dict[str, Any]], bool],
) -> str | None:
    """The tool results the model is answering, joined; None unless the last item is one.

    Every result after the last user turn counts, so parallel calls are all quoted.
    """
    items = [item for item in items if isinstance(item, dict)]
    if not items or not is_result(items[-1]):
        return None
    start = max((index for index, item in enumerate(items) if is_user(item)), default=-1) + 1
    return "; ".join(text_of(item) for item in items[start:] if is_result(item))


def plan_turn(
    *,
    user_text: str,
    tool_output: str | None,
    tools: Any,
    tool_choice: Any,
    response_format: Any,
    word_count: int | None,
    seed: int,
    prompt_tokens: int,
) -> TurnPlan:
    plan = TurnPlan(prompt_tokens=prompt_tokens)
    tool = None if tool_output is not None else choose_function_tool(tools, tool_choice)
    if tool is not None:
        name = _function_tool_name(tool) or "tool"
        plan.tool_call = ToolCallPlan(name=name, arguments=tool_arguments(_function_tool_parameters(tool), user_text))
        return plan
    structured = structured_content(response_format, user_text)
    if structured is not None:
        plan.pieces = split_pieces(structured)
        return plan
    if tool_output is not None:
        base = f"Based on the tool result: {tool_output[:TOOL_CONTENT_LIMIT]}"
    else:
        base = f"echo: {user_text}"
    plan.pieces = reply_pieces(base, seed, word_count)
    return plan


def plan_chat_turn(body: dict[str, Any]) -> TurnPlan:
    messages = require(body, "messages")
    require(body, "model")
    if not isinstance(messages, list):
        raise ApiError(400, "'messages' must be an array.", param="messages")
    user_texts = [content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    tool_output = tool_results(
        messages,
        is_result=lambda m: m.get("role") == "tool",
        text_of=lambda m: content_text(m.get("content")),
        is_user=lambda m: m.get("role") == "user",
    )
    return plan_turn(
        user_text=user_texts[-1] if user_texts else "",
        tool_output=tool_output,
        tools=body.get("tools"),
        tool_choice=body.get("tool_choice"),
        response_format=body.get("response_format"),
        word_count=requested_word_count(body.get("max_completion_tokens"), body.get("max_tokens")),
        seed=stable_seed("chat", without_volatile_ids(messages)),
        prompt_tokens=sum(count_words(content_text(m.get("content"))) + 3 for m in messages if isinstance(m, dict)),
    )


def _responses_input_items(input_: Any) -> list[dict[str, Any]]:
    if isinstance(input_, str):
        return [{"role": "user", "content": input_}]
    if isinstance(input_, list):
        return [item for item in input_ if isinstance(item, dict)]
    raise ApiError(400, "'input' must be a string or an array of items.", param="input")


def plan_responses_turn(body: dict[str, Any]) -> TurnPlan:
    require(body, "model")
    items = _responses_input_items(require(body, "input"))
    user_texts = [content_text(i.get("content")) for i in items if i.get("role") == "user"]
    tool_output = tool_results(
        items,
        is_result=lambda i: i.get("type") == "function_call_output",
        text_of=lambda i: content_text(i.get("output")),
        is_user=lambda i: i.get("role") == "user",
    )
    text_config = body.get("text") if isinstance(body.get("text"), dict) else {}
    instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else ""
    prompt_tokens = count_words(instructions) + sum(
        count_words(content_text(i.get("content") or i.get("output") or i.get("arguments"))) + 3 for i in items
    )
    return plan_turn(
        user_text=user_texts[-1] if user_texts else "",
        tool_output=tool_output,
        tools=body.get("tools"),
        tool_choice=body.get("tool_choice"),
        response_format=text_config.get("format"),
        word_count=requested_word_count(body.get("max_output_tokens")),
        seed=stable_seed("responses", instructions, without_volatile_ids(body.get("input"))),
        prompt_tokens=prompt_tokens,
    )


# ---------------------------------------------------------------------------
# Chat completions.
# ---------------------------------------------------------------------------


def completion_usage(plan: TurnPlan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion_json(body: dict[str, Any], plan: TurnPlan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if plan.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": new_id("call_"),
                "type": "function",
                "function": {"name": plan.tool_call.name, "arguments": plan.tool_call.arguments},
            }
        ]
        finish_reason = "tool_calls"
    else:
        message["content"] = plan.text
        finish_reason = "stop"
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": completion_usage(plan),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def chat_completion_chunks(body: dict[str, Any], plan: TurnPlan) -> list[dict[str, Any]]:
    """Role chunk, one chunk per word (or argument fragment), finish chunk, optional usage chunk."""
    include_usage = _include_usage(body)
    envelope: dict[str, Any] = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": unix_now(),
        "model": body["model"],
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        envelope["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**envelope, "choices": [choice]}

    chunks: list[dict[str, Any]] = []
    if plan.tool_call is not None:
        call = {
            "index": 0,
            "id": new_id("call_"),
            "type": "function",
            "function": {"name": plan.tool_call.name, "arguments": ""},
        }
        chunks.append(chunk({"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}))
        for fragment in fragments(plan.tool_call.arguments):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
        chunks.append(chunk({}, "tool_calls"))
    else:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(chunk({"content": piece}) for piece in plan.pieces)
        chunks.append(chunk({}, "stop"))
    if include_usage:
        chunks.append({**envelope, "choices": [], "usage": completion_usage(plan)})
    return chunks


# ---------------------------------------------------------------------------
# Legacy text completions.
# ---------------------------------------------------------------------------


def completion_prompts(prompt: Any) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(str(p) for p in prompt)]
    if isinstance(prompt, list) and prompt:
        return [p if isinstance(p, str) else " ".join(str(t) for t in p) for p in prompt]
    raise ApiError(400, "'prompt' must be a string, an array of strings or of tokens.", param="prompt")


def completion_plans(body: dict[str, Any]) -> list[TurnPlan]:
    require(body, "model")
    prompts = completion_prompts(require(body, "prompt"))
    word_count = requested_word_count(body.get("max_tokens"))
    return [
        TurnPlan(
            pieces=reply_pieces(f"echo: {prompt}", stable_seed("completions", prompt), word_count),
            prompt_tokens=count_words(prompt),
        )
        for prompt in prompts
    ]


def _sum_usage(plans: Sequence[TurnPlan]) -> dict[str, Any]:
    prompt_tokens = sum(p.prompt_tokens for p in plans)
    completion_tokens = sum(p.completion_tokens for p in plans)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def text_completion_json(body: dict[str, Any], plans: Sequence[TurnPlan]) -> dict[str, Any]:
    return {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": unix_now(),
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {"text": plan.text, "index": index, "logprobs": None, "finish_reason": "stop"}
            for index, plan in enumerate(plans)
        ],
        "usage": _sum_usage(plans),
    }


def text_completion_chunks(body: dict[str, Any], plans: Sequence[TurnPlan]) -> list[dict[str, Any]]:
    include_usage = _include_usage(body)
    envelope: dict[str, Any] = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": unix_now(),
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if include_usage:
        envelope["usage"] = None

    def chunk(index: int, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return {**envelope, "choices": [choice]}

    chunks = [chunk(index, piece) for index, plan in enumerate(plans) for piece in plan.pieces]
    chunks.extend(chunk(index, "", "stop") for index in range(len(plans)))
    if include_usage:
        chunks.append({**envelope, "choices": [], "usage": _sum_usage(plans)})
    return chunks


# ---------------------------------------------------------------------------
# Embeddings.
# ---------------------------------------------------------------------------


def embedding_inputs(input_: Any) -> list[str]:
    """Each embedding input as a stable string key (token arrays keep their numbers)."""
    if isinstance(input_, str):
        items: list[Any] = [input_]
    elif isinstance(input_, list) and input_ and all(isinstance(t, int) for t in input_):
        items = [input_]
    elif isinstance(input_, list):
        items = list(input_)
    else:
        raise ApiError(400, "'input' must be a string or an array.", param="input")
    keys = []
    for item in items:
        if item == "" or item == []:
            raise ApiError(400, "'$.input' is invalid: inputs must not be empty.", param="input")
        keys.append(item if isinstance(item, str) else json.dumps(item))
    return keys


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit-length vector seeded by sha256(text), every value exactly representable as float32.

    Exact float32 values mean the `float` and `base64` encodings decode to
    identical Python floats.
    """
    rng = random.Random(hashlib.sha256(text.encode("utf-8")).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in values))))


def base64_float32(values: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def embedding_dimensions(body: dict[str, Any]) -> int:
    dimensions = body.get("dimensions")
    if dimensions is None:
        return 3072 if "3-large" in str(body.get("model")) else DEFAULT_EMBEDDING_DIMENSIONS
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise ApiError(400, "'dimensions' must be a positive integer.", param="dimensions")
    return dimensions


def embeddings_json(body: dict[str, Any]) -> dict[str, Any]:
    require(body, "model")
    keys = embedding_inputs(require(body, "input"))
    dimensions = embedding_dimensions(body)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, key in enumerate(keys):
        vector = embedding_vector(key, dimensions)
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": base64_float32(vector) if as_base64 else vector,
            }
        )
    tokens = sum(max(1, count_words(key)) for key in keys)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# ---------------------------------------------------------------------------
# Responses API.
# ---------------------------------------------------------------------------


@dataclass
class ResponseIds:
    """The volatile ids of one Responses answer, shared by its JSON and its event stream."""

    response_id: str = field(default_factory=lambda: new_id("resp_", 48))
    item_id: str = field(default_factory=lambda: new_id("msg_", 48))
    function_item_id: str = field(default_factory=lambda: new_id("fc_", 48))
    call_id: str = field(default_factory=lambda: new_id("call_"))
    created_at: int = field(default_factory=unix_now)


def responses_usage(plan: TurnPlan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": plan.prompt_tokens + plan.completion_tokens,
    }


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(ids: ResponseIds, text: str, status: str) -> dict[str, Any]:
    content = [output_text_part(text)] if status == "completed" else []
    return {"id": ids.item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(ids: ResponseIds, call: ToolCallPlan, status: str) -> dict[str, Any]:
    return {
        "id": ids.function_item_id,
        "type": "function_call",
        "status": status,
        "call_id": ids.call_id,
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
    }


def final_output(ids: ResponseIds, plan: TurnPlan) -> list[dict[str, Any]]:
    if plan.tool_call is not None:
        return [function_call_item(ids, plan.tool_call, "completed")]
    return [message_item(ids, plan.text, "completed")]


def response_object(body: dict[str, Any], ids: ResponseIds, plan: TurnPlan, *, completed: bool) -> dict[str, Any]:
    text_config = body.get("text") if isinstance(body.get("text"), dict) else {}
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": ids.response_id,
        "object": "response",
        "created_at": ids.created_at,
        "status": "completed" if completed else "in_progress",
        "background": bool(body.get("background") or False),
        "completed_at": unix_now() if completed else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": final_output(ids, plan) if completed else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {
            "format": text_config.get("format") or {"type": "text"},
            "verbosity": text_config.get("verbosity") or "medium",
        },
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": responses_usage(plan) if completed else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def response_events(body: dict[str, Any], ids: ResponseIds, plan: TurnPlan) -> list[dict[str, Any]]:
    """The event sequence the Responses API streams, numbered from 0."""
    events: list[dict[str, Any]] = []

    def emit(type_: str, **fields: Any) -> None:
        events.append({"type": type_, "sequence_number": len(events), **fields})

    in_progress = response_object(body, ids, plan, completed=False)
    emit("response.created", response=in_progress)
    emit("response.in_progress", response=in_progress)
    if plan.tool_call is not None:
        item_id, where = ids.function_item_id, {"output_index": 0}
        emit("response.output_item.added", item=function_call_item(ids, plan.tool_call, "in_progress"), **where)
        for fragment in fragments(plan.tool_call.arguments):
            emit("response.function_call_arguments.delta", item_id=item_id, delta=fragment, **where)
        emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            arguments=plan.tool_call.arguments,
            **where,
        )
        emit("response.output_item.done", item=function_call_item(ids, plan.tool_call, "completed"), **where)
    else:
        where = {"item_id": ids.item_id, "output_index": 0, "content_index": 0}
        emit("response.output_item.added", item=message_item(ids, "", "in_progress"), output_index=0)
        emit("response.content_part.added", part=output_text_part(""), **where)
        for piece in plan.pieces:
            emit("response.output_text.delta", delta=piece, logprobs=[], **where)
        emit("response.output_text.done", text=plan.text, logprobs=[], **where)
        emit("response.content_part.done", part=output_text_part(plan.text), **where)
        emit("response.output_item.done", item=message_item(ids, plan.text, "completed"), output_index=0)
    emit("response.completed", response=response_object(body, ids, plan, completed=True))
    return events


# ---------------------------------------------------------------------------
# The ASGI app.
# ---------------------------------------------------------------------------


@dataclass
class JsonReply:
    payload: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """SSE frames; `error_event` names the SSE event used if a mid-stream failure is injected."""

    frames: list[bytes]
    error_event: str | None = None


def _stream_requested(body: Any) -> bool:
    return isinstance(body, dict) and body.get("stream") is True


class OpenAIApp:
    """Raw ASGI app answering the subset of /v1 that `FakeOpenAI` documents."""

    def __init__(self, models: Iterable[dict[str, Any]] | None = None) -> None:
        self.models = [dict(m) for m in (models if models is not None else DEFAULT_MODELS)]
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
        headers = {"x-request-id": new_id("req_", 32), "openai-processing-ms": "1"}
        failure: InjectedFailure | None = self.failures.take(request.path)
        if failure is not None:
            await send_json(send, failure.status, failure.body(), {**headers, **failure.headers()})
            return
        try:
            reply = self.dispatch(request)
        except ApiError as exc:
            reply = JsonReply(exc.body(), exc.status)
        except Exception as exc:  # a bug in the fake: say so, and tell the SDK not to retry
            message = f"FakeOpenAI failed to handle {request.method} {request.path}: {exc!r}"
            reply = JsonReply(error_body(message, "server_error", "fake_bug"), 500, {"x-should-retry": "false"})
        if isinstance(reply, StreamReply):
            frames = self._maybe_break(request, reply)
            hold: MidStreamHold | None = self.stream_holds.take(request.path)
            if hold is not None:
                await self._send_held(send, frames, hold, headers)
                return
            await send_stream(send, frames, headers)
        else:
            await send_json(send, reply.status, reply.payload, {**headers, **reply.headers})

    async def _send_held(self, send: Send, frames: list[bytes], hold: MidStreamHold, headers: dict[str, str]) -> None:
        """The first events, then nothing until `release_streams()` (or the server stops)."""
        if self.released is None:
            self.released = asyncio.Event()
        released = self.released
        await send_stream(send, frames[: hold.after_chunks], headers, finish=False)
        await released.wait()
        await send_stream(send, frames[hold.after_chunks :], None, start=False)

    def _maybe_break(self, request: RecordedRequest, reply: StreamReply) -> list[bytes]:
        failure: MidStreamFailure | None = self.stream_failures.take(request.path)
        if failure is None:
            return reply.frames
        return [*reply.frames[: failure.after_chunks], sse_frame(failure.body(), reply.error_event)]

    def dispatch(self, request: RecordedRequest) -> JsonReply | StreamReply:
        method, body = request.method, request.body
        path = AZURE_DEPLOYMENT.sub(API_PREFIX, request.path)  # Azure names the deployment in the path
        if method == "POST" and path == "/v1/chat/completions":
            return self.chat_completions(body)
        if method == "POST" and path == "/v1/completions":
            return self.completions(body)
        if method == "POST" and path == "/v1/embeddings":
            return JsonReply(embeddings_json(body if isinstance(body, dict) else {}))
        if method == "POST" and path == "/v1/responses":
            return self.responses(body)
        if method == "GET" and path == "/v1/models":
            return JsonReply({"object": "list", "data": self.models})
        if method == "GET" and path.startswith("/v1/models/"):
            return self.retrieve_model(path[len("/v1/models/") :])
        raise ApiError(404, f"Unknown request URL: {method} {path}.", code="unknown_url")

    def chat_completions(self, body: Any) -> JsonReply | StreamReply:
        plan = plan_chat_turn(body)
        if _stream_requested(body):
            frames = [sse_frame(chunk) for chunk in chat_completion_chunks(body, plan)]
            return StreamReply([*frames, sse_frame("[DONE]")])
        return JsonReply(chat_completion_json(body, plan))

    def completions(self, body: Any) -> JsonReply | StreamReply:
        plans = completion_plans(body)
        if _stream_requested(body):
            frames = [sse_frame(chunk) for chunk in text_completion_chunks(body, plans)]
            return StreamReply([*frames, sse_frame("[DONE]")])
        return JsonReply(text_completion_json(body, plans))

    def responses(self, body: Any) -> JsonReply | StreamReply:
        plan = plan_responses_turn(body)
        ids = ResponseIds()
        if _stream_requested(body):
            events = response_events(body, ids, plan)
            return StreamReply([sse_frame(event, event["type"]) for event in events], error_event="error")
        return JsonReply(response_object(body, ids, plan, completed=True))

    def retrieve_model(self, model_id: str) -> JsonReply:
        for model in self.models:
            if model["id"] == model_id:
                return JsonReply(model)
        raise ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")


class FakeOpenAI(RunningFake):
    """A running fake OpenAI server: `with FakeOpenAI() as fake: OpenAI(base_url=fake.url, ...)`."""

    api_prefix = API_PREFIX
    api_key = "sk-test"

    def __init__(self, models: Iterable[dict[str, Any]] | None = None) -> None:
        self.app = OpenAIApp(models)
        self.server = LocalServer(self.app)

    # addresses -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Server root, without the /v1 prefix."""
        return self.server.base_url

    @property
    def url(self) -> str:
        """What to pass as `OpenAI(base_url=...)`."""
        return self.server.base_url + API_PREFIX

    def client(self, **kwargs: Any) -> Any:
        """A real `openai.OpenAI` pointed here (max_retries=0 unless given)."""
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.url, api_key=self.api_key, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real `openai.AsyncOpenAI` pointed here (max_retries=0 unless given)."""
        import openai

        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.url, api_key=self.api_key, **kwargs)

    def reset(self) -> None:
        """Forget received requests and drop pending failure injections."""
        self.app.log.clear()
        self.app.failures.clear()
        self.app.stream_failures.clear()

    # failure injection -------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        path: str | None = None,
        message: str | None = None,
        *,
        retry_after_ms: int | None = 1,
    ) -> None:
        """Answer the next `count` requests (to `path`, if given) with an OpenAI error.

        Retryable statuses carry `retry-after-ms` (1 ms by default; None omits
        it) so the SDK's own retries do not back off for half a second; 429
        also carries `retry-after: 0`.
        """
        self.app.failures.add(InjectedFailure(status, message, retry_after_ms), count, path)

    def hold_stream(self, after_chunks: int, path: str | None = None) -> None:
        """The next streamed answer sends `after_chunks` events, then stalls until `release_streams()`."""
        self.app.stream_holds.add(MidStreamHold(after_chunks), 1, path)

    def release_streams(self) -> None:
        """Let every held stream go on (from the test's thread: wakes the server's loop)."""
        released = self.app.released
        loop = self.server.loop
        if released is not None and loop is not None:
            loop.call_soon_threadsafe(released.set)

    def fail_mid_stream(self, after_chunks: int, path: str | None = None, message: str | None = None) -> None:
        """The next streamed answer (to `path`, if given) sends `after_chunks` events, then an error event."""
        failure = MidStreamFailure(after_chunks) if message is None else MidStreamFailure(after_chunks, message)
        self.app.stream_failures.add(failure, 1, path)
