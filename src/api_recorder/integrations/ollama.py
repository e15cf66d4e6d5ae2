"""Ollama (``ollama``): ``Client`` and ``AsyncClient`` calls, recorded as llama-stack records them.

Covered: ``chat``, ``generate`` (streamed and not), ``embed``, ``embeddings``, ``list``, ``ps``,
``show`` and ``pull`` (streamed progress and not). The key is llama-stack's: ``POST
<host>/api/<endpoint>`` with the call's keyword arguments as the body (``embed`` is filed under
``/api/embeddings``, as llama-stack files it), so its Ollama files replay here. Answers are the
SDK's classes (``ChatResponse``, ``ProcessResponse``...) in envelopes; streamed calls replay as the
same iterator of them. What changes every run is made constant, as llama-stack does:
``created_at`` and the ``*_duration`` timings. ``list`` (``/api/tags``) is shared by every test,
and lists recorded against several servers answer with every model, like OpenAI's model lists.
``ResponseError`` is recorded and raised again with its status code. Other calls of the client
(``create``, ``delete``, ``push``, ``web_search``...) are refused in replay.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from ..envelopes import dump_object
from ..errors import UnsupportedCallError
from ..modes import Mode
from ..patching import Patches
from ..recorder import HttpRequest, Recorder
from ..storage import Recording
from ..streams import recording_iterator, replay_async_iterator, replay_iterator


@dataclass(frozen=True)
class Method:
    """One covered method: llama-stack's endpoint name for it."""

    endpoint: str
    shared: bool = False  # the model list: no test id, found from every test


METHODS = {
    "chat": Method("/api/chat"),
    "generate": Method("/api/generate"),
    "embed": Method("/api/embeddings"),
    "embeddings": Method("/api/embeddings"),
    "list": Method("/api/tags", shared=True),
    "ps": Method("/api/ps"),
    "show": Method("/api/show"),
    "pull": Method("/api/pull"),
}
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
DEFAULT_HOST = "http://localhost:11434"


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    for owner, is_async in (("Client", False), ("AsyncClient", True)):
        for name, method in METHODS.items():
            patches.wrap("ollama._client", f"{owner}.{name}", make_wrapper(recorder, name, method, is_async=is_async))
        refuse = refuse_uncovered_in_replay(recorder)
        patches.wrap("ollama._client", f"{owner}._request", refuse)
        patches.wrap("ollama._client", f"{owner}._request_raw", refuse)
    return patches


def host_of(client: Any) -> str:
    """The server's base URL, as the client's HTTP client holds it."""
    inner = getattr(client, "_client", None)
    return str(getattr(inner, "base_url", "") or DEFAULT_HOST).rstrip("/")


def make_wrapper(recorder: Recorder, name: str, method: Method, *, is_async: bool) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not recorder.intercepting or recorder.is_passthrough(host_of(instance)):
            return wrapped(*args, **kwargs)
        call = OllamaCall(recorder, name, method, wrapped, instance, args, kwargs, is_async=is_async)
        if is_async:
            return recorder.run_async(call, call.invoke)
        return recorder.run(call, call.invoke)

    return wrapper


def refuse_uncovered_in_replay(recorder: Recorder) -> Any:
    """Every request of the client passes here; in replay only uncovered ones get this far."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if recorder.intercepting and recorder.mode is Mode.REPLAY and not recorder.is_passthrough(host_of(instance)):
            method, path = (args[-2], args[-1]) if len(args) >= 2 else ("?", "?")
            raise UnsupportedCallError(
                f"ollama {method} {path}: this call is not recorded by api-recorder (it covers chat, generate, "
                "embed, embeddings, list, ps, show and pull), and replay mode never reaches the network. Run "
                "this test with LLAMA_STACK_TEST_INFERENCE_MODE=live, or name the server in enable(passthrough=[...])."
            )
        return wrapped(*args, **kwargs)

    return wrapper


class OllamaCall:
    """One intercepted Ollama call: llama-stack's key, and its answers as the SDK's objects."""

    normalizes_ids = True  # created_at, as llama-stack normalizes it

    def __init__(
        self,
        recorder: Recorder,
        name: str,
        method: Method,
        wrapped: Any,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool,
    ) -> None:
        self.method = method
        self.wrapped = wrapped
        self.is_async = is_async
        self.kwargs = _named(wrapped, args, kwargs)
        self.streamed = bool(self.kwargs.get("stream"))
        key = recorder.http_key(
            HttpRequest(
                method="POST",
                url=host_of(instance) + method.endpoint,
                endpoint=method.endpoint,
                body=request_body(self.kwargs),
                shared=method.shared,
                provider_metadata={"ollama_sdk_version": sdk_version()},
            )
        )
        if method.shared:  # model lists are named after the models they hold, and merged
            key.globs = [f"models-{name}-*.json" for name in key.hashes]
            key.merge = merge_model_lists
        self.key = key

    def invoke(self) -> Any:
        return self.wrapped(**self.kwargs)

    def replay(self, recording: Recording) -> Any:
        response = recording.response
        if not response.is_streaming:
            return response.body
        if self.is_async:
            return replay_async_iterator(response.iter_body(), response.error())
        return replay_iterator(response.iter_body(), response.error())

    def capture(self, result: Any, save: Any) -> Any:
        if not self.streamed:
            save(result, False)
            return result
        return recording_iterator(result, save, self.dump_answer, is_async=self.is_async)

    def dump_answer(self, answer: Any) -> Any:
        """An envelope, with the timings that change every run made 0 (as llama-stack does)."""
        dumped = dump_object(answer)
        data = dumped.get("__data__") if isinstance(dumped, dict) else None
        if isinstance(data, dict):
            for name in DURATIONS:
                if data.get(name) is not None:
                    data[name] = 0
        return dumped

    def is_recordable_error(self, error: Exception) -> bool:
        import ollama

        return isinstance(error, ollama.ResponseError)

    def answer_despite(self, error: Exception) -> Any:
        return None

    def filename_for(self, body: Any) -> str:
        if self.method.shared and body is not None:
            return f"models-{self.key.hash}-{model_names_digest(body)}.json"
        return f"{self.key.hash}.json"


def model_names_digest(answer: Any) -> str:
    """llama-stack's suffix for ``/api/tags`` files: which models the list holds."""
    names = sorted({str(getattr(model, "model", None) or getattr(model, "name", "")) for model in answer.models})
    return hashlib.sha256("|".join(names).encode()).hexdigest()[:8]


def merge_model_lists(answers: list[Any]) -> Any:
    """Lists recorded against several servers answer with every model, as llama-stack merges them."""
    by_name: dict[str, Any] = {}
    for answer in answers:
        for model in answer.models:
            by_name[str(getattr(model, "model", None) or getattr(model, "name", ""))] = model
    return type(answers[0])(models=[by_name[name] for name in sorted(by_name)])


def sdk_version() -> str:
    """The installed ollama's version (the package has no ``__version__``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ollama")
    except PackageNotFoundError:
        return "unknown"


def _named(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments only (positional ones named), generators read into lists."""
    if args:
        kwargs = dict(inspect.signature(wrapped).bind_partial(*args, **kwargs).arguments)
    return {k: list(v) if isinstance(v, (Iterator, GeneratorType)) else v for k, v in kwargs.items()}


def request_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """llama-stack's body: the keyword arguments; SDK objects dumped, functions named."""
    return {name: _json(value) for name, value in kwargs.items()}


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    if callable(value) and hasattr(value, "__qualname__"):  # a Python function given as a tool
        return f"<function {getattr(value, '__module__', '?')}.{value.__qualname__}>"
    return str(value)


_STATUS = re.compile(r"^(?P<error>.*) \(status code: (?P<status>-?\d+)\)$", re.DOTALL)


def rebuild_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    """``ResponseError`` with its reason and status code (its ``str()`` adds the code)."""
    import ollama

    match = _STATUS.match(message)
    error = match.group("error") if match else message
    status = status_code if isinstance(status_code, int) else int(match.group("status")) if match else -1
    return ollama.ResponseError(error, status)
