"""A fake Ollama server (raw ASGI) that the real `ollama` SDK can talk to.

Point `ollama.Client(host=fake.base_url)` (or `ollama.AsyncClient`) at it, or
use `fake.client()` / `fake.async_client()`; the SDK adds the `/api` paths.

Design rule, as in `openai_app`: every answer has a FRESH `created_at` (on
every streamed line), fresh `*_duration` timings and a fresh `expires_at`,
while its CONTENT (text, thinking, tool-call arguments, structured output,
embeddings, token counts, pull progress) is a pure function of the request
body.  That lets tests prove that a recorder normalizes volatile fields yet
reproduces content exactly.

Served, as Ollama serves them:

* `POST /api/chat`, `POST /api/generate`: one JSON object with `"stream": false`,
  otherwise (Ollama's default when `stream` is absent) NDJSON
  (`application/x-ndjson`, one object a line), the last line `done: true`
  with `done_reason` and the counters and durations;
* `POST /api/embed` (`embeddings`, one vector per input) and the legacy
  `POST /api/embeddings` (`embedding`);
* `GET /api/tags`, `GET /api/ps`, `POST /api/show`, `POST /api/pull` (NDJSON
  progress, or `{"status": "success"}` with `"stream": false`), `GET /api/version`
  and `GET /` ("Ollama is running").

Errors are Ollama's `{"error": "..."}` with an HTTP status: an unknown model
is 404 `model 'x' not found`.  The SDK raises them as `ollama.ResponseError`
(`.error` the message, `.status_code` the status).  An error inside a stream
is a line `{"error": "..."}` after a 200, which the SDK raises from the
iteration with `status_code == -1`.

Wire formats follow ollama-python 0.6.3 (`ollama/_client.py`, `ollama/_types.py`).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .openai_app import (
    TOOL_CONTENT_LIMIT,
    count_words,
    embedding_vector,
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
)

API_PREFIX = "/api"
NDJSON = "application/x-ndjson"
SERVER_VERSION = "0.12.6"
DEFAULT_KEEP_ALIVE_SECONDS = 300.0
TOKENS_PER_MESSAGE = 3
VOCABULARY_SIZE = 128_000
NEVER_EXPIRES_SECONDS = 2**63 // 10**9  # Go's max time.Duration, what a negative keep_alive means


# ---------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """One installed model: what `/api/tags`, `/api/ps` and `/api/show` say about it."""

    name: str
    family: str = "llama"
    parameter_size: str = "3.2B"
    parameter_count: int = 3_212_749_888
    quantization_level: str = "Q4_K_M"
    size: int = 2_019_393_189
    context_length: int = 131_072
    embedding_length: int = 3072
    capabilities: tuple[str, ...] = ("completion", "tools")
    modified_at: str = "2025-05-04T17:37:44.706015396-07:00"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode("utf-8")).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def tag_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.name,
            "modified_at": self.modified_at,
            "size": self.size,
            "digest": self.digest,
            "details": self.details(),
        }

    def layers(self) -> list[tuple[str, int]]:
        """(sha256 hex, size) of the blobs a pull downloads: weights, template, license, params."""
        sizes = [self.size, 1_429, 7_711, 96]
        return [(hashlib.sha256(f"{self.name}\0layer{i}".encode()).hexdigest(), n) for i, n in enumerate(sizes)]


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("llama3.2:latest"),
    ModelSpec(
        "qwen3:0.6b",
        family="qwen3",
        parameter_size="751.63M",
        parameter_count=751_632_384,
        size=522_653_767,
        context_length=40_960,
        embedding_length=1024,
        capabilities=("completion", "tools", "thinking"),
        modified_at="2025-06-11T09:12:03.118203114-07:00",
    ),
    ModelSpec(
        "nomic-embed-text:latest",
        family="nomic-bert",
        parameter_size="137M",
        parameter_count=136_727_040,
        quantization_level="F16",
        size=274_302_450,
        context_length=2048,
        embedding_length=768,
        capabilities=("embedding",),
        modified_at="2025-03-02T21:40:18.530948726-08:00",
    ),
    ModelSpec(
        "all-minilm:latest",
        family="bert",
        parameter_size="23M",
        parameter_count=22_565_376,
        quantization_level="F16",
        size=45_960_996,
        context_length=512,
        embedding_length=384,
        capabilities=("embedding",),
        modified_at="2025-03-02T21:41:55.004417853-08:00",
    ),
)


def canonical_name(name: str) -> str:
    """Ollama's full model name: lower case, with the implicit `:latest` tag."""
    name = name.strip().lower()
    if name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def pulled_spec(name: str) -> ModelSpec:
    """A model that `pull` installs: sizes derived from its name, so a pull is the same every run."""
    seed = stable_seed("pull", name)
    embedding = "embed" in name or "minilm" in name
    family = re.sub(r"[^a-z0-9]+", "", name.rsplit("/", 1)[-1].split(":")[0]) or "llama"
    return ModelSpec(
        name,
        family=family,
        parameter_size="1.2B",
        parameter_count=1_235_814_400,
        size=100_000_000 + seed % 3_900_000_000,
        context_length=8192 if not embedding else 512,
        embedding_length=2048 if not embedding else 384,
        capabilities=("embedding",) if embedding else ("completion", "tools"),
        modified_at="2025-07-01T00:00:00.000000000Z",
    )


# ---------------------------------------------------------------------------
# Volatile values: fresh on every answer.
# ---------------------------------------------------------------------------


def created_at_now() -> str:
    """The current UTC time as Ollama writes `created_at` (nanoseconds, `Z`)."""
    seconds, fraction = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def expires_at(keep_alive_seconds: float) -> str:
    """Now plus `keep_alive`, in local time with its offset, as `/api/ps` writes it."""
    now = datetime.datetime.now().astimezone()
    seconds = NEVER_EXPIRES_SECONDS if keep_alive_seconds < 0 else keep_alive_seconds
    try:
        when = now + datetime.timedelta(seconds=seconds)
    except OverflowError:
        when = now.replace(year=2318)
    return when.isoformat(timespec="microseconds")


def timings(prompt_tokens: int, eval_tokens: int) -> dict[str, int]:
    """Counters (from the request) and durations in nanoseconds (different on every answer)."""
    rng = random.Random()
    load = rng.randint(2_000_000, 60_000_000)
    prompt = max(1, prompt_tokens) * rng.randint(300_000, 900_000)
    evaluation = max(1, eval_tokens) * rng.randint(8_000_000, 20_000_000)
    return {
        "total_duration": load + prompt + evaluation + rng.randint(500_000, 5_000_000),
        "load_duration": load,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt,
        "eval_count": eval_tokens,
        "eval_duration": evaluation,
    }


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: Any) -> float:
    """`keep_alive` in seconds: a number of seconds or a Go duration ("5m", "1h30m", "-1s")."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_SECONDS
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _DURATION_PART.findall(body)
        if parts and "".join(number + unit for number, unit in parts) == body:
            return sign * sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    raise ApiError(400, f'time: invalid duration "{value}"')


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


class ApiError(Exception):
    """Raised by handlers to answer `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(name: str) -> ApiError:
    return ApiError(404, f"model '{name}' not found")


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    message: str | None

    def body(self) -> dict[str, Any]:
        default = _DEFAULT_MESSAGES.get(self.status, f"HTTP {self.status}")
        return {"error": self.message or f"{default} (injected by FakeOllama)"}


@dataclass(frozen=True)
class MidStreamFailure:
    after_lines: int
    message: str = "an error was encountered while running the model: unexpected EOF (injected by FakeOllama)"


@dataclass(frozen=True)
class MidStreamHold:
    """Send `after_lines` lines, then wait until the test releases the stream (a stalled server)."""

    after_lines: int


# ---------------------------------------------------------------------------
# Reading request bodies.
# ---------------------------------------------------------------------------


def require_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid request body")
    return body


def model_field(body: dict[str, Any]) -> str:
    """The request's model name (`model`, or the legacy `name`); 400 when missing."""
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    return name


def stream_requested(body: dict[str, Any]) -> bool:
    """Ollama streams unless told `"stream": false`."""
    return body.get("stream") is not False


def options_of(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("options")
    return options if isinstance(options, dict) else {}


def message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    return content if isinstance(content, str) else ""


def token_ids(text: str) -> list[int]:
    """Stable fake token ids, one per word (generate's `context`)."""
    return [stable_seed("token", word) % VOCABULARY_SIZE for word in text.split()]


def tool_function(tool: Any) -> dict[str, Any] | None:
    function = tool.get("function") if isinstance(tool, dict) else None
    return function if isinstance(function, dict) and isinstance(function.get("name"), str) else None


def choose_tool(tools: Any, user_text: str) -> dict[str, Any] | None:
    """The function to call: the first whose name the user's words mention, else the first one."""
    functions = [f for f in (tool_function(t) for t in tools or []) if f is not None]
    if not functions:
        return None
    words = user_text.lower()
    for function in functions:
        if function["name"].lower() in words:
            return function
    return functions[0]


def tool_results(messages: list[Any]) -> str | None:
    """The tool results the model answers (every `tool` message after the last user turn), or None."""
    items = [m for m in messages if isinstance(m, dict)]
    if not items or items[-1].get("role") != "tool":
        return None
    start = max((i for i, m in enumerate(items) if m.get("role") == "user"), default=-1) + 1
    return "; ".join(message_text(m) for m in items[start:] if m.get("role") == "tool")


# ---------------------------------------------------------------------------
# What the model says: one plan shared by the JSON and NDJSON encodings.
# ---------------------------------------------------------------------------


@dataclass
class ToolCallPlan:
    name: str
    arguments: dict[str, Any]


@dataclass
class TurnPlan:
    """The deterministic part of an answer, before timestamps and durations are added."""

    prompt_tokens: int
    pieces: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallPlan] = field(default_factory=list)
    done_reason: str = "stop"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def thinking_text(self) -> str:
        return "".join(self.thinking)

    @property
    def eval_tokens(self) -> int:
        tool_tokens = sum(count_words(json.dumps(call.arguments)) + 2 for call in self.tool_calls)
        return max(1, len(self.pieces) + len(self.thinking) + tool_tokens)


def structured_text(format_: Any, user_text: str) -> str | None:
    """JSON text for `format`: "json" -> an object echoing the prompt, a schema -> a sample of it."""
    if format_ == "json":
        return json.dumps({"echo": user_text})
    if isinstance(format_, dict):
        return json.dumps(sample_from_schema(format_))
    return None


def apply_limits(plan: TurnPlan, options: dict[str, Any]) -> None:
    """`options.stop` cuts the text before the first stop string; `num_predict` caps the words."""
    stops = options.get("stop")
    if isinstance(stops, list):
        text = plan.text
        hits = [text.find(s) for s in stops if isinstance(s, str) and s and s in text]
        if hits:
            kept = text[: min(hits)]
            plan.pieces = split_pieces(kept)
            if len("".join(plan.pieces)) < len(kept):  # keep whitespace before the stop string
                plan.pieces.append(kept[len("".join(plan.pieces)) :])
    limit = options.get("num_predict")
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(plan.pieces):
        plan.pieces = plan.pieces[:limit]
        plan.done_reason = "length"


def plan_text(
    plan: TurnPlan,
    *,
    base: str,
    seed: int,
    format_: Any,
    user_text: str,
    think: Any,
    options: dict[str, Any],
) -> TurnPlan:
    if think not in (None, False):
        plan.thinking = reply_pieces(f"Thinking about: {user_text}", seed ^ 1, None)
    structured = structured_text(format_, user_text)
    if structured is not None:
        plan.pieces = split_pieces(structured)
        return plan
    reply_words = options.get("reply_words")  # options={"reply_words": N}: a longer answer (benchmarks)
    plan.pieces = reply_pieces(base, seed, reply_words if isinstance(reply_words, int) else None)
    apply_limits(plan, options)
    return plan


def chat_prompt_tokens(messages: list[Any], tools: Any) -> int:
    total = sum(count_words(message_text(m)) + TOKENS_PER_MESSAGE for m in messages)
    total += sum(count_words(json.dumps(t, sort_keys=True)) for t in tools or [])
    return max(1, total)


def plan_chat(body: dict[str, Any], messages: list[Any]) -> TurnPlan:
    tools = body.get("tools") if isinstance(body.get("tools"), list) else []
    plan = TurnPlan(prompt_tokens=chat_prompt_tokens(messages, tools))
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    user_text = message_text(users[-1]) if users else ""
    result = tool_results(messages)
    function = None if result is not None else choose_tool(tools, user_text)
    if function is not None:
        arguments = json.loads(tool_arguments(function.get("parameters"), user_text))
        plan.tool_calls = [ToolCallPlan(function["name"], arguments)]
        return plan
    base = f"Based on the tool result: {result[:TOOL_CONTENT_LIMIT]}" if result is not None else f"echo: {user_text}"
    return plan_text(
        plan,
        base=base,
        seed=stable_seed("chat", messages),
        format_=body.get("format"),
        user_text=user_text,
        think=body.get("think"),
        options=options_of(body),
    )


def plan_generate(body: dict[str, Any]) -> TurnPlan:
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    system = body.get("system") if isinstance(body.get("system"), str) else ""
    context = body.get("context") if isinstance(body.get("context"), list) else []
    plan = TurnPlan(prompt_tokens=max(1, count_words(system) + count_words(prompt) + len(context) + 1))
    return plan_text(
        plan,
        base=f"echo: {prompt}",
        seed=stable_seed("generate", system, prompt, context, body.get("suffix")),
        format_=body.get("format"),
        user_text=prompt,
        think=body.get("think"),
        options=options_of(body),
    )


# ---------------------------------------------------------------------------
# Encodings: the JSON answer, and the NDJSON lines that stream the same answer.
# ---------------------------------------------------------------------------


def assistant_message(content: str, thinking: str = "", tool_calls: list[ToolCallPlan] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = [
            {"function": {"index": index, "name": call.name, "arguments": call.arguments}}
            for index, call in enumerate(tool_calls)
        ]
    return message


def final_fields(plan: TurnPlan) -> dict[str, Any]:
    return {"done_reason": plan.done_reason, "done": True, **timings(plan.prompt_tokens, plan.eval_tokens)}


def chat_json(model: str, plan: TurnPlan) -> dict[str, Any]:
    message = assistant_message(plan.text, plan.thinking_text, plan.tool_calls)
    return {"model": model, "created_at": created_at_now(), "message": message, **final_fields(plan)}


def chat_lines(model: str, plan: TurnPlan) -> list[dict[str, Any]]:
    """Thinking pieces, then content pieces (or one line with the tool calls), then the `done` line."""
    lines = [assistant_message("", thinking=piece) for piece in plan.thinking]
    lines += [assistant_message(piece) for piece in plan.pieces]
    if plan.tool_calls:
        lines.append(assistant_message("", tool_calls=plan.tool_calls))
    chunks: list[dict[str, Any]] = [
        {"model": model, "created_at": None, "message": message, "done": False} for message in lines
    ]
    chunks.append({"model": model, "created_at": None, "message": assistant_message(""), **final_fields(plan)})
    return chunks


def generate_context(body: dict[str, Any], plan: TurnPlan) -> list[int]:
    context = [t for t in body.get("context") or [] if isinstance(t, int)]
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    return [*context, *token_ids(prompt), *token_ids(plan.text)]


def generate_json(model: str, body: dict[str, Any], plan: TurnPlan) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": model, "created_at": created_at_now(), "response": plan.text}
    if plan.thinking:
        answer["thinking"] = plan.thinking_text
    return {**answer, **final_fields(plan), "context": generate_context(body, plan)}


def generate_lines(model: str, body: dict[str, Any], plan: TurnPlan) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = [
        {"model": model, "created_at": None, "response": "", "thinking": piece, "done": False}
        for piece in plan.thinking
    ]
    chunks += [{"model": model, "created_at": None, "response": piece, "done": False} for piece in plan.pieces]
    final = {"model": model, "created_at": None, "response": "", **final_fields(plan)}
    chunks.append({**final, "context": generate_context(body, plan)})
    return chunks


def encode_line(line: dict[str, Any]) -> bytes:
    """One NDJSON line; a `created_at` is stamped with the time the line is sent."""
    if "created_at" in line:
        line = {**line, "created_at": created_at_now()}
    return (json.dumps(line) + "\n").encode("utf-8")


async def send_ndjson(
    send: Send,
    lines: Iterable[dict[str, Any]],
    *,
    start: bool = True,
    finish: bool = True,
) -> None:
    """Send an `application/x-ndjson` response, one body message per line (chunked encoding)."""
    if start:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", NDJSON.encode())]})
    for line in lines:
        await send({"type": "http.response.body", "body": encode_line(line), "more_body": True})
    if finish:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def send_text(send: Send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# ---------------------------------------------------------------------------
# The ASGI app.
# ---------------------------------------------------------------------------


@dataclass
class JsonReply:
    payload: Any
    status: int = 200


@dataclass
class StreamReply:
    lines: list[dict[str, Any]]


@dataclass
class TextReply:
    text: str
    status: int = 200


Reply = JsonReply | StreamReply | TextReply

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/chat"): "chat",
    ("POST", "/api/generate"): "generate",
    ("POST", "/api/embed"): "embed",
    ("POST", "/api/embeddings"): "embeddings",
    ("GET", "/api/tags"): "tags",
    ("GET", "/api/ps"): "ps",
    ("POST", "/api/show"): "show",
    ("POST", "/api/pull"): "pull",
    ("GET", "/api/version"): "version",
}


class OllamaApp:
    """Raw ASGI app answering the subset of Ollama's REST API that `FakeOllama` documents."""

    def __init__(self, models: Iterable[ModelSpec | str] | None = None, running: Iterable[str] | None = None) -> None:
        specs = [m if isinstance(m, ModelSpec) else pulled_spec(canonical_name(m)) for m in models or DEFAULT_MODELS]
        self.initial_models = [replace(m, name=canonical_name(m.name)) for m in specs]
        self.initial_running = [canonical_name(n) for n in running] if running is not None else self._first_chat()
        self.log = RequestLog()
        self.failures = OneShotRules(prefix=API_PREFIX)
        self.stream_failures = OneShotRules(prefix=API_PREFIX)
        self.stream_holds = OneShotRules(prefix=API_PREFIX)
        self.released: asyncio.Event | None = None  # made in the server's loop, on first use
        self._lock = threading.Lock()
        self.models: dict[str, ModelSpec] = {}
        self.loaded: dict[str, float] = {}  # name -> keep_alive seconds, in load order
        self.reset_models()

    def _first_chat(self) -> list[str]:
        chat = [m.name for m in self.initial_models if "completion" in m.capabilities]
        return chat[:1]

    def reset_models(self) -> None:
        with self._lock:
            self.models = {m.name: m for m in self.initial_models}
            self.loaded = {name: DEFAULT_KEEP_ALIVE_SECONDS for name in self.initial_running if name in self.models}

    # plumbing ----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        self.log.append(request)
        failure: InjectedFailure | None = self.failures.take(request.path)
        if failure is not None:
            await send_json(send, failure.status, failure.body())
            return
        try:
            reply = self.dispatch(request)
        except ApiError as exc:
            reply = JsonReply({"error": exc.message}, exc.status)
        except Exception as exc:  # a bug in the fake: say so
            reply = JsonReply({"error": f"FakeOllama failed to handle {request.method} {request.path}: {exc!r}"}, 500)
        if isinstance(reply, TextReply):
            await send_text(send, reply.status, reply.text)
        elif isinstance(reply, JsonReply):
            await send_json(send, reply.status, reply.payload)
        else:
            await self._send_stream(request, reply.lines, send)

    async def _send_stream(self, request: RecordedRequest, lines: list[dict[str, Any]], send: Send) -> None:
        failure: MidStreamFailure | None = self.stream_failures.take(request.path)
        if failure is not None:
            lines = [*lines[: failure.after_lines], {"error": failure.message}]
        hold: MidStreamHold | None = self.stream_holds.take(request.path)
        if hold is None:
            await send_ndjson(send, lines)
            return
        if self.released is None or self.released.is_set():  # a released hold does not release later ones
            self.released = asyncio.Event()
        released = self.released
        await send_ndjson(send, lines[: hold.after_lines], finish=False)
        await released.wait()
        await send_ndjson(send, lines[hold.after_lines :], start=False)

    def dispatch(self, request: RecordedRequest) -> Reply:
        path = request.path.rstrip("/") or "/"
        if path == "/" and request.method in ("GET", "HEAD"):
            return TextReply("Ollama is running")
        handler = ROUTES.get((request.method, path))
        if handler is None:
            if any(route_path == path for _, route_path in ROUTES):
                return TextReply("405 method not allowed", 405)
            return TextReply("404 page not found", 404)
        if handler in ("tags", "ps", "version"):
            return getattr(self, handler)()
        return getattr(self, handler)(require_body(request.body))

    def find(self, name: str) -> ModelSpec:
        with self._lock:
            spec = self.models.get(canonical_name(name))
        if spec is None:
            raise not_found(name)
        return spec

    def touch(self, spec: ModelSpec, keep_alive: Any) -> None:
        """The model is now loaded for `keep_alive` (0 unloads it), as `/api/ps` will show."""
        seconds = keep_alive_seconds(keep_alive)
        with self._lock:
            self.loaded.pop(spec.name, None)
            if seconds != 0:
                self.loaded[spec.name] = seconds

    @staticmethod
    def check_capabilities(spec: ModelSpec, body: dict[str, Any], verb: str) -> None:
        short = spec.name.removesuffix(":latest")
        if "completion" not in spec.capabilities:
            raise ApiError(400, f'"{short}" does not support {verb}')
        if body.get("tools") and "tools" not in spec.capabilities:
            raise ApiError(400, f"registry.ollama.ai/library/{spec.name} does not support tools")
        if body.get("think") not in (None, False) and "thinking" not in spec.capabilities:
            raise ApiError(400, f'"{short}" does not support thinking')

    @staticmethod
    def load_only(body: dict[str, Any], model: str, answer: dict[str, Any]) -> Reply:
        """An empty prompt loads (or, with keep_alive 0, unloads) the model and says nothing."""
        reason = "unload" if body.get("keep_alive") in (0, "0", "0s", "0m") else "load"
        payload = {"model": model, "created_at": created_at_now(), **answer, "done_reason": reason, "done": True}
        return StreamReply([{**payload, "created_at": None}]) if stream_requested(body) else JsonReply(payload)

    # endpoints -----------------------------------------------------------------

    def chat(self, body: dict[str, Any]) -> Reply:
        model = model_field(body)
        spec = self.find(model)
        self.check_capabilities(spec, body, "chat")
        messages = body.get("messages")
        if messages is not None and not isinstance(messages, list):
            raise ApiError(400, "messages must be an array")
        self.touch(spec, body.get("keep_alive"))
        if not messages:
            return self.load_only(body, model, {"message": assistant_message("")})
        plan = plan_chat(body, messages)
        return StreamReply(chat_lines(model, plan)) if stream_requested(body) else JsonReply(chat_json(model, plan))

    def generate(self, body: dict[str, Any]) -> Reply:
        model = model_field(body)
        spec = self.find(model)
        self.check_capabilities(spec, body, "generate")
        self.touch(spec, body.get("keep_alive"))
        if not body.get("prompt") and not body.get("images"):
            return self.load_only(body, model, {"response": ""})
        plan = plan_generate(body)
        if stream_requested(body):
            return StreamReply(generate_lines(model, body, plan))
        return JsonReply(generate_json(model, body, plan))

    def vector(self, spec: ModelSpec, text: str, dimensions: int | None = None) -> list[float]:
        return embedding_vector(f"{spec.name}\0{text}", dimensions or spec.embedding_length)

    def embed(self, body: dict[str, Any]) -> JsonReply:
        model = model_field(body)
        spec = self.find(model)
        input_ = body.get("input")
        if isinstance(input_, str):
            texts = [input_] if input_ else []
        elif isinstance(input_, list) and all(isinstance(t, str) for t in input_):
            texts = list(input_)
        elif input_ is None:
            texts = []
        else:
            raise ApiError(400, "invalid input type")
        if any(not text for text in texts):
            raise ApiError(400, "input cannot be empty")
        dimensions = body.get("dimensions")
        bad_dimensions = not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
        if dimensions is not None and bad_dimensions:
            raise ApiError(400, f"invalid dimensions: {dimensions}")
        if isinstance(dimensions, int) and dimensions > spec.embedding_length:
            raise ApiError(400, f"dimensions {dimensions} exceeds the model's embedding length {spec.embedding_length}")
        self.touch(spec, body.get("keep_alive"))
        embeddings = [self.vector(spec, text, dimensions) for text in texts]
        prompt_tokens = sum(count_words(text) + 2 for text in texts)
        durations = timings(prompt_tokens, 0)
        return JsonReply(
            {
                "model": model,
                "embeddings": embeddings,
                "total_duration": durations["total_duration"],
                "load_duration": durations["load_duration"],
                "prompt_eval_count": prompt_tokens,
            }
        )

    def embeddings(self, body: dict[str, Any]) -> JsonReply:
        spec = self.find(model_field(body))
        prompt = body.get("prompt")
        self.touch(spec, body.get("keep_alive"))
        if not isinstance(prompt, str) or not prompt:
            return JsonReply({"embedding": []})
        return JsonReply({"embedding": self.vector(spec, prompt)})

    def tags(self) -> JsonReply:
        with self._lock:
            models = list(self.models.values())
        return JsonReply({"models": [m.tag_entry() for m in models]})

    def ps(self) -> JsonReply:
        with self._lock:
            loaded = [(self.models[name], seconds) for name, seconds in self.loaded.items() if name in self.models]
        running = [
            {
                "name": spec.name,
                "model": spec.name,
                "size": spec.size,
                "digest": spec.digest,
                "details": spec.details(),
                "expires_at": expires_at(seconds),
                "size_vram": spec.size,
                "context_length": min(spec.context_length, 4096),
            }
            for spec, seconds in reversed(loaded)  # most recently used first
        ]
        return JsonReply({"models": running})

    def show(self, body: dict[str, Any]) -> JsonReply:
        spec = self.find(model_field(body))
        family = spec.family.replace("-", "_")
        template = "{{ if .System }}{{ .System }}\n{{ end }}{{ .Prompt }}"
        parameters = 'stop                           "<|start_header_id|>"\nstop                           "<|eot_id|>"'
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {spec.name}\n\n"
            f"FROM /root/.ollama/models/blobs/sha256-{spec.layers()[0][0]}\n"
            f'TEMPLATE """{template}"""\n'
            'PARAMETER stop "<|start_header_id|>"\nPARAMETER stop "<|eot_id|>"\n'
        )
        model_info = {
            "general.architecture": family,
            "general.basename": spec.name.split(":")[0],
            "general.file_type": 15,
            "general.parameter_count": spec.parameter_count,
            "general.quantization_version": 2,
            f"{family}.context_length": spec.context_length,
            f"{family}.embedding_length": spec.embedding_length,
        }
        return JsonReply(
            {
                "license": "FAKE MODEL LICENSE (FakeOllama)",
                "modelfile": modelfile,
                "parameters": parameters,
                "template": template,
                "details": spec.details(),
                "model_info": model_info,
                "capabilities": list(spec.capabilities),
                "modified_at": spec.modified_at,
            }
        )

    def pull(self, body: dict[str, Any]) -> Reply:
        """Any name can be pulled; a new one is installed with sizes derived from its name."""
        name = canonical_name(model_field(body))
        with self._lock:
            spec = self.models.setdefault(name, pulled_spec(name))
        if not stream_requested(body):
            return JsonReply({"status": "success"})
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for digest, total in spec.layers():
            layer = {"status": f"pulling {digest[:12]}", "digest": f"sha256:{digest}", "total": total}
            lines += [{**layer, "completed": completed} for completed in (0, total // 2, total)]
        lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        return StreamReply(lines)

    def version(self) -> JsonReply:
        return JsonReply({"version": SERVER_VERSION})


class FakeOllama(RunningFake):
    """A running fake Ollama server: `with FakeOllama() as fake: fake.client().chat(model="llama3.2", ...)`."""

    api_prefix = API_PREFIX

    def __init__(self, models: Iterable[ModelSpec | str] | None = None, running: Iterable[str] | None = None) -> None:
        """`models` are installed (default `DEFAULT_MODELS`); `running` are loaded at start (default: the first
        chat model).  A model that chat/generate/embed uses is loaded too, for its `keep_alive`."""
        self.app = OllamaApp(models, running)
        self.server = LocalServer(self.app)

    # addresses -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to pass as `ollama.Client(host=...)`: the server root (the SDK's paths start with /api)."""
        return self.server.base_url

    @property
    def host(self) -> str:
        """Alias of `base_url` (the SDK calls it `host`; so does `OLLAMA_HOST`)."""
        return self.base_url

    @property
    def url(self) -> str:
        """Alias of `base_url`, for symmetry with `FakeOpenAI.url`."""
        return self.base_url

    def client(self, **kwargs: Any) -> Any:
        """A real `ollama.Client` pointed here."""
        import ollama

        return ollama.Client(host=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real `ollama.AsyncClient` pointed here."""
        import ollama

        return ollama.AsyncClient(host=self.base_url, **kwargs)

    # what is installed -------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """Installed model names (as `/api/tags` lists them), pulled ones included."""
        with self.app._lock:
            return list(self.app.models)

    @property
    def running(self) -> list[str]:
        """Loaded model names (as `/api/ps` lists them), most recently used first."""
        with self.app._lock:
            return list(reversed(self.app.loaded))

    def reset(self) -> None:
        """Forget received requests, drop pending injections and holds, and restore the installed/running models."""
        self.app.log.clear()
        self.app.failures.clear()
        self.app.stream_failures.clear()
        self.app.stream_holds.clear()
        self.app.reset_models()

    # failure injection -------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, path: str | None = None, message: str | None = None) -> None:
        """Answer the next `count` requests (to `path`, e.g. "chat" or "/api/chat", if given) with
        `{"error": message}` and `status`; the SDK raises `ResponseError(message, status)`."""
        self.app.failures.add(InjectedFailure(status, message), count, path)

    def fail_mid_stream(self, after_lines: int, path: str | None = None, message: str | None = None) -> None:
        """The next streamed answer (to `path`, if given) sends `after_lines` lines, then `{"error": message}`.

        The HTTP status stays 200; ollama 0.6.3 raises `ResponseError(message)` from inside the
        iteration, with `status_code == -1`, after yielding the first `after_lines` parts.
        """
        failure = MidStreamFailure(after_lines) if message is None else MidStreamFailure(after_lines, message)
        self.app.stream_failures.add(failure, 1, path)

    def hold_stream(self, after_lines: int, path: str | None = None) -> None:
        """The next streamed answer sends `after_lines` lines, then stalls until `release_streams()`."""
        self.app.stream_holds.add(MidStreamHold(after_lines), 1, path)

    def release_streams(self) -> None:
        """Let every held stream go on (from the test's thread: wakes the server's loop)."""
        released = self.app.released
        loop = self.server.loop
        if released is not None and loop is not None:
            loop.call_soon_threadsafe(released.set)
