"""The OpenAI SDK: which methods are wrapped, and how their calls become recordings.

Each covered method is one line of :data:`PATCH_POINTS`; the machinery is the one every Stainless
SDK shares (:mod:`.stainless`). Requests are hashed from the method's keyword arguments, as
llama-stack does, so its recordings replay here. ``chat.completions.stream`` and
``responses.stream`` are covered through ``create``, which they call. ``parse`` methods store the
raw completion and run the SDK's own parser again on replay, so ``.parsed`` is the caller's
pydantic class, exactly as live. Other resources (files, batches, images, audio...) are not
wrapped; in replay they are refused, as are the websocket APIs (Realtime).
"""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import UnsupportedCallError
from ..modes import Mode
from ..recorder import Recorder
from .stainless import Endpoint, StainlessSdk, install_points
from .stainless import rebuild_error as rebuild_stainless_error

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


def azure_metadata(client: Any) -> dict[str, str]:
    """Azure clients also name the ``api-version`` they speak (llama-stack keeps it)."""
    import openai

    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        api_version = (getattr(client, "_custom_query", None) or {}).get("api-version")
        if isinstance(api_version, str):
            return {"azure_api_version": api_version}
    return {}


SDK = StainlessSdk(
    "openai",
    request_id_header="x-request-id",
    model_class="openai.types.Model",
    models_path="/models",
    page_fields=lambda models: {"object": "list"},
    provider_metadata=azure_metadata,
)


def install(recorder: Recorder) -> Any:
    patches = install_points(recorder, SDK, PATCH_POINTS)
    for module, name, call in REALTIME_POINTS:
        patches.wrap(module, name, refuse_realtime_in_replay(recorder, call), optional=True)
    return patches


def rebuild_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    import openai

    return rebuild_stainless_error(openai, name, message, status_code, body, url)


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


def render(recording: Any) -> str | None:
    """A person's view of an OpenAI answer: chat and Responses text, tool calls, embeddings."""
    response = recording.response
    body = response.body
    items = body if isinstance(body, list) else [body]
    if not items or not type(items[0]).__module__.startswith("openai."):
        return None
    if response.is_streaming:
        return f"({len(items)} chunks)\n" + "".join(_streamed_text(chunk) for chunk in items)
    if isinstance(body, list):  # a model list
        return "\n".join(str(getattr(item, "id", item)) for item in body)
    return _object_text(body)


def _streamed_text(chunk: Any) -> str:
    kind = getattr(chunk, "type", None)
    if isinstance(kind, str):
        return str(chunk.delta) if kind.endswith("output_text.delta") else ""
    pieces = []
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if delta is not None:
            pieces.append(delta.content or "")
            for call in delta.tool_calls or []:
                if call.function is not None:
                    pieces.append(f"{call.function.name or ''}{call.function.arguments or ''}")
        else:
            pieces.append(getattr(choice, "text", "") or "")
    return "".join(pieces)


def _object_text(body: Any) -> str | None:
    if hasattr(body, "output_text"):
        return str(body.output_text)
    choices = getattr(body, "choices", None)
    if choices:
        first = choices[0]
        message = getattr(first, "message", None)
        if message is not None:
            calls = [f"\n[tool call] {c.function.name}({c.function.arguments})" for c in message.tool_calls or []]
            return (message.content or "") + "".join(calls)
        return str(getattr(first, "text", ""))
    data = getattr(body, "data", None)
    if data and hasattr(data[0], "embedding"):
        return f"{len(data)} embedding(s)"
    return None
