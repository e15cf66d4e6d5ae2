"""The Anthropic SDK: which methods are wrapped; the machinery is every Stainless SDK's.

``messages.create`` (streamed and not), ``messages.stream()`` (the helper: its events,
``text_stream`` and ``get_final_message()`` are the SDK's own code running on the live or the
replayed event stream), ``messages.parse`` (the raw ``Message`` is stored, the SDK's parser runs
again on replay), ``messages.count_tokens``, ``models.list`` / ``models.retrieve``, and the same
under ``beta.``. ``messages.stream(**kw)`` is recorded as ``messages.create(stream=True, **kw)``,
the request it sends: either call replays the other's file. Message ids (``msg_...``) are
normalized like OpenAI's; tool-use ids inside the content are kept, since later requests quote
them. Other resources (batches, files...) are not recorded and are refused in replay.
"""

from __future__ import annotations

from typing import Any

from ..recorder import Recorder
from .stainless import Endpoint, StainlessSdk, install_points
from .stainless import rebuild_error as rebuild_stainless_error

MESSAGES = Endpoint("/v1/messages")
MESSAGES_STREAM = Endpoint("/v1/messages", answer="helper", adds=(("stream", True),))
MESSAGES_PARSE = Endpoint("/v1/messages", answer="parsed")
COUNT_TOKENS = Endpoint("/v1/messages/count_tokens")
MODELS_LIST = Endpoint("/v1/models", answer="page", shared=True)
MODELS_RETRIEVE = Endpoint("/v1/models/{model_id}", method="GET", shared=True)
BETA_MODELS_LIST = Endpoint("/v1/models", answer="page", shared=True, page_item="anthropic.types.beta.BetaModelInfo")

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"


def _both(module: str, name: str, endpoint: Endpoint) -> list[tuple[str, str, Endpoint]]:
    """A method of the sync resource and its async twin."""
    owner, method = name.split(".")
    return [(module, name, endpoint), (module, f"Async{owner}.{method}", endpoint)]


PATCH_POINTS: list[tuple[str, str, Endpoint]] = [
    *_both(_MESSAGES, "Messages.create", MESSAGES),
    *_both(_MESSAGES, "Messages.stream", MESSAGES_STREAM),
    *_both(_MESSAGES, "Messages.count_tokens", COUNT_TOKENS),
    *_both("anthropic.resources.models", "Models.list", MODELS_LIST),
    *_both("anthropic.resources.models", "Models.retrieve", MODELS_RETRIEVE),
]

# Methods that only some versions of the SDK have: wrapped where they exist.
OPTIONAL_POINTS: list[tuple[str, str, Endpoint]] = [
    *_both(_MESSAGES, "Messages.parse", MESSAGES_PARSE),
    *_both(_BETA_MESSAGES, "Messages.create", MESSAGES),
    *_both(_BETA_MESSAGES, "Messages.stream", MESSAGES_STREAM),
    *_both(_BETA_MESSAGES, "Messages.parse", MESSAGES_PARSE),
    *_both(_BETA_MESSAGES, "Messages.count_tokens", COUNT_TOKENS),
    *_both("anthropic.resources.beta.models", "Models.list", BETA_MODELS_LIST),
    *_both("anthropic.resources.beta.models", "Models.retrieve", MODELS_RETRIEVE),
]


def page_fields(models: list[Any]) -> dict[str, Any]:
    """An Anthropic page around the recorded models: one page, first and last id."""
    ids = [getattr(model, "id", None) for model in models]
    return {"has_more": False, "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


SDK = StainlessSdk(
    "anthropic",
    request_id_header="request-id",
    model_class="anthropic.types.ModelInfo",
    models_path="/v1/models",
    page_fields=page_fields,
)


def install(recorder: Recorder) -> Any:
    return install_points(recorder, SDK, PATCH_POINTS, optional=OPTIONAL_POINTS)


def rebuild_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    """The SDK's class (``RateLimitError``, ``OverloadedError``...) with the recorded status and body.

    An error event in the middle of a stream arrives with the stream's status, 200: the SDK raises
    the base ``APIStatusError`` for it, and so does replay.
    """
    import anthropic

    return rebuild_stainless_error(anthropic, name, message, status_code, body, url)


def render(recording: Any) -> str | None:
    """A person's view of an Anthropic answer: text and tool uses; a stream's deltas joined."""
    response = recording.response
    body = response.body
    items = body if isinstance(body, list) else [body]
    if not items or not type(items[0]).__module__.startswith("anthropic."):
        return None
    if response.is_streaming:
        return f"({len(items)} events)\n" + "".join(_delta_text(event) for event in items)
    if isinstance(body, list):  # a model list
        return "\n".join(str(getattr(item, "id", item)) for item in body)
    content = getattr(body, "content", None)
    if content is None:
        tokens = getattr(body, "input_tokens", None)
        return f"{tokens} input tokens" if tokens is not None else None
    return "".join(_block_text(block) for block in content)


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind == "tool_use":
        return f"\n[tool use] {block.name}({block.input})"
    if kind == "thinking":
        return f"[thinking] {block.thinking}\n"
    return ""


def _delta_text(event: Any) -> str:
    if getattr(event, "type", None) == "content_block_start" and getattr(event.content_block, "type", "") == "tool_use":
        return f"\n[tool use] {event.content_block.name}"
    delta = getattr(event, "delta", None) if getattr(event, "type", None) == "content_block_delta" else None
    if delta is None:
        return ""
    return str(getattr(delta, "text", None) or getattr(delta, "partial_json", None) or "")
