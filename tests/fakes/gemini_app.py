"""A fake Google GenAI server (raw ASGI) that the real `google-genai` SDK can talk to.

It answers both backends the SDK knows, told apart by the request path:

* Gemini Developer API: `/{version}/models/{model}:{method}` (API key in the
  `x-goog-api-key` header, or a `key` query parameter);
* Vertex AI: `/{version}/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:{method}`
  (an OAuth `Authorization: Bearer` token), and Vertex "express mode"
  `/{version}/publishers/{pub}/models/{model}:{method}` (an API key).

Methods: `generateContent`, `streamGenerateContent` (`?alt=sse`: one SSE
`data:` event per GenerateContentResponse), `countTokens`, `embedContent`,
`batchEmbedContents` and Vertex `predict` (text embeddings).

Design rule, as in `openai_app`: every answer has a FRESH `responseId`, the
current `createTime` (Vertex) and fresh response headers, while its CONTENT
(text, function-call arguments, embeddings, token counts) is a pure function
of the request body, so a recording and its replay compare equal but for ids
and timestamps.  Wire formats follow google-genai 3.6.1 (`google/genai/models.py`
converters, `google/genai/_api_client.py` streaming and error handling).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
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
    without_volatile_ids,
)
from .server import (
    LocalServer,
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

DEFAULT_EMBEDDING_DIMENSIONS = 8
DEFAULT_PROJECT = "test-project"
DEFAULT_LOCATION = "us-central1"

# /{version}/{resource}:{method}, e.g. /v1beta/models/gemini-2.0-flash:generateContent
ROUTE = re.compile(r"^/(?P<version>v1(?:alpha|beta\d*)?)/(?P<resource>[^:]+):(?P<method>[A-Za-z]+)$")
VERTEX_PROJECT = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/")


# ---------------------------------------------------------------------------
# Volatile values: fresh on every answer.
# ---------------------------------------------------------------------------


def new_response_id() -> str:
    """22 url-safe characters, the shape of a real `responseId`."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def rfc3339_now() -> str:
    """The current UTC time as Vertex writes `createTime` (microseconds, `Z`)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fresh_headers(started: float) -> dict[str, str]:
    return {
        "x-goog-request-id": uuid.uuid4().hex,
        "server-timing": f"gfet4t7; dur={max(1, round((time.perf_counter() - started) * 1000))}",
        "vary": "Origin, X-Origin, Referer",
    }


# ---------------------------------------------------------------------------
# Errors, in Google's format: {"error": {"code", "message", "status"}}.
# ---------------------------------------------------------------------------

STATUS_NAMES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

DEFAULT_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission.",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


def status_name(code: int) -> str:
    return STATUS_NAMES.get(code, "UNKNOWN")


def error_body(code: int, message: str | None = None) -> dict[str, Any]:
    text = message or DEFAULT_MESSAGES.get(code, f"HTTP {code}")
    return {"error": {"code": code, "message": f"{text} (injected by FakeGemini)", "status": status_name(code)}}


class GoogleError(Exception):
    """Raised by handlers to answer with a Google-style error instead of a result."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": status_name(self.code)}}


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    message: str | None = None

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message)


@dataclass(frozen=True)
class MidStreamFailure:
    after_chunks: int
    status: int = 500
    message: str | None = None

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message or "An internal error occurred while streaming.")


@dataclass(frozen=True)
class MidStreamHold:
    """Send `after_chunks` events, then wait until the test releases the stream (a stalled server)."""

    after_chunks: int
    released: asyncio.Event = field(default_factory=asyncio.Event, compare=False)


@dataclass
class _Rule:
    payload: Any
    remaining: int
    path: str | None


class SubstringRules:
    """Thread-safe "do X to the next N requests whose path contains `path`" instructions.

    Like `server.OneShotRules`, but `path` matches any part of the request
    path, e.g. ":generateContent" or "gemini-2.0-flash".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(self, payload: Any, count: int = 1, path: str | None = None) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._rules.append(_Rule(payload, count, path))

    def take(self, request_path: str) -> Any:
        """Consume one use of the first rule matching `request_path`; None if none match."""
        with self._lock:
            for rule in self._rules:
                if rule.path is None or rule.path in request_path:
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
# Where a request goes.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed request path: which backend, which model, which method."""

    version: str
    resource: str
    method: str
    vertex: bool
    project: str | None

    @property
    def model(self) -> str:
        """The model id, the last path segment ("gemini-2.0-flash")."""
        return self.resource.rsplit("/", 1)[-1]


def parse_target(path: str) -> Target | None:
    match = ROUTE.match(path)
    if match is None:
        return None
    resource = match["resource"]
    project = VERTEX_PROJECT.match(resource)
    vertex = project is not None or resource.startswith("publishers/")  # without a project: express mode
    if not vertex and not resource.startswith(("models/", "tunedModels/")):
        return None
    return Target(
        version=match["version"],
        resource=resource,
        method=match["method"],
        vertex=vertex,
        project=project["project"] if project is not None else None,
    )


def check_auth(request: RecordedRequest, target: Target) -> None:
    """Vertex with a project wants a Bearer token; the Gemini API and express mode want an API key."""
    if target.project is not None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            raise GoogleError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        return
    if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
        raise GoogleError(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )


# ---------------------------------------------------------------------------
# Reading request bodies.
# ---------------------------------------------------------------------------


def part_text(part: Any) -> str:
    """Words a part contributes: its text, or the JSON of a function call or response."""
    if not isinstance(part, dict):
        return ""
    if isinstance(part.get("text"), str):
        return part["text"]
    for key in ("functionCall", "functionResponse"):
        if isinstance(part.get(key), dict):
            return json.dumps(part[key], sort_keys=True)
    return ""


def content_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return []
    return [part for part in content["parts"] if isinstance(part, dict)]


def content_text(content: Any) -> str:
    """The text parts of a Content, joined by spaces."""
    texts = [part["text"] for part in content_parts(content) if isinstance(part.get("text"), str)]
    return " ".join(text for text in texts if text)


def content_tokens(content: Any) -> int:
    return sum(count_words(part_text(part)) for part in content_parts(content))


def require_contents(body: Any, key: str = "contents") -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received.")
    contents = body.get(key)
    if not isinstance(contents, list) or not contents:
        raise GoogleError(400, f"* GenerateContentRequest.{key}: contents is not specified")
    if not all(isinstance(content, dict) and content_parts(content) for content in contents):
        raise GoogleError(400, f"* GenerateContentRequest.{key}[*].parts: contents.parts must not be empty.")
    return contents


def prompt_tokens(body: dict[str, Any], contents: list[dict[str, Any]]) -> int:
    """Words in the contents and the system instruction (countTokens and usageMetadata agree)."""
    return sum(content_tokens(content) for content in contents) + content_tokens(body.get("systemInstruction"))


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():  # int64 fields may arrive as JSON strings
        return int(value)
    return None


_INT_SCHEMA_KEYS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")


def json_schema(schema: Any) -> Any:
    """A Gemini `Schema` (type "OBJECT", int64s as strings, `nullable`) as JSON Schema for `sample_from_schema`."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            result[key] = value.lower()
        elif key in _INT_SCHEMA_KEYS and int_or_none(value) is not None:
            result[key] = int_or_none(value)
        elif key == "properties" and isinstance(value, dict):
            result[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf"):
            result[key] = json_schema(value)
        else:
            result[key] = value
    return result


# ---------------------------------------------------------------------------
# What the model says: one plan shared by the JSON and streamed encodings.
# ---------------------------------------------------------------------------


@dataclass
class GeminiPlan:
    """The deterministic part of an answer, before ids and encodings are added."""

    pieces: list[str] = field(default_factory=list)
    function_call: dict[str, Any] | None = None
    prompt_tokens: int = 0
    finish_reason: str = "STOP"

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def candidates_tokens(self) -> int:
        if self.function_call is not None:
            return max(1, count_words(json.dumps(self.function_call["args"])))
        return len(self.pieces)


def function_declarations(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        return []
    declarations = []
    for tool in tools:
        for declaration in (tool.get("functionDeclarations") or []) if isinstance(tool, dict) else []:
            if isinstance(declaration, dict) and declaration.get("name"):
                declarations.append(declaration)
    return declarations


def choose_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The declaration to call: the first allowed one, unless the tool config's mode is NONE."""
    declarations = function_declarations(body.get("tools"))
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or str(config.get("mode", "AUTO")).upper() == "NONE":
        return None
    allowed = config.get("allowedFunctionNames") or []
    for declaration in declarations:
        if not allowed or declaration["name"] in allowed:
            return declaration
    return declarations[0]


def function_args(declaration: dict[str, Any], text: str) -> dict[str, Any]:
    """Every declared parameter sampled, the first required one set to the user's text when it fits."""
    # The SDK sends a Python callable's schema under the snake_case key.
    raw = declaration.get("parametersJsonSchema") or declaration.get("parameters_json_schema")
    schema = raw if isinstance(raw, dict) else json_schema(declaration.get("parameters")) or {}
    return json.loads(tool_arguments(schema, text)) if schema.get("properties") else {}


def function_results(content: dict[str, Any]) -> str | None:
    """The function responses a content carries, quoted; None if it carries none."""
    results = [part["functionResponse"] for part in content_parts(content) if "functionResponse" in part]
    if not results:
        return None
    return "; ".join(f"{r.get('name')}: {json.dumps(r.get('response'), sort_keys=True)}" for r in results)


def structured_text(config: dict[str, Any], user_text: str) -> str | None:
    """JSON text for a JSON response MIME type: sampled from the schema, or an echo object."""
    if config.get("responseMimeType") != "application/json":
        return None
    if isinstance(config.get("responseJsonSchema"), dict):
        return json.dumps(sample_from_schema(config["responseJsonSchema"]))
    if isinstance(config.get("responseSchema"), dict):
        return json.dumps(sample_from_schema(json_schema(config["responseSchema"])))
    return json.dumps({"echo": user_text})


def last_user_text(contents: list[dict[str, Any]]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") == "user" and content_text(content):
            return content_text(content)
    return ""


def plan_generate(body: Any) -> GeminiPlan:
    contents = require_contents(body)
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    plan = GeminiPlan(prompt_tokens=prompt_tokens(body, contents))
    user_text = last_user_text(contents)
    results = function_results(contents[-1])
    declaration = choose_function(body) if results is None else None
    if declaration is not None:
        plan.function_call = {"name": declaration["name"], "args": function_args(declaration, user_text)}
        return plan
    structured = structured_text(config, user_text)
    if structured is not None:
        plan.pieces = split_pieces(structured)
        return plan
    base = f"Based on the function result: {results[:TOOL_CONTENT_LIMIT]}" if results else f"echo: {user_text}"
    seed = stable_seed("gemini", body.get("systemInstruction"), without_volatile_ids(contents))
    word_count = int_or_none(config.get("maxOutputTokens"))
    plan.pieces = reply_pieces(base, seed, max(1, word_count) if word_count is not None else None)
    if word_count is not None and len(reply_pieces(base, seed, None)) > word_count:
        plan.finish_reason = "MAX_TOKENS"
    return plan


# ---------------------------------------------------------------------------
# GenerateContentResponse JSON (camelCase, as on the wire).
# ---------------------------------------------------------------------------


@dataclass
class Envelope:
    """What every chunk of one answer shares."""

    target: Target
    response_id: str = field(default_factory=new_response_id)
    create_time: str = field(default_factory=rfc3339_now)


def usage_metadata(target: Target, plan: GeminiPlan) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": plan.prompt_tokens,
        "candidatesTokenCount": plan.candidates_tokens,
        "totalTokenCount": plan.prompt_tokens + plan.candidates_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": plan.prompt_tokens}],
    }
    if target.vertex:
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.candidates_tokens}]
        usage["trafficType"] = "ON_DEMAND"
    return usage


def generate_response(
    envelope: Envelope,
    parts: list[dict[str, Any]],
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    if not envelope.target.vertex:
        candidate["index"] = 0
    response: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        response["usageMetadata"] = usage
    response["modelVersion"] = envelope.target.model
    if envelope.target.vertex:
        response["createTime"] = envelope.create_time
    response["responseId"] = envelope.response_id
    return response


def plan_parts(plan: GeminiPlan) -> list[dict[str, Any]]:
    if plan.function_call is not None:
        return [{"functionCall": plan.function_call}]
    return [{"text": plan.text}]


def generate_json(target: Target, plan: GeminiPlan) -> dict[str, Any]:
    usage = usage_metadata(target, plan)
    return generate_response(Envelope(target), plan_parts(plan), finish_reason=plan.finish_reason, usage=usage)


def generate_chunks(target: Target, plan: GeminiPlan) -> list[dict[str, Any]]:
    """One chunk per word (a function call comes whole); the last adds finishReason and usageMetadata."""
    envelope = Envelope(target)
    parts = [[{"functionCall": plan.function_call}]] if plan.function_call else [[{"text": p}] for p in plan.pieces]
    parts = parts or [[{"text": ""}]]
    chunks = [generate_response(envelope, part) for part in parts[:-1]]
    usage = usage_metadata(target, plan)
    chunks.append(generate_response(envelope, parts[-1], finish_reason=plan.finish_reason, usage=usage))
    return chunks


# ---------------------------------------------------------------------------
# countTokens and embeddings.
# ---------------------------------------------------------------------------


def count_tokens_json(target: Target, body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        body = body["generateContentRequest"]
    contents = require_contents(body)
    total = prompt_tokens(body, contents)
    answer: dict[str, Any] = {"totalTokens": total}
    if target.vertex:
        texts = [part_text(part) for content in contents for part in content_parts(content)]
        answer["totalBillableCharacters"] = sum(len(text.replace(" ", "")) for text in texts)
    answer["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": total}]
    return answer


def dimensions(*values: Any) -> int:
    for value in values:
        number = int_or_none(value)
        if number is not None:
            if number < 1:
                raise GoogleError(400, "* outputDimensionality: must be positive.")
            return number
    return DEFAULT_EMBEDDING_DIMENSIONS


def embedding_key(content: Any) -> str:
    text = content if isinstance(content, str) else content_text(content)
    if not text:
        raise GoogleError(400, "* EmbedContentRequest.content: contents must not be empty.")
    return text


def embed_one(body: Any) -> dict[str, Any]:
    """The ContentEmbedding for one `embedContent` body, or one `batchEmbedContents` request (either backend)."""
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received.")
    config = body.get("embedContentConfig") if isinstance(body.get("embedContentConfig"), dict) else {}
    size = dimensions(body.get("outputDimensionality"), config.get("outputDimensionality"))
    return {"values": embedding_vector(embedding_key(body.get("content")), size)}


def embed_content_json(target: Target, body: Any) -> dict[str, Any]:
    embedding = embed_one(body)
    if not target.vertex:
        return {"embedding": embedding}
    tokens = max(1, count_words(embedding_key(body.get("content"))))
    return {"embedding": embedding, "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}


def batch_embed_json(target: Target, body: Any) -> dict[str, Any]:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise GoogleError(400, "* BatchEmbedContentsRequest.requests: requests must not be empty.")
    answer: dict[str, Any] = {"embeddings": [embed_one(request) for request in requests]}
    if target.vertex:
        tokens = sum(max(1, count_words(embedding_key(r.get("content")))) for r in requests)
        answer["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
    return answer


def predict_json(body: Any) -> dict[str, Any]:
    """Vertex text-embedding `:predict`: instances [{"content": text}] -> predictions [{"embeddings"}]."""
    instances = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(instances, list) or not instances:
        raise GoogleError(400, "* PredictRequest.instances: instances must not be empty.")
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    size = dimensions(parameters.get("outputDimensionality"))
    predictions, characters = [], 0
    for instance in instances:
        text = embedding_key(instance.get("content") if isinstance(instance, dict) else None)
        characters += len(text)
        statistics = {"truncated": False, "token_count": max(1, count_words(text))}
        predictions.append({"embeddings": {"values": embedding_vector(text, size), "statistics": statistics}})
    return {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}


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


class GeminiApp:
    """Raw ASGI app answering the subset of the Gemini and Vertex AI APIs that `FakeGemini` documents."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.failures = SubstringRules()
        self.stream_failures = SubstringRules()
        self.stream_holds = SubstringRules()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = await read_request(scope, receive)
        self.log.append(request)
        failure: InjectedFailure | None = self.failures.take(request.path)
        if failure is not None:
            await send_json(send, failure.status, failure.body(), fresh_headers(started))
            return
        try:
            reply = self.dispatch(request)
        except GoogleError as exc:
            reply = JsonReply(exc.body(), exc.code)
        except Exception as exc:  # a bug in the fake: say so
            message = f"FakeGemini failed to handle {request.method} {request.path}: {exc!r}"
            reply = JsonReply(GoogleError(500, message).body(), 500)
        headers = fresh_headers(started)
        if isinstance(reply, JsonReply):
            await send_json(send, reply.status, reply.payload, headers)
            return
        frames = self._maybe_break(request, reply.frames)
        hold: MidStreamHold | None = self.stream_holds.take(request.path)
        if hold is None:
            await send_stream(send, frames, headers)
            return
        await send_stream(send, frames[: hold.after_chunks], headers, finish=False)
        await hold.released.wait()
        await send_stream(send, frames[hold.after_chunks :], None, start=False)

    def _maybe_break(self, request: RecordedRequest, frames: list[bytes]) -> list[bytes]:
        failure: MidStreamFailure | None = self.stream_failures.take(request.path)
        if failure is None:
            return frames
        return [*frames[: failure.after_chunks], sse_frame(failure.body())]

    def dispatch(self, request: RecordedRequest) -> JsonReply | StreamReply:
        target = parse_target(request.path)
        if target is None or request.method != "POST":
            raise GoogleError(404, f"Unknown request URL: {request.method} {request.path}.")
        check_auth(request, target)
        body = request.body
        if target.method == "generateContent":
            return JsonReply(generate_json(target, plan_generate(body)))
        if target.method == "streamGenerateContent":
            chunks = generate_chunks(target, plan_generate(body))
            if request.query.get("alt") == "sse":
                return StreamReply([sse_frame(chunk) for chunk in chunks])
            return JsonReply(chunks)  # without alt=sse the API answers a JSON array
        if target.method == "countTokens":
            return JsonReply(count_tokens_json(target, body))
        if target.method == "embedContent":
            return JsonReply(embed_content_json(target, body))
        if target.method == "batchEmbedContents":
            return JsonReply(batch_embed_json(target, body))
        if target.method == "predict" and target.vertex:
            return JsonReply(predict_json(body))
        raise GoogleError(404, f"Method {target.method} is not found for {target.resource}.")


class FakeGemini(RunningFake):
    """A running fake Google GenAI server: `with FakeGemini() as fake: client = fake.client()`."""

    api_key = "AIza-test-key-0000000000000000000000000"
    access_token = "ya29.test-token"

    def __init__(self, project: str = DEFAULT_PROJECT, location: str = DEFAULT_LOCATION) -> None:
        self.project = project
        self.location = location
        self.app = GeminiApp()
        self.server = LocalServer(self.app)
        self._holds: list[MidStreamHold] = []
        self._holds_lock = threading.Lock()

    # addresses and clients ---------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to pass as `HttpOptions(base_url=...)`: the server root (the SDK adds the version)."""
        return self.server.base_url

    def credentials(self) -> Any:
        """OAuth credentials holding a static token: never expired, so google-auth never refreshes them."""
        from google.oauth2.credentials import Credentials

        return Credentials(token=self.access_token)

    def http_options(self, http_options: Any = None) -> Any:
        """`http_options` (an HttpOptions, a dict or None) with `base_url` pointing here."""
        from google.genai import types

        if http_options is None:
            return types.HttpOptions(base_url=self.base_url)
        if isinstance(http_options, dict):
            return types.HttpOptions.model_validate({"base_url": self.base_url, **http_options})
        return http_options if http_options.base_url else http_options.model_copy(update={"base_url": self.base_url})

    def client(self, vertexai: bool = False, **kwargs: Any) -> Any:
        """A real `google.genai.Client` pointed here; `.aio` on it is the async client.

        Gemini API: `api_key=FakeGemini.api_key` unless given.  Vertex AI:
        `project`/`location` of the fake and `credentials()` unless given;
        passing `api_key=` with `vertexai=True` gives Vertex express mode.
        """
        from google import genai

        kwargs["http_options"] = self.http_options(kwargs.get("http_options"))
        if not vertexai:
            kwargs.setdefault("api_key", self.api_key)
        elif "api_key" not in kwargs:
            kwargs.setdefault("project", self.project)
            kwargs.setdefault("location", self.location)
            kwargs.setdefault("credentials", self.credentials())
        return genai.Client(vertexai=vertexai, **kwargs)

    def async_client(self, vertexai: bool = False, **kwargs: Any) -> Any:
        """`client(...).aio`: a real `google.genai.client.AsyncClient` pointed here."""
        return self.client(vertexai, **kwargs).aio

    def requests_to(self, fragment: str) -> list[RecordedRequest]:
        """Requests whose path contains `fragment`, e.g. ":embedContent"."""
        return [r for r in self.requests if fragment in r.path]

    def reset(self) -> None:
        """Forget received requests and drop pending failure injections and holds."""
        self.app.log.clear()
        self.app.failures.clear()
        self.app.stream_failures.clear()
        self.app.stream_holds.clear()

    # failure injection -------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, path: str | None = None, message: str | None = None) -> None:
        """Answer the next `count` requests (whose path contains `path`, if given) with a Google error.

        The body is `{"error": {"code", "message", "status"}}` with the status
        name Google uses for the code (429 -> RESOURCE_EXHAUSTED, ...).
        """
        self.app.failures.add(InjectedFailure(status, message), count, path)

    def fail_mid_stream(
        self, after_chunks: int, *, message: str | None = None, path: str | None = None, status: int = 500
    ) -> None:
        """The next streamed answer sends `after_chunks` chunks, then an SSE `data: {"error": {...}}` event."""
        self.app.stream_failures.add(MidStreamFailure(after_chunks, status, message), 1, path)

    def hold_stream(self, after_chunks: int, path: str | None = None) -> None:
        """The next streamed answer sends `after_chunks` chunks, then stalls until `release_streams()`."""
        hold = MidStreamHold(after_chunks)
        with self._holds_lock:
            self._holds.append(hold)
        self.app.stream_holds.add(hold, 1, path)

    def release_streams(self) -> None:
        """Let every stream held so far go on, including holds not yet reached (from any thread)."""
        with self._holds_lock:
            holds, self._holds = self._holds, []
        loop = self.server.loop
        for hold in holds:
            try:
                if loop is None:
                    raise RuntimeError("no server loop")
                loop.call_soon_threadsafe(hold.released.set)
            except RuntimeError:  # no loop, or it closed: nothing is waiting on the event
                hold.released.set()
