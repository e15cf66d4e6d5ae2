"""Tavily: every public call of ``TavilyClient`` and ``AsyncTavilyClient`` that returns data.

Calls are recorded as tool calls (provider ``tavily``, the method's name as ``tool_name``). The
API key lives in the client and its headers, which are never read; ``request_id`` and
``response_time``, which change on every call, are made constant in the file.
"""

from __future__ import annotations

from typing import Any

from ..patching import Patches
from ..recorder import Recorder
from ..tools import tool_wrapper

METHODS = (
    "search",
    "extract",
    "crawl",
    "map",
    "qna_search",
    "get_search_context",
    "research",
    "get_research",
    "feedback",
)
CLIENTS = (("tavily.tavily", "TavilyClient", False), ("tavily.async_tavily", "AsyncTavilyClient", True))
VOLATILE_FIELDS = {"request_id": "rec-{hash}", "response_time": 0}


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    for module, client, is_async in CLIENTS:
        for method in METHODS:
            wrapper = tool_wrapper(
                recorder,
                "tavily",
                method,
                is_async=is_async,
                volatile_fields=VOLATILE_FIELDS,
                refuse=refuse_streamed_research,
            )
            patches.wrap(module, f"{client}.{method}", wrapper)
    return patches


def refuse_streamed_research(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("stream"):
        return (
            "tavily research(stream=True) yields raw bytes, which api-recorder does not record; call "
            "research() without stream, or run this test with LLAMA_STACK_TEST_INFERENCE_MODE=live."
        )
    return None
