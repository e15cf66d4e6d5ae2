"""Google GenAI (``google-genai``): ``models`` calls, recorded as llama-stack records them.

Covered, sync (``client.models``) and async (``client.aio.models``), for Gemini API and Vertex AI
clients alike: ``generate_content``, ``generate_content_stream``, ``embed_content``,
``count_tokens``. Files are llama-stack's for these calls, byte for byte: the request is
``POST vertexai:///<method>`` with the keyword arguments as the body (pydantic arguments dumped
with ``exclude_none``), and answers are stored as plain JSON (``model_dump(mode="json",
exclude_none=True)``), which replay validates into ``GenerateContentResponse``,
``EmbedContentResponse`` or ``CountTokensResponse``. Gemini API clients are recorded under
``gemini:///<method>`` with the same hash rules.

What the SDK adds to every answer, ``sdk_http_response.headers``, is stored without credentials
or cookies, with the date and request id made constant; ``response_id`` and ``create_time``
are normalized like other APIs' ids. Automatic function calling (Python functions as tools) is
one recorded answer: on replay the SDK's final answer, history included, comes back without
the functions running again. Other calls of the client (files, caches, live) are refused in
replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..context import test_id_headers_for
from ..errors import UnsupportedCallError
from ..modes import Mode
from ..patching import Patches
from ..recorder import HttpRequest, Recorder
from ..redaction import is_credential_name
from ..storage import RecordedResponse, Recording
from ..streams import recording_iterator, replay_async_iterator, replay_iterator


@dataclass(frozen=True)
class Method:
    """One covered method: llama-stack's endpoint name for it, and its answer's class."""

    endpoint: str
    answer: str  # a class of google.genai.types
    streamed: bool = False


GENERATE = Method("/generate_content", "GenerateContentResponse")
GENERATE_STREAM = Method("/generate_content_stream", "GenerateContentResponse", streamed=True)
EMBED = Method("/embed_content", "EmbedContentResponse")
COUNT_TOKENS = Method("/count_tokens", "CountTokensResponse")

PATCH_POINTS: list[tuple[str, str, Method]] = [
    ("google.genai.models", f"{owner}.{name}", method)
    for owner in ("Models", "AsyncModels")
    for name, method in (
        ("generate_content", GENERATE),
        ("generate_content_stream", GENERATE_STREAM),
        ("embed_content", EMBED),
        ("count_tokens", COUNT_TOKENS),
    )
]

NORMALIZED_TIME = "1970-01-01T00:00:00Z"
NORMALIZED_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"
_VOLATILE_HEADERS = {"server-timing", "set-cookie", "x-goog-request-id"}


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    for module, name, method in PATCH_POINTS:
        is_async = name.startswith("Async")
        patches.wrap(module, name, make_wrapper(recorder, method, is_async=is_async))
    patches.wrap("google.genai._api_client", "BaseApiClient._build_request", guard_requests(recorder))
    return patches


def make_wrapper(recorder: Recorder, method: Method, *, is_async: bool) -> Any:
    """The wrapt wrapper of one patch point: pass through when not intercepting, else decide."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        api_client = instance._api_client
        if not recorder.intercepting or recorder.is_passthrough(base_url(api_client)):
            return wrapped(*args, **kwargs)
        call = GenAICall(recorder, method, wrapped, api_client, kwargs, is_async=is_async)
        if is_async:
            return recorder.run_async(call, call.invoke)
        return recorder.run(call, call.invoke)

    return wrapper


def guard_requests(recorder: Recorder) -> Any:
    """Every request of a genai client is built here: it names the test (server mode), and in
    replay none leaves (covered calls were answered from their recordings before getting here)."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if recorder.mode is Mode.REPLAY and recorder.intercepting and not recorder.is_passthrough(base_url(instance)):
            path = kwargs.get("path", args[1] if len(args) > 1 else "?")
            raise UnsupportedCallError(
                f"google-genai request {path!r}: this call is not recorded by api-recorder (it covers "
                "models.generate_content, generate_content_stream, embed_content and count_tokens, called "
                "after api_recorder was imported), and replay mode never reaches the network. Run this test "
                "with LLAMA_STACK_TEST_INFERENCE_MODE=live, or name the server in enable(passthrough=[...])."
            )
        request = wrapped(*args, **kwargs)
        test_id = recorder.current_test_id() if recorder.enabled else None
        if test_id and isinstance(getattr(request, "headers", None), dict):
            request.headers.update(test_id_headers_for(test_id, request.headers))
        return request

    return wrapper


def base_url(api_client: Any) -> str:
    options = getattr(api_client, "_http_options", None)
    return str(getattr(options, "base_url", "") or "")


class GenAICall:
    """One intercepted genai call: llama-stack's key, and its answers as plain JSON."""

    normalizes_ids = False  # stored as plain JSON, not envelopes: dump_answer normalizes

    def __init__(
        self,
        recorder: Recorder,
        method: Method,
        wrapped: Any,
        api_client: Any,
        kwargs: dict[str, Any],
        *,
        is_async: bool,
    ) -> None:
        self.method = method
        self.wrapped = wrapped
        self.kwargs = kwargs
        self.is_async = is_async
        vertexai = bool(getattr(api_client, "vertexai", False))
        scheme = "vertexai" if vertexai else "gemini"
        self.key = recorder.http_key(
            HttpRequest(
                method="POST",
                url=f"{scheme}://{method.endpoint}",
                endpoint=method.endpoint,
                body=request_body(kwargs),
                provider_metadata={"provider": scheme, "google_genai_sdk_version": sdk_version()},
            )
        )

    def invoke(self) -> Any:
        return self.wrapped(**self.kwargs)

    # -- answers --------------------------------------------------------------------------

    def replay(self, recording: Recording) -> Any:
        """The SDK's answer class validated from the stored JSON (as llama-stack's replay does)."""
        response = recording.response
        cls = answer_class(self.method)
        if not self.method.streamed:
            return response.validated_as(cls)
        chunks = response.validated_as(cls)
        if self.is_async:
            return replay_async_iterator(chunks, response.error())
        return replay_iterator(chunks, response.error())

    def capture(self, result: Any, save: Any) -> Any:
        if not self.method.streamed:
            save(result, False)
            return result
        return recording_iterator(result, save, self.dump_answer, is_async=self.is_async)

    def dump_answer(self, answer: Any) -> Any:
        """llama-stack's JSON of an answer; ids, times and response headers made constant."""
        if not hasattr(answer, "model_dump"):
            return answer
        data = answer.model_dump(mode="json", exclude_none=True)
        if "response_id" in data:
            data["response_id"] = f"rec-{self.key.hash[:12]}"
        if "create_time" in data:
            data["create_time"] = NORMALIZED_TIME
        http = data.get("sdk_http_response")
        if isinstance(http, dict) and isinstance(http.get("headers"), dict):
            http["headers"] = kept_headers(http["headers"])
        return data

    def is_recordable_error(self, error: Exception) -> bool:
        from google.genai import errors

        return isinstance(error, errors.APIError)

    def answer_despite(self, error: Exception) -> Any:
        return None

    def filename_for(self, body: Any) -> str:
        return f"{self.key.hash}.json"


def kept_headers(headers: dict[str, Any]) -> dict[str, Any]:
    """Response headers worth keeping: no credentials or cookies; the date made constant."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _VOLATILE_HEADERS or is_credential_name(name):
            continue
        kept[name] = NORMALIZED_DATE if lowered == "date" else value
    return kept


def answer_class(method: Method) -> type:
    from google.genai import types

    return getattr(types, method.answer)  # type: ignore[no-any-return]


def sdk_version() -> str:
    from google.genai import version

    return str(getattr(version, "__version__", "unknown"))


def request_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """llama-stack's body: pydantic arguments (and list items) dumped without ``None`` fields,
    JSON values as they are. A Python function (a tool for automatic function calling) is
    named, not printed with its address, so its hash is the same in every run."""
    return {name: _argument(value) for name, value in kwargs.items()}


def _dumped(model: Any) -> Any:
    """``model_dump(mode="json", exclude_none=True)``, as llama-stack dumps arguments; values JSON
    cannot hold (a Python function given as a tool) are named by :func:`_named`."""
    try:
        return model.model_dump(mode="json", exclude_none=True, fallback=_named)
    except TypeError:  # a pydantic older than 2.11: no fallback
        return model.model_dump(mode="json", exclude_none=True)


def _argument(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return _dumped(value)
    if isinstance(value, list):
        return [_item(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _item(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _named(value)


def _item(item: Any) -> Any:
    if hasattr(item, "model_dump"):
        return _dumped(item)
    if isinstance(item, (dict, list)):
        return _argument(item)
    if item is None or isinstance(item, (str, int, float, bool)):
        return item
    return _named(item)


def _named(value: Any) -> str:
    """A stable text for a value JSON cannot hold: a function's qualified name, else its str()."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"<function {getattr(value, '__module__', '?')}.{value.__qualname__}>"
    return str(value)


def error_details(error: Exception) -> tuple[Any, Any] | None:
    """What the recorder keeps of a genai ``APIError``: its HTTP code and the error's JSON."""
    code = getattr(error, "code", None)
    return (code, getattr(error, "details", None)) if isinstance(code, int) else None


def rebuild_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    """``ClientError`` / ``ServerError`` / ``APIError`` with the recorded code and JSON."""
    from google.genai import errors

    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.APIError)):
        cls = errors.APIError
    details = body if body is not None else {"error": {"code": status_code, "message": message}}
    return cls(int(status_code or 0), details)


def render(recording: Recording) -> str | None:
    """A person's view of a genai answer: the candidates' text, or what the answer holds."""
    request = recording.request
    if not str(request.get("url", "")).startswith(("vertexai://", "gemini://")):
        return None
    response: RecordedResponse = recording.response
    bodies = list(response.iter_body()) if response.is_streaming else [response.body]
    pieces = []
    for body in bodies:
        if not isinstance(body, dict):
            continue
        for candidate in body.get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if "text" in part:
                    pieces.append(part["text"])
                elif "function_call" in part:
                    call = part["function_call"]
                    pieces.append(f"\n[function call] {call.get('name')}({call.get('args')})")
        if "embeddings" in body:
            pieces.append(f"{len(body['embeddings'])} embedding(s)")
        if "total_tokens" in body:
            pieces.append(f"{body['total_tokens']} tokens")
    prefix = f"({len(bodies)} chunks)\n" if response.is_streaming else ""
    return prefix + "".join(pieces)
