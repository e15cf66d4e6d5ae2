"""Every covered OpenAI call, sync and async, each reduced to comparable plain data.

A scenario returns ``(objects, summary)``: the typed objects the SDK returned (to check their
exact classes) and a plain summary with per-call ids and timestamps masked (to compare live
with replay field by field and in order).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

GENERATED_ID = re.compile(r"^(chatcmpl-|cmpl-|resp_|rec-)[A-Za-z0-9_-]+$")


class CityInfo(BaseModel):
    name: str
    population: int
    tags: list[str]


def masked(value: Any) -> Any:
    """Plain data with generated top-level ids and timestamps masked."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", warnings=False)
    if isinstance(value, dict):
        return {key: "<ts>" if key in ("created", "created_at") else masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str) and GENERATED_ID.match(value):
        return "<id>"
    return value


MESSAGES = [{"role": "user", "content": "Tell me about Paris in a few words"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]


# The stream helpers of openai 1.x and 2.x (async ones) auto-parse tool calls and accept only
# strict function tools: the same tool, strict, works with every major.
STRICT_TOOLS = [
    {
        "type": "function",
        "function": {
            **TOOLS[0]["function"],
            "strict": True,
            "parameters": {**TOOLS[0]["function"]["parameters"], "additionalProperties": False},
        },
    }
]


def chat(client):
    out = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)
    return [out], masked(out)


async def chat_async(client):
    out = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)
    return [out], masked(out)


def chat_stream(client):
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, max_tokens=12))
    return chunks, masked(chunks)


async def chat_stream_async(client):
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, max_tokens=12)
    chunks = [chunk async for chunk in stream]
    return chunks, masked(chunks)


def chat_tool_call(client):
    out = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
    return [out], masked(out)


async def chat_tool_call_async(client):
    out = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
    return [out], masked(out)


def chat_stream_helper(client):
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, tools=STRICT_TOOLS) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    return [final], {"events": events, "final": masked(final)}


async def chat_stream_helper_async(client):
    async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, tools=STRICT_TOOLS) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_completion()
    return [final], {"events": events, "final": masked(final)}


def chat_parse(client):
    out = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=CityInfo)
    parsed = out.choices[0].message.parsed
    return [out, parsed], {"out": masked(out), "parsed": parsed.model_dump()}


async def chat_parse_async(client):
    out = await client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=CityInfo)
    parsed = out.choices[0].message.parsed
    return [out, parsed], {"out": masked(out), "parsed": parsed.model_dump()}


def completion(client):
    out = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    return [out], masked(out)


async def completion_async(client):
    out = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    return [out], masked(out)


def completion_stream(client):
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True))
    return chunks, masked(chunks)


async def completion_stream_async(client):
    stream = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True)
    chunks = [chunk async for chunk in stream]
    return chunks, masked(chunks)


def embeddings_float(client):
    out = client.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float", dimensions=8
    )
    return [out], masked(out)


async def embeddings_float_async(client):
    out = await client.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float", dimensions=8
    )
    return [out], masked(out)


def embeddings_base64(client):
    out = client.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="base64")
    return [out], masked(out)


async def embeddings_base64_async(client):
    out = await client.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="base64")
    return [out], masked(out)


def embeddings_default(client):
    out = client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=16)
    return [out], masked(out)


async def embeddings_default_async(client):
    out = await client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=16)
    return [out], masked(out)


def models_list(client):
    page = client.models.list()
    models = list(page)
    return [page, *models], masked(models)


async def models_list_async(client):
    models = [model async for model in client.models.list()]
    page = await client.models.list()
    return [page, *models], masked(models)


def models_retrieve(client):
    out = client.models.retrieve("gpt-4o")
    return [out], masked(out)


async def models_retrieve_async(client):
    out = await client.models.retrieve("gpt-4o")
    return [out], masked(out)


def responses_create(client):
    out = client.responses.create(model="gpt-4o", input="Tell me about Paris")
    return [out], {"out": masked(out), "text": out.output_text}


async def responses_create_async(client):
    out = await client.responses.create(model="gpt-4o", input="Tell me about Paris")
    return [out], {"out": masked(out), "text": out.output_text}


def responses_stream(client):
    events = list(client.responses.create(model="gpt-4o", input="Tell me about Paris", stream=True))
    return events, masked(events)


async def responses_stream_async(client):
    stream = await client.responses.create(model="gpt-4o", input="Tell me about Paris", stream=True)
    events = [event async for event in stream]
    return events, masked(events)


def responses_stream_helper(client):
    with client.responses.stream(model="gpt-4o", input="Tell me about Paris") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    return [final], {"deltas": deltas, "final": masked(final), "text": final.output_text}


async def responses_stream_helper_async(client):
    async with client.responses.stream(model="gpt-4o", input="Tell me about Paris") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    return [final], {"deltas": deltas, "final": masked(final), "text": final.output_text}


def responses_parse(client):
    out = client.responses.parse(model="gpt-4o", input="Tell me about Paris", text_format=CityInfo)
    return [out, out.output_parsed], {"out": masked(out), "parsed": out.output_parsed.model_dump()}


async def responses_parse_async(client):
    out = await client.responses.parse(model="gpt-4o", input="Tell me about Paris", text_format=CityInfo)
    return [out, out.output_parsed], {"out": masked(out), "parsed": out.output_parsed.model_dump()}


SYNC = {
    name: fn
    for name, fn in globals().items()
    if callable(fn) and not name.endswith("_async") and f"{name}_async" in globals()
}
ASYNC = {name: globals()[f"{name}_async"] for name in SYNC}
