"""The OpenAI SDK: which methods are wrapped, and how their calls become recordings.

Each covered method is one line of :data:`PATCH_POINTS`. Requests are hashed from the method's
keyword arguments, as llama-stack does, so its recordings replay here. ``chat.completions.stream``
and ``responses.stream`` are covered through ``create``, which they call. ``parse`` methods store
the raw completion and run the SDK's own parser again on replay, so ``.parsed`` is the caller's
pydantic class, exactly as live. Other resources (files, batches, images, audio...) are not
wrapped.
"""

from __future__ import annotations

import hashlib
import inspect
import warnings
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from types import GeneratorType
from typing import Any

import openai
import pydantic
import wrapt
from openai import AsyncStream, Stream
from openai._models import FinalRequestOptions
from openai._types import NotGiven, Omit
from openai.pagination import AsyncPage, SyncPage
from openai.types import Model

from ..context import test_id_headers_for
from ..errors import UnrecordableValueError, UnsupportedCallError
from ..modes import Mode
from ..patching import Patches
from ..recorder import HttpRequest, Recorder, RequestKey
from ..redaction import redact_query
from ..storage import RecordedResponse, Recording
from ..streams import AsyncRecordingStream, RecordingStream, ReplayAsyncStream, ReplayStream
from .openai_raw import LEGACY, hand_over, raw_response_mode, replayed_response, then


@dataclass(frozen=True)
class Endpoint:
    """One covered API call: the path llama-stack names it by, and the shape of its answer."""

    path: str
    method: str = "POST"
    answer: str = "object"  # "object" (maybe streamed), "page" (a model list) or "parsed"
    shared: bool = False  # model lists and lookups are shared by every test: no test id


CHAT = Endpoint("/v1/chat/completions")
CHAT_PARSE = Endpoint("/v1/chat/completions", answer="parsed")
COMPLETIONS = Endpoint("/v1/completions")
EMBEDDINGS = Endpoint("/v1/embeddings")
MODELS_LIST = Endpoint("/v1/models", answer="page", shared=True)
MODELS_RETRIEVE = Endpoint("/v1/models/{model}", method="GET", shared=True)
RESPONSES = Endpoint("/v1/responses")
RESPONSES_PARSE = Endpoint("/v1/responses", answer="parsed")

_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"

PATCH_POINTS: list[tuple[str, str, Endpoint]] = [
    (_CHAT_MODULE, "Completions.create", CHAT),
    (_CHAT_MODULE, "AsyncCompletions.create", CHAT),
    (_CHAT_MODULE, "Completions.parse", CHAT_PARSE),
    (_CHAT_MODULE, "AsyncCompletions.parse", CHAT_PARSE),
    ("openai.resources.completions", "Completions.create", COMPLETIONS),
    ("openai.resources.completions", "AsyncCompletions.create", COMPLETIONS),
    ("openai.resources.embeddings", "Embeddings.create", EMBEDDINGS),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", EMBEDDINGS),
    ("openai.resources.models", "Models.list", MODELS_LIST),
    ("openai.resources.models", "AsyncModels.list", MODELS_LIST),
    ("openai.resources.models", "Models.retrieve", MODELS_RETRIEVE),
    ("openai.resources.models", "AsyncModels.retrieve", MODELS_RETRIEVE),
    (_RESPONSES_MODULE, "Responses.create", RESPONSES),
    (_RESPONSES_MODULE, "AsyncResponses.create", RESPONSES),
    (_RESPONSES_MODULE, "Responses.parse", RESPONSES_PARSE),
    (_RESPONSES_MODULE, "AsyncResponses.parse", RESPONSES_PARSE),
]

# Arguments that change how a request travels, not what it asks: never hashed nor stored.
_TRANSPORT_ARGUMENTS = frozenset({"extra_headers", "timeout"})
THROUGH_WRAPPER: ContextVar[bool] = ContextVar("api_recorder_through_wrapper", default=False)


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    for module, name, endpoint in PATCH_POINTS:
        is_async = name.startswith("Async")
        patches.wrap(module, name, make_wrapper(recorder, endpoint, is_async=is_async))
    patches.wrap("openai._base_client", "BaseClient._build_request", send_test_id(recorder))
    patches.wrap("openai._base_client", "SyncAPIClient.request", refuse_uncovered_in_replay(recorder))
    patches.wrap("openai._base_client", "AsyncAPIClient.request", refuse_uncovered_in_replay(recorder))
    for module, name, call in REALTIME_POINTS:
        patches.wrap(module, name, refuse_realtime_in_replay(recorder, call), optional=True)
    return patches


def refuse_uncovered_in_replay(recorder: Recorder) -> Any:
    """Every request of a wrapped client passes here: what must not reach the network, does not.

    In replay, an uncovered call (files, batches...) fails fast. A covered call that did not come
    through the wrappers (its method was looked up before api-recorder was imported) fails in
    replay, and is warned about while recording, naming that cause. Passthrough clients (the
    server under test) go.
    """

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not recorder.intercepting or THROUGH_WRAPPER.get() or recorder.is_passthrough(str(instance.base_url)):
            return wrapped(*args, **kwargs)
        options = kwargs.get("options", args[1] if len(args) > 1 else None)
        method, path = str(getattr(options, "method", "?")).upper(), str(getattr(options, "url", "?"))
        if is_covered(method, path):
            message = bypass_message(method, path)
            if recorder.mode is Mode.REPLAY:
                raise UnsupportedCallError(message)
            warnings.warn(f"{message} This call was not recorded.", RuntimeWarning, stacklevel=2)
        elif recorder.mode is Mode.REPLAY:
            raise UnsupportedCallError(
                f"{method} {path}: this call is not covered by api-recorder, and replay mode never reaches the "
                "network. Run this test with LLAMA_STACK_TEST_INFERENCE_MODE=live, or name the server it "
                "talks to in enable(passthrough=[...]) if it is the server under test."
            )
        return wrapped(*args, **kwargs)

    return wrapper


# The Realtime API is a websocket: it never passes through SyncAPIClient.request. ``connect()``
# only builds the connection manager (entering it connects), but it has the same name in the beta
# and the GA modules of every SDK version that has them, and refusing it stops the call where it is
# written, before anything is queued or connected.
_TRANSLATIONS_MODULE = "openai.resources.realtime.translations.translations"
# Websocket APIs: never recorded, refused in replay. Each exists only in some SDK versions.
REALTIME_POINTS: list[tuple[str, str, str]] = [
    ("openai.resources.realtime.realtime", "Realtime.connect", "client.realtime.connect()"),
    ("openai.resources.realtime.realtime", "AsyncRealtime.connect", "client.realtime.connect()"),
    ("openai.resources.beta.realtime.realtime", "Realtime.connect", "client.beta.realtime.connect()"),
    ("openai.resources.beta.realtime.realtime", "AsyncRealtime.connect", "client.beta.realtime.connect()"),
    (_TRANSLATIONS_MODULE, "Translations.connect", "client.realtime.translations.connect()"),
    (_TRANSLATIONS_MODULE, "AsyncTranslations.connect", "client.realtime.translations.connect()"),
    (_RESPONSES_MODULE, "Responses.connect", "client.responses.connect()"),
    (_RESPONSES_MODULE, "AsyncResponses.connect", "client.responses.connect()"),
    ("openai.resources.beta.responses.responses", "Responses.connect", "client.beta.responses.connect()"),
    ("openai.resources.beta.responses.responses", "AsyncResponses.connect", "client.beta.responses.connect()"),
    ("openai.resources.live.live", "Live.connect", "client.live.connect()"),
    ("openai.resources.live.live", "AsyncLive.connect", "client.live.connect()"),
    ("openai.resources.live.forks", "Forks.connect", "client.live.forks.connect()"),
    ("openai.resources.live.forks", "AsyncForks.connect", "client.live.forks.connect()"),
    ("openai.resources.live.sideband", "Sideband.connect", "client.live.sideband.connect()"),
    ("openai.resources.live.sideband", "AsyncSideband.connect", "client.live.sideband.connect()"),
]


def refuse_realtime_in_replay(recorder: Recorder, call: str) -> Any:
    """Realtime connections are not recorded: refused in replay, warned about while recording."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        client = instance._client
        urls = [str(url) for url in (client.base_url, getattr(client, "websocket_base_url", None)) if url]
        if not recorder.intercepting or any(recorder.is_passthrough(url) for url in urls):
            return wrapped(*args, **kwargs)
        if recorder.mode is Mode.REPLAY:
            raise UnsupportedCallError(
                f"{call}: the Realtime API (a websocket) is not recorded by api-recorder, and replay mode never "
                "reaches the network. Run this test with LLAMA_STACK_TEST_INFERENCE_MODE=live, or name the server "
                "it talks to in enable(passthrough=[...]) if it is the server under test."
            )
        warnings.warn(
            f"{call}: the Realtime API (a websocket) is not recorded by api-recorder; this connection goes to "
            "the network unrecorded, and replay will refuse it.",
            RuntimeWarning,
            stacklevel=2,
        )
        return wrapped(*args, **kwargs)

    return wrapper


def is_covered(method: str, path: str) -> bool:
    """Whether a request (``POST /chat/completions``) is one that a patch point records."""
    for endpoint in {endpoint for _, _, endpoint in PATCH_POINTS}:
        covered, asked = endpoint.path.removeprefix("/v1"), path
        if "{" in covered:  # /models/{model}: any model
            covered, asked = covered[: covered.index("{")], path[: covered.index("{")]
        if endpoint.method == method and asked == covered:
            return True
    return False


def bypass_message(method: str, path: str) -> str:
    return (
        f"{method} {path} is a call api-recorder records, but it did not go through api-recorder's wrapper: "
        "the SDK method was looked up (for example a library kept client.chat.completions.create) before "
        "api-recorder was imported. Import api_recorder before that library (the pytest plugin does so for "
        "tests; in a script, `import api_recorder` first), or start the process with "
        "LLAMA_STACK_TEST_INFERENCE_MODE set so that auto-activation wraps the SDK when it is imported."
    )


def send_test_id(recorder: Recorder) -> Any:
    """Every request an OpenAI client sends while a test runs names the test (for server mode),
    in our header and in the provider data llama-stack's and OGX's servers read."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = wrapped(*args, **kwargs)
        test_id = recorder.current_test_id() if recorder.enabled else None
        if test_id:
            request.headers.update(test_id_headers_for(test_id, request.headers))
        return request

    return wrapper


def make_wrapper(recorder: Recorder, endpoint: Endpoint, *, is_async: bool) -> Any:
    """The wrapt wrapper of one patch point: pass through when not intercepting, else decide."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not recorder.intercepting or recorder.is_passthrough(str(instance._client.base_url)):
            return wrapped(*args, **kwargs)
        call = OpenAICall(recorder, endpoint, wrapped, instance, args, kwargs, is_async=is_async)
        if not is_async:
            return recorder.run(call, call.invoke)
        if endpoint.answer == "page":  # AsyncModels.list is sync and returns an awaitable paginator
            return AsyncPageRequest(lambda: recorder.run_async(call, call.invoke))
        return recorder.run_async(call, call.invoke)

    return wrapper


class OpenAICall:
    """One intercepted OpenAI call: its key, and how to replay or capture its answer."""

    normalizes_ids = True

    def __init__(
        self,
        recorder: Recorder,
        endpoint: Endpoint,
        wrapped: Any,
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        is_async: bool,
    ) -> None:
        self.endpoint = endpoint
        self.wrapped = wrapped
        self.instance = instance
        self.is_async = is_async
        self.kwargs = _name_positional_arguments(wrapped, args, _materialize_iterators(kwargs))
        self.raw_mode = raw_response_mode(self.kwargs)  # with_raw_response / with_streaming_response
        self.raw_answer: Any = None  # what parse() got from the API before parsing
        self.canned_answer: RecordedResponse | None = None  # what parse() is given back on replay
        self.key = self._build_key(recorder)

    def _build_key(self, recorder: Recorder) -> RequestKey:
        body = request_body(self.kwargs)
        path = self.endpoint.path
        if "{" in path:  # models.retrieve: the argument is the URL, not a body
            path, body = path.format(**body), {}
        client = self.instance._client
        key = recorder.http_key(
            HttpRequest(
                method=self.endpoint.method,
                url=str(client.base_url).rstrip("/") + path,
                endpoint=path,
                body=body,
                shared=self.endpoint.shared,
                provider_metadata=provider_metadata(client),
            )
        )
        if self.endpoint.answer == "page":  # model lists are named after the models they hold
            key.globs = [f"models-{name}-*.json" for name in key.hashes]
        return key

    # -- making the call --------------------------------------------------------------------

    def invoke(self) -> Any:
        """Make the real call (or, for parse on replay, run the SDK's parser on the recording).

        The request it sends is marked as one of ours, for :func:`refuse_uncovered_in_replay`.
        """
        if self.is_async:
            return _through_wrapper_async(self._call())
        token = THROUGH_WRAPPER.set(True)
        try:
            return self._call()
        finally:
            THROUGH_WRAPPER.reset(token)

    def _call(self) -> Any:
        if self.endpoint.answer == "parsed":
            resource_cls = AsyncParseResource if self.is_async else ParseResource
            return self.wrapped.__func__(resource_cls(self.instance, self), **self.kwargs)
        return self.wrapped(**self.kwargs)

    # -- answers --------------------------------------------------------------------------

    def replay(self, recording: Recording) -> Any:
        response = recording.response
        if self.endpoint.answer == "parsed":
            self.canned_answer = response
            return self.invoke()
        answer = self._replayed_answer(response)
        return self._as_raw_response(answer, response) if self.raw_mode else answer

    def _replayed_answer(self, response: RecordedResponse) -> Any:
        """The SDK's object; like the SDK, it carries the request id (normalized, as ids are)."""
        if self.endpoint.answer == "page":
            return self._page(response.body)
        if response.is_streaming:
            stream_cls = ReplayAsyncStream if self.is_async else ReplayStream
            headers = {"x-request-id": self.request_id}
            return stream_cls(response.iter_body(), error=response.error(), headers=headers)
        return with_request_id(response.body, self.request_id)

    @property
    def request_id(self) -> str:
        """The ``x-request-id`` a replayed answer carries: headers are not recorded, ids normalized."""
        return f"rec-{self.key.hash[:12]}"

    def _as_raw_response(self, answer: Any, response: RecordedResponse) -> Any:
        """What ``with_raw_response`` / ``with_streaming_response`` give: the SDK's response object."""
        request = self.key.request
        return replayed_response(
            self.raw_mode or LEGACY,
            answer,
            response,
            client=self.instance._client,
            method=request["method"],
            url=request["url"],
            request_id=self.request_id,
            is_async=self.is_async,
            page=self.endpoint.answer == "page",
        )

    def is_recordable_error(self, error: Exception) -> bool:
        return isinstance(error, openai.APIError)

    def answer_despite(self, error: Exception) -> Any:
        """parse(): the completion arrived and the SDK's parser refused it (length, content filter)."""
        if self.endpoint.answer == "parsed" and not isinstance(error, openai.APIError):
            return self.raw_answer
        return None

    def capture(self, result: Any, save: Any) -> Any:
        if self.endpoint.answer == "parsed":  # the raw completion, kept by ParseResource
            save(self.raw_answer, False)
            return result
        if self.raw_mode:  # the live response object; its parse() gives what is being recorded
            return then(result.parse(), lambda parsed: then(self._capture(parsed, save), partial(hand_over, result)))
        return self._capture(result, save)

    def _capture(self, result: Any, save: Any) -> Any:
        if isinstance(result, Stream):
            return RecordingStream(result, lambda chunks, error=None: save(chunks, True, error))
        if isinstance(result, AsyncStream):
            return AsyncRecordingStream(result, lambda chunks, error=None: save(chunks, True, error))
        if self.endpoint.answer == "page":
            return self._capture_page(result, save)
        save(result, False)
        return result

    def _capture_page(self, page: Any, save: Any) -> Any:
        if not self.is_async:
            save(list(page), False)
            return page

        async def collect() -> Any:
            save([item async for item in page], False)
            return page

        return collect()

    def _page(self, models: list[Any]) -> Any:
        page_cls = AsyncPage[Model] if self.is_async else SyncPage[Model]
        page = page_cls.construct(data=list(models), object="list")
        options = FinalRequestOptions.construct(method="get", url="/models")
        page._set_private_attributes(client=self.instance._client, model=Model, options=options)
        return page

    def parsed_replay(self, options: Any) -> Any:
        """``parse()`` on replay: the recorded completion through the SDK's parser (raw: wrapped)."""
        recorded = self.canned_answer
        assert recorded is not None
        answer = _parsed(with_request_id(recorded.body, self.request_id), options)
        return self._as_raw_response(answer, recorded) if self.raw_mode else answer

    def parsed_live(self, live: Any, options: Any) -> Any:
        """``parse()`` live: keep the unparsed completion for the file, hand the parsed one over."""
        if not self.raw_mode:
            self.raw_answer = live
            return _parsed(live, options)

        def keep(completion: Any) -> Any:
            self.raw_answer = completion
            return hand_over(live, _parsed(completion, options))

        return then(live.parse(), keep)

    def filename_for(self, body: Any) -> str:
        if self.endpoint.answer == "page" and body is not None:  # a failed model list has no models
            return f"models-{self.key.hash}-{model_ids_digest(body)}.json"
        return f"{self.key.hash}.json"


class ParseResource(wrapt.ObjectProxy):  # type: ignore[misc]
    """The resource as ``parse()`` sees it: ``_post`` yields the unparsed answer.

    Live, it asks the API without the parser and keeps the raw answer for the recording; on
    replay it hands over the recorded one. Either way the SDK's own parser then runs on it.
    """

    def __init__(self, resource: Any, call: OpenAICall) -> None:
        super().__init__(resource)
        self._self_call = call

    def _post(self, path: str, *, options: Any, **kwargs: Any) -> Any:
        call = self._self_call
        if call.canned_answer is not None:
            return call.parsed_replay(options)
        live = self.__wrapped__._post(path, options=_without_parser(options), **kwargs)
        return call.parsed_live(live, options)


class AsyncParseResource(ParseResource):
    """The async twin of :class:`ParseResource`."""

    async def _post(self, path: str, *, options: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        call = self._self_call
        if call.canned_answer is not None:
            return call.parsed_replay(options)
        live = await self.__wrapped__._post(path, options=_without_parser(options), **kwargs)
        return await _resolved(call.parsed_live(live, options))


def with_request_id(answer: Any, request_id: str) -> Any:
    """What the SDK does to every object it parses: ``answer._request_id`` from ``x-request-id``."""
    if isinstance(answer, openai.BaseModel):
        answer._request_id = request_id
    return answer


def _parsed(raw: Any, options: Any) -> Any:
    """What ``parse()`` returns: the raw answer through the SDK's own post-parser."""
    parser = options.get("post_parser") if isinstance(options, Mapping) else None
    return parser(raw) if callable(parser) else raw


class AsyncPageRequest:
    """What ``AsyncModels.list()`` returns while recording: awaitable and async-iterable."""

    def __init__(self, fetch: Any) -> None:
        self._fetch = fetch

    def __await__(self) -> Any:
        return self._fetch().__await__()

    async def __aiter__(self) -> Any:
        page = await self
        async for item in page:
            yield item


def _without_parser(options: Any) -> Any:
    return {k: v for k, v in options.items() if k != "post_parser"} if isinstance(options, Mapping) else options


async def _through_wrapper_async(awaitable: Any) -> Any:
    token = THROUGH_WRAPPER.set(True)
    try:
        return await awaitable
    finally:
        THROUGH_WRAPPER.reset(token)


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def provider_metadata(client: Any) -> dict[str, str]:
    """What llama-stack keeps about the provider: the SDK version, and Azure's ``api-version``."""
    metadata = {"openai_sdk_version": openai.__version__}
    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        api_version = (getattr(client, "_custom_query", None) or {}).get("api-version")
        if isinstance(api_version, str):
            metadata["azure_api_version"] = api_version
    return metadata


def request_body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as JSON: sentinels and transport options dropped, models dumped."""
    body = {
        name: to_json(value)
        for name, value in kwargs.items()
        if name not in _TRANSPORT_ARGUMENTS and not _is_sentinel(value)
    }
    if isinstance(body.get("extra_query"), dict):
        body["extra_query"] = redact_query(body["extra_query"])
    return body


def to_json(value: Any) -> Any:
    """A JSON form of an argument, as the SDK would send it (pydantic: set fields only)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items() if not _is_sentinel(v)}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        return {"pydantic_model": value.__name__, "json_schema": value.model_json_schema()}
    raise UnrecordableValueError(
        f"an argument of type {type(value).__module__}.{type(value).__qualname__} cannot be hashed or "
        "recorded: pass JSON values or pydantic models to covered OpenAI calls."
    )


def _is_sentinel(value: Any) -> bool:
    return isinstance(value, (NotGiven, Omit))


def _materialize_iterators(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Generators are read once: turn them into lists that both the hash and the SDK can read."""
    return {k: list(v) if isinstance(v, (Iterator, GeneratorType)) else v for k, v in kwargs.items()}


def _name_positional_arguments(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if not args:
        return kwargs
    bound = inspect.signature(wrapped).bind_partial(*args, **kwargs)
    return dict(bound.arguments)


def model_ids_digest(models: list[Any]) -> str:
    """llama-stack's suffix for model-list files: which models the list holds."""
    ids = sorted({getattr(model, "id", str(model)) for model in models})
    return hashlib.sha256("|".join(ids).encode()).hexdigest()[:8]
