"""Prove the fakes speak the real wire formats: real SDK clients against them, over HTTP.

No library code is involved here.  Raw payloads are additionally validated
with the SDK's own pydantic types (the SDK itself only `construct`s them, so a
missing required field would otherwise go unnoticed).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import struct
import time
import urllib.request
from enum import Enum
from typing import Any

import httpx
import openai
import pytest
import requests
import tavily
from openai.types import Completion, CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, Field, TypeAdapter
from tavily.errors import ForbiddenError

from .openai_app import FakeOpenAI, sample_from_schema, tool_arguments
from .server import LocalServer, read_request, send_json
from .tavily_app import FakeTavily

pytestmark = pytest.mark.filterwarnings("error")

MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class Step(BaseModel):
    explanation: str
    output: int


class MathAnswer(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float
    exact: bool
    color: Color
    note: str | None


class SearchArgs(BaseModel):
    query: str
    limit: int


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def raw_sse(url: str, body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """POST and split the SSE body into (event, data) pairs, independent of the SDK's decoder."""
    with httpx.Client() as http:
        response = http.post(url, json=body, headers={"authorization": "Bearer sk-test"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in response.text.split("\n\n"):
        if not frame.strip():
            continue
        event, data = None, []
        for line in frame.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        events.append((event, "\n".join(data)))
    return events


# ---------------------------------------------------------------------------
# LocalServer
# ---------------------------------------------------------------------------


async def _echo_path_app(scope: Any, receive: Any, send: Any) -> None:
    request = await read_request(scope, receive)
    await send_json(send, 200, {"path": request.path, "body": request.body})


def test_local_server_serves_as_soon_as_started_and_stops_quickly() -> None:
    server = LocalServer(_echo_path_app).start()
    try:
        with urllib.request.urlopen(server.base_url + "/ping") as response:
            assert json.loads(response.read()) == {"path": "/ping", "body": None}
        assert server.base_url == f"http://127.0.0.1:{server.port}"
    finally:
        started = time.perf_counter()
        server.stop()
    assert time.perf_counter() - started < 1.0
    assert not server.running


def test_local_server_stop_does_not_wait_for_idle_keep_alive_connections() -> None:
    with LocalServer(_echo_path_app) as server:
        session = requests.Session()
        assert session.post(server.base_url + "/x", json={"a": 1}).json() == {"path": "/x", "body": {"a": 1}}
        started = time.perf_counter()
    assert time.perf_counter() - started < 1.0
    session.close()


# ---------------------------------------------------------------------------
# Chat completions
# ---------------------------------------------------------------------------


def test_chat_completion_json_validates_against_sdk_types() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=user("Hello there"))
        strict = ChatCompletion.model_validate(json.loads(raw.http_response.text))
        completion = raw.parse()
    assert isinstance(completion, ChatCompletion)
    assert strict.choices[0].message.content == completion.choices[0].message.content
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert completion.system_fingerprint
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.startswith("echo: Hello there")
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content.split())
    assert raw.http_response.headers["x-request-id"].startswith("req_")


def test_chat_ids_and_timestamps_are_fresh_while_content_is_deterministic() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        before = int(time.time())
        first = client.chat.completions.create(model=MODEL, messages=user("same question"))
        second = client.chat.completions.create(model=MODEL, messages=user("same question"))
        other = client.chat.completions.create(model=MODEL, messages=user("different question"))
    assert first.id != second.id
    assert before <= first.created <= int(time.time())
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


def test_chat_max_tokens_sets_the_number_of_words() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        by_max_tokens = client.chat.completions.create(model=MODEL, messages=user("count"), max_tokens=200)
        by_max_completion = client.chat.completions.create(model=MODEL, messages=user("count"), max_completion_tokens=3)
        default = client.chat.completions.create(model=MODEL, messages=user("count"))
    assert len(by_max_tokens.choices[0].message.content.split()) == 200
    assert by_max_completion.choices[0].message.content.split() == [
        "echo:",
        "count",
        by_max_completion.choices[0].message.content.split()[2],
    ]
    assert len(default.choices[0].message.content.split()) == 8


def test_chat_stream_sends_role_chunk_one_chunk_per_word_and_finish_chunk() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        chunks = list(
            client.chat.completions.create(model=MODEL, messages=user("stream me"), max_tokens=200, stream=True)
        )
        whole = client.chat.completions.create(model=MODEL, messages=user("stream me"), max_tokens=200)
    assert len(chunks) == 202
    assert all(isinstance(chunk, ChatCompletionChunk) for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    words = [chunk.choices[0].delta.content for chunk in chunks[1:-1]]
    assert all(len(word.split()) == 1 for word in words)
    assert "".join(words) == whole.choices[0].message.content


def test_chat_stream_include_usage_appends_a_usage_chunk_without_choices() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=user("usage please"),
                max_tokens=4,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert len(chunks) == 7
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 4
    assert all(chunk.usage is None for chunk in chunks[:-1])


@pytest.mark.parametrize("with_tools", [False, True])
def test_chat_raw_stream_chunks_validate_and_end_with_done(with_tools: bool) -> None:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": user("raw"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if with_tools:
        body["tools"] = [openai.pydantic_function_tool(SearchArgs)]
    with FakeOpenAI() as fake:
        events = raw_sse(fake.url + "/chat/completions", body)
    assert events[-1] == (None, "[DONE]")
    chunks = [ChatCompletionChunk.model_validate(json.loads(data)) for _, data in events[:-1]]
    assert chunks[-2].choices[0].finish_reason == ("tool_calls" if with_tools else "stop")


def test_chat_stream_helper_returns_final_completion_sync() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        with client.chat.completions.stream(model=MODEL, messages=user("helper"), max_tokens=5) as stream:
            deltas = [event.delta for event in stream if event.type == "content.delta"]
            final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    assert deltas[0] == ""  # the role chunk carries content "" (as the real API does)
    assert len(deltas) == 6
    assert final.choices[0].finish_reason == "stop"


def test_chat_stream_helper_returns_final_completion_async() -> None:
    async def scenario(fake: FakeOpenAI) -> str:
        async with fake.async_client() as client:
            async with client.chat.completions.stream(model=MODEL, messages=user("async helper")) as stream:
                final = await stream.get_final_completion()
            return final.choices[0].message.content

    with FakeOpenAI() as fake:
        assert asyncio.run(scenario(fake)).startswith("echo: async helper")


def test_chat_tool_call_and_tool_result_reply() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "web_search",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        }
    ]
    with FakeOpenAI() as fake, fake.client() as client:
        messages: list[dict[str, Any]] = user("weather in Paris")
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24C. " + "x" * 300},
        ]
        second = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_")
    assert call.function.name == "web_search"
    assert json.loads(call.function.arguments) == {"query": "weather in Paris"}
    assert second.choices[0].message.tool_calls is None
    assert "Sunny, 24C." in second.choices[0].message.content
    assert "x" * 188 in second.choices[0].message.content  # tool content cut at 200 chars
    assert "x" * 189 not in second.choices[0].message.content


def test_chat_tool_call_streams_as_tool_call_deltas() -> None:
    tools = [openai.pydantic_function_tool(SearchArgs, name="search")]
    with FakeOpenAI() as fake, fake.client() as client:
        with client.chat.completions.stream(model=MODEL, messages=user("find cats"), tools=tools) as stream:
            events = list(stream)
            final = stream.get_final_completion()
        raw_chunks = list(
            client.chat.completions.create(model=MODEL, messages=user("find cats"), tools=tools, stream=True)
        )
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert len(done) == 1 and done[0].parsed_arguments == SearchArgs(query="find cats", limit=42)
    tool_call = final.choices[0].message.tool_calls[0]
    assert tool_call.function.parsed_arguments == SearchArgs(query="find cats", limit=42)
    assert final.choices[0].finish_reason == "tool_calls"
    first_delta = raw_chunks[0].choices[0].delta.tool_calls[0]
    assert first_delta.id.startswith("call_") and first_delta.function.name == "search"
    assert len(raw_chunks) > 3  # arguments arrive in several fragments


def test_tool_arguments_put_the_user_text_in_the_first_required_property() -> None:
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "city": {"type": "string"}},
        "required": ["city", "count"],
    }
    assert json.loads(tool_arguments(schema, "Paris")) == {"count": 42, "city": "Paris"}
    assert json.loads(tool_arguments(None, "anything")) == {"query": "anything"}


def test_schema_sampling_follows_refs_any_of_and_enums() -> None:
    schema = MathAnswer.model_json_schema()
    value = sample_from_schema(schema)
    assert MathAnswer.model_validate(value) == MathAnswer(
        steps=[Step(explanation="explanation-value", output=42)],
        final_answer="final_answer-value",
        confidence=1.5,
        exact=True,
        color=Color.RED,
        note="note-value",
    )


def test_chat_parse_returns_the_pydantic_model_sync_and_async() -> None:
    async def parse_async(fake: FakeOpenAI) -> Any:
        async with fake.async_client() as client:
            completion = await client.chat.completions.parse(
                model=MODEL, messages=user("solve 8x + 7 = -23"), response_format=MathAnswer
            )
            return completion.choices[0].message.parsed

    with FakeOpenAI() as fake, fake.client() as client:
        completion = client.chat.completions.parse(model=MODEL, messages=user("solve"), response_format=MathAnswer)
        parsed_async = asyncio.run(parse_async(fake))
        sent_format = fake.last_request.body["response_format"]
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, MathAnswer) and parsed.steps[0].output == 42
    assert parsed_async == parsed
    assert sent_format["type"] == "json_schema"


def test_chat_stream_helper_parses_response_format() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        with client.chat.completions.stream(
            model=MODEL, messages=user("structured stream"), response_format=MathAnswer
        ) as stream:
            final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, MathAnswer)


# ---------------------------------------------------------------------------
# Legacy completions
# ---------------------------------------------------------------------------


def test_legacy_completions_json_and_stream_agree() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        raw = client.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7
        )
        completion = raw.parse()
        chunks = list(
            client.completions.create(
                model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7, stream=True
            )
        )
    Completion.model_validate(json.loads(raw.http_response.text))
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert len(completion.choices[0].text.split()) == 7
    assert all(isinstance(chunk, Completion) for chunk in chunks)
    assert "".join(chunk.choices[0].text for chunk in chunks) == completion.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(chunks) == 8


# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------


def test_embeddings_sdk_requests_base64_by_default_and_decodes_to_the_float_values() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        decoded = client.embeddings.create(model=EMBEDDING_MODEL, input="hello world")
        default_body = fake.last_request.body
        as_floats = client.embeddings.create(model=EMBEDDING_MODEL, input="hello world", encoding_format="float")
        raw = client.embeddings.with_raw_response.create(
            model=EMBEDDING_MODEL, input="hello world", encoding_format="float"
        )
    assert default_body["encoding_format"] == "base64"
    assert isinstance(decoded.data[0].embedding, list)
    assert len(decoded.data[0].embedding) == 1536
    assert decoded.data[0].embedding == as_floats.data[0].embedding
    CreateEmbeddingResponse.model_validate(json.loads(raw.http_response.text))


def test_embeddings_explicit_base64_is_returned_undecoded() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        encoded = client.embeddings.create(model=EMBEDDING_MODEL, input="hi", encoding_format="base64", dimensions=8)
        floats = client.embeddings.create(model=EMBEDDING_MODEL, input="hi", encoding_format="float", dimensions=8)
    blob = encoded.data[0].embedding
    assert isinstance(blob, str)
    assert list(struct.unpack("<8f", base64.b64decode(blob))) == floats.data[0].embedding


def test_embeddings_batches_dimensions_and_token_inputs() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        batch = client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b", "a"], dimensions=16)
        tokens = client.embeddings.create(model=EMBEDDING_MODEL, input=[[1, 2, 3], [4]], dimensions=4)
        single_tokens = client.embeddings.create(model=EMBEDDING_MODEL, input=[1, 2, 3], dimensions=4)
    assert [item.index for item in batch.data] == [0, 1, 2]
    assert all(item.object == "embedding" and len(item.embedding) == 16 for item in batch.data)
    assert batch.data[0].embedding == batch.data[2].embedding != batch.data[1].embedding
    assert abs(sum(v * v for v in batch.data[0].embedding) - 1.0) < 1e-5
    assert batch.object == "list" and batch.usage.total_tokens == 3
    assert len(tokens.data) == 2 and tokens.data[0].embedding == single_tokens.data[0].embedding


def test_embeddings_async() -> None:
    async def scenario(fake: FakeOpenAI) -> Any:
        async with fake.async_client() as client:
            return await client.embeddings.create(model=EMBEDDING_MODEL, input=["x", "y"], dimensions=3)

    with FakeOpenAI() as fake:
        result = asyncio.run(scenario(fake))
    assert [len(item.embedding) for item in result.data] == [3, 3]


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def test_models_list_and_retrieve_sync() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        models = list(client.models.list())
        model = client.models.retrieve("gpt-4o")
        raw = client.models.with_raw_response.retrieve("gpt-4o")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    assert all(isinstance(m, Model) for m in models) and MODEL in {m.id for m in models}
    assert model.id == "gpt-4o" and model.object == "model" and model.owned_by == "system"
    Model.model_validate(json.loads(raw.http_response.text))
    assert missing.value.status_code == 404
    assert missing.value.code == "model_not_found"


def test_models_async_for_and_retrieve() -> None:
    async def scenario(fake: FakeOpenAI) -> tuple[list[str], str]:
        async with fake.async_client() as client:
            ids = [model.id async for model in client.models.list()]
            retrieved = await client.models.retrieve(EMBEDDING_MODEL)
            return ids, retrieved.id

    with FakeOpenAI(models=[{"id": "only-model", "object": "model", "created": 1, "owned_by": "me"}]) as fake:
        custom = fake.client()
        assert [m.id for m in custom.models.list()] == ["only-model"]
        custom.close()
    with FakeOpenAI() as fake:
        ids, retrieved = asyncio.run(scenario(fake))
    assert MODEL in ids and retrieved == EMBEDDING_MODEL


# ---------------------------------------------------------------------------
# Responses API
# ---------------------------------------------------------------------------


def test_responses_create_validates_against_sdk_types() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        raw = client.responses.with_raw_response.create(model=MODEL, input="Tell me a story", max_output_tokens=12)
        response = raw.parse()
        again = client.responses.create(model=MODEL, input="Tell me a story", max_output_tokens=12)
    Response.model_validate(json.loads(raw.http_response.text))
    assert isinstance(response, Response)
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.id != again.id
    assert response.output[0].id.startswith("msg_")
    assert response.output_text.startswith("echo: Tell me a story")
    assert len(response.output_text.split()) == 12
    assert response.output_text == again.output_text
    assert response.usage.output_tokens == 12


def test_responses_input_items_and_instructions() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        response = client.responses.create(
            model=MODEL,
            instructions="Be brief.",
            input=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "input_text", "text": "second question"}]},
            ],
        )
    assert response.output_text.startswith("echo: second question")
    assert response.instructions == "Be brief."


def test_responses_raw_function_call_stream_validates() -> None:
    body = {
        "model": MODEL,
        "input": "call it",
        "stream": True,
        "tools": [{"type": "function", "name": "lookup", "parameters": SearchArgs.model_json_schema()}],
    }
    with FakeOpenAI() as fake:
        events = raw_sse(fake.url + "/responses", body)
    adapter = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_python(json.loads(data)) for _, data in events]
    types = [event.type for event in parsed]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    arguments = "".join(e.delta for e in parsed if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"query": "call it", "limit": 42}
    assert parsed[-1].response.output[0].arguments == arguments


def test_responses_raw_stream_is_the_full_event_sequence() -> None:
    with FakeOpenAI() as fake:
        events = raw_sse(
            fake.url + "/responses",
            {"model": MODEL, "input": "four words please", "stream": True, "max_output_tokens": 4},
        )
    adapter = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_python(json.loads(data)) for _, data in events]
    assert [event_name for event_name, _ in events] == [event.type for event in parsed]
    assert [event.sequence_number for event in parsed] == list(range(len(parsed)))
    assert [event.type for event in parsed] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len({event.response.id for event in parsed if hasattr(event, "response")}) == 1


def test_responses_stream_helper_final_response_and_until_done_sync() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        with client.responses.stream(model=MODEL, input="stream helper") as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
        with client.responses.stream(model=MODEL, input="stream helper") as stream:
            again = stream.until_done().get_final_response()
    assert "".join(deltas) == final.output_text == again.output_text
    assert final.id != again.id


def test_responses_stream_helper_async() -> None:
    async def scenario(fake: FakeOpenAI) -> tuple[str, str]:
        async with fake.async_client() as client:
            async with client.responses.stream(model=MODEL, input="async stream") as stream:
                deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
                final = await stream.get_final_response()
            return "".join(deltas), final.output_text

    with FakeOpenAI() as fake:
        joined, text = asyncio.run(scenario(fake))
    assert joined == text and text.startswith("echo: async stream")


def test_responses_function_call_then_function_call_output() -> None:
    tools = [
        {
            "type": "function",
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
            "strict": True,
        }
    ]
    with FakeOpenAI() as fake, fake.client() as client:
        raw = client.responses.with_raw_response.create(model=MODEL, input="find me docs", tools=tools)
        first = raw.parse()
        call = first.output[0]
        followup = client.responses.create(
            model=MODEL,
            tools=tools,
            input=[
                {"role": "user", "content": "find me docs"},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "docs are at /docs"},
            ],
        )
    Response.model_validate(json.loads(raw.http_response.text))
    assert call.type == "function_call" and call.name == "lookup"
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"query": "find me docs"}
    assert "docs are at /docs" in followup.output_text


def test_responses_function_call_streams_argument_deltas() -> None:
    tools = [openai.pydantic_function_tool(SearchArgs, name="search")]
    with FakeOpenAI() as fake, fake.client() as client:
        with client.responses.stream(model=MODEL, input="stream a call", tools=tools) as stream:
            types = [event.type for event in stream]
            final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in types
    assert "response.function_call_arguments.done" in types
    assert final.output[0].parsed_arguments == SearchArgs(query="stream a call", limit=42)


def test_responses_parse_with_text_format_sync_and_async() -> None:
    async def parse_async(fake: FakeOpenAI) -> Any:
        async with fake.async_client() as client:
            response = await client.responses.parse(model=MODEL, input="structured", text_format=MathAnswer)
            return response.output_parsed

    with FakeOpenAI() as fake, fake.client() as client:
        response = client.responses.parse(model=MODEL, input="structured", text_format=MathAnswer)
        parsed_async = asyncio.run(parse_async(fake))
        with client.responses.stream(model=MODEL, input="structured", text_format=MathAnswer) as stream:
            streamed = stream.get_final_response()
    assert isinstance(response.output_parsed, MathAnswer)
    assert parsed_async == response.output_parsed == streamed.output_parsed


# ---------------------------------------------------------------------------
# Tool loops and schemas, the way agent frameworks drive them
# ---------------------------------------------------------------------------


class Booking(BaseModel):
    day: datetime.date
    seats: int = Field(ge=1, le=9)
    code: str = Field(max_length=4)
    color: Color
    window: bool
    guests: list[Step]


def chat_tool(name: str, model: type[BaseModel] = SearchArgs) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": model.model_json_schema()}}


def responses_tool(name: str, model: type[BaseModel] = SearchArgs) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": model.model_json_schema(), "strict": False}


def chat_tool_loop(client: openai.OpenAI, question: str) -> tuple[str, str]:
    """Ask, answer the tool call, ask again: (tool call id, final text)."""
    messages: list[dict[str, Any]] = user(question)
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[chat_tool("search")])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": f"result for {call.function.name}"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[chat_tool("search")])
    return call.id, second.choices[0].message.content


def responses_tool_loop(client: openai.OpenAI, question: str) -> tuple[str, str]:
    items: list[Any] = [{"role": "user", "content": question}]
    first = client.responses.create(model=MODEL, input=items, tools=[responses_tool("search")])
    call = first.output[0]
    items += [
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "ok"},
    ]
    second = client.responses.create(model=MODEL, input=items, tools=[responses_tool("search")])
    return call.call_id, second.output_text


def test_tool_loop_answers_the_same_words_on_every_run_though_call_ids_are_fresh() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        chat_runs = [chat_tool_loop(client, "find cats") for _ in range(2)]
        responses_runs = [responses_tool_loop(client, "find cats") for _ in range(2)]
    for (first_id, first_text), (second_id, second_text) in (chat_runs, responses_runs):
        assert first_id != second_id
        assert first_text == second_text
    assert chat_runs[0][1].startswith("Based on the tool result: result for search ")
    assert responses_runs[0][1].startswith("Based on the tool result: ok ")


def test_every_tool_result_after_the_last_user_turn_is_quoted() -> None:
    calls = [{"id": f"call_{n}", "type": "function", "function": {"name": "search", "arguments": "{}"}} for n in (1, 2)]
    chat_messages = [
        *user("old question"),
        {"role": "tool", "tool_call_id": "call_0", "content": "stale"},
        *user("two lookups"),
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "first result"},
        {"role": "tool", "tool_call_id": "call_2", "content": "second result"},
    ]
    items = [
        {"role": "user", "content": "two lookups"},
        {"type": "function_call", "call_id": "call_1", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "first result"},
        {"type": "function_call", "call_id": "call_2", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_2", "output": "second result"},
    ]
    with FakeOpenAI() as fake, fake.client() as client:
        chat = client.chat.completions.create(model=MODEL, messages=chat_messages, tools=[chat_tool("search")])
        response = client.responses.create(model=MODEL, input=items, tools=[responses_tool("search")])
    for text in (chat.choices[0].message.content, response.output_text):
        assert text.startswith("Based on the tool result: first result; second result ")
        assert "stale" not in text


def test_tool_choice_forces_the_named_tool_or_turns_tools_off() -> None:
    chat_tools = [chat_tool("first"), chat_tool("second")]
    with FakeOpenAI() as fake, fake.client() as client:
        default = client.chat.completions.create(model=MODEL, messages=user("q"), tools=chat_tools)
        forced = client.chat.completions.create(
            model=MODEL,
            messages=user("q"),
            tools=chat_tools,
            tool_choice={"type": "function", "function": {"name": "second"}},
        )
        off = client.chat.completions.create(model=MODEL, messages=user("q"), tools=chat_tools, tool_choice="none")
        responses_forced = client.responses.create(
            model=MODEL,
            input="q",
            tools=[responses_tool("first"), responses_tool("second")],
            tool_choice={"type": "function", "name": "second"},
        )
    assert default.choices[0].message.tool_calls[0].function.name == "first"
    assert forced.choices[0].message.tool_calls[0].function.name == "second"
    assert off.choices[0].message.tool_calls is None and off.choices[0].message.content.startswith("echo: q")
    assert responses_forced.output[0].type == "function_call" and responses_forced.output[0].name == "second"


@pytest.mark.parametrize(
    "key_schema",
    [
        {"type": "string", "format": "date"},
        {"type": "string", "maxLength": 4},
        {"type": "string", "pattern": "^[0-9]+$"},
        {"type": "string", "enum": ["a", "b"]},
        {"type": "integer", "minimum": 100},
    ],
    ids=["format", "max-length", "pattern", "enum", "integer"],
)
def test_a_key_property_that_cannot_hold_the_text_keeps_its_sampled_value(key_schema: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"key": key_schema}, "required": ["key"]}
    value = json.loads(tool_arguments(schema, "a question that fits none of these"))["key"]
    assert value == sample_from_schema(key_schema, name="key")


def test_chat_tool_arguments_fit_the_tool_schema_in_json_and_streams() -> None:
    tools = [openai.pydantic_function_tool(Booking)]
    with FakeOpenAI() as fake, fake.client() as client:
        completion = client.chat.completions.parse(model=MODEL, messages=user("book a table"), tools=tools)
        with client.chat.completions.stream(model=MODEL, messages=user("book a table"), tools=tools) as stream:
            streamed = stream.get_final_completion()
    parsed = completion.choices[0].message.tool_calls[0].function.parsed_arguments
    assert isinstance(parsed, Booking)
    assert parsed == Booking(
        day=datetime.date(2024, 1, 1),
        seats=9,
        code="code",
        color=Color.RED,
        window=True,
        guests=[Step(explanation="explanation-value", output=42)],
    )
    assert streamed.choices[0].message.tool_calls[0].function.parsed_arguments == parsed


def test_responses_function_call_then_structured_answer_like_an_agent_with_an_output_type() -> None:
    tools = [openai.pydantic_function_tool(SearchArgs, name="search")]
    with FakeOpenAI() as fake, fake.client() as client:
        first = client.responses.parse(model=MODEL, input="solve it", tools=tools, text_format=MathAnswer)
        call = first.output[0]
        items = [
            {"role": "user", "content": "solve it"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "x = 2"},
        ]
        with client.responses.stream(model=MODEL, input=items, tools=tools, text_format=MathAnswer) as stream:
            events = [event.type for event in stream]
            final = stream.get_final_response()
    assert call.type == "function_call" and call.parsed_arguments == SearchArgs(query="solve it", limit=42)
    assert first.output_parsed is None
    assert isinstance(final.output_parsed, MathAnswer)
    assert events[:2] == ["response.created", "response.in_progress"] and events[-1] == "response.completed"
    assert "response.output_text.delta" in events


def test_chat_json_schema_response_format_as_a_plain_dict_fits_the_schema() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "math_answer", "schema": MathAnswer.model_json_schema(), "strict": True},
    }
    with FakeOpenAI() as fake, fake.client() as client:
        completion = client.chat.completions.create(
            model=MODEL, messages=user("solve"), response_format=response_format
        )
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=user("solve"), response_format=response_format, stream=True
            )
        )
    content = completion.choices[0].message.content
    assert MathAnswer.model_validate_json(content).steps[0].output == 42
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == content


# ---------------------------------------------------------------------------
# Errors, retries, mid-stream failures, request recording
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_injected_errors_raise_the_sdk_exception(status: int, exception: type, error_type: str) -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_next(status, message="custom failure")
        with pytest.raises(exception) as caught:
            client.chat.completions.create(model=MODEL, messages=user("boom"))
        assert client.chat.completions.create(model=MODEL, messages=user("fine")).choices
    assert caught.value.status_code == status
    assert caught.value.type == error_type
    assert caught.value.body["message"] == "custom failure"
    assert caught.value.body["param"] is None


def test_rate_limit_error_carries_retry_after_zero() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_next(429)
        with pytest.raises(openai.RateLimitError) as caught:
            client.embeddings.create(model=EMBEDDING_MODEL, input="x")
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "0"


def test_fail_next_honors_path_and_count() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_next(500, count=2, path="/embeddings")
        client.models.list()
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                client.embeddings.create(model=EMBEDDING_MODEL, input="x")
        client.embeddings.create(model=EMBEDDING_MODEL, input="x")
        fake.fail_next(400, path="/v1/models")
        with pytest.raises(openai.BadRequestError):
            client.models.list()


def test_sdk_retry_succeeds_after_one_injected_500() -> None:
    with FakeOpenAI() as fake, fake.client(max_retries=2) as client:
        fake.fail_next(500, count=1)
        completion = client.chat.completions.create(model=MODEL, messages=user("retry me"))
    assert completion.choices[0].message.content.startswith("echo: retry me")
    assert fake.request_count == 2
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]


def test_async_client_sees_injected_errors() -> None:
    async def scenario(fake: FakeOpenAI) -> int:
        async with fake.async_client() as client:
            fake.fail_next(429)
            try:
                await client.responses.create(model=MODEL, input="x")
            except openai.RateLimitError as error:
                return error.status_code
        return 0

    with FakeOpenAI() as fake:
        assert asyncio.run(scenario(fake)) == 429


def test_mid_stream_failure_raises_api_error_in_chat_stream() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_mid_stream(after_chunks=3)
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in client.chat.completions.create(model=MODEL, messages=user("break"), stream=True):
                received.append(chunk)
        assert len(received) == 3
        assert "injected" in caught.value.message
        assert len(list(client.chat.completions.create(model=MODEL, messages=user("ok"), stream=True))) == 10


def test_mid_stream_failure_raises_in_stream_helpers_sync_and_async() -> None:
    async def async_chat(fake: FakeOpenAI) -> None:
        async with fake.async_client() as client:
            async with client.chat.completions.stream(model=MODEL, messages=user("x")) as stream:
                await stream.get_final_completion()

    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_mid_stream(after_chunks=5, path="/responses")
        with pytest.raises(openai.APIError):
            with client.responses.stream(model=MODEL, input="break responses") as stream:
                stream.get_final_response()
        fake.fail_mid_stream(after_chunks=2)
        with pytest.raises(openai.APIError):
            asyncio.run(async_chat(fake))


def test_mid_stream_failure_ignores_non_streaming_requests() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        fake.fail_mid_stream(after_chunks=1)
        client.chat.completions.create(model=MODEL, messages=user("not streamed"))
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model=MODEL, messages=user("streamed"), stream=True))


def test_unknown_route_and_missing_parameters_are_openai_errors() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        with pytest.raises(openai.NotFoundError):
            client.get("/nope", cast_to=object)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=[])
    assert caught.value.param == "messages"


def test_requests_are_recorded_and_reset() -> None:
    with FakeOpenAI() as fake, fake.client() as client:
        client.chat.completions.create(model=MODEL, messages=user("record me"), extra_query={"trace": "1"})
        request = fake.last_request
        assert fake.request_count == 1 and fake.requests_to("/chat/completions") == [request]
        fake.fail_next(500)
        fake.reset()
        client.models.list()
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.query == {"trace": "1"}
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body == {"model": MODEL, "messages": user("record me")}
    assert fake.request_count == 1


# ---------------------------------------------------------------------------
# Tavily
# ---------------------------------------------------------------------------


def test_tavily_search_content_is_deterministic_while_ids_and_timing_are_fresh() -> None:
    with FakeTavily() as fake, fake.client() as client:
        first = client.search("what is python")
        second = client.search("what is python")
    assert first["request_id"] != second["request_id"]
    assert isinstance(first["response_time"], float)
    assert first["results"] == second["results"]
    assert first["query"] == "what is python" and first["answer"] is None and first["images"] == []
    assert len(first["results"]) == 5
    scores = [result["score"] for result in first["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert set(first["results"][0]) >= {"title", "url", "content", "score", "raw_content"}
    assert fake.last_request.headers["authorization"] == "Bearer tvly-test"


def test_tavily_search_options_shape_the_answer() -> None:
    with FakeTavily() as fake, fake.client() as client:
        result = client.search(
            "rust async",
            max_results=2,
            include_answer=True,
            include_images=True,
            include_raw_content=True,
            include_favicon=True,
            include_usage=True,
        )
    assert "rust async" in result["answer"]
    assert len(result["images"]) == 2 and len(result["results"]) == 2
    assert result["results"][0]["raw_content"] and result["results"][0]["favicon"].endswith("favicon.ico")
    assert result["usage"] == {"credits": 1}


def test_tavily_extract_crawl_and_map_sync() -> None:
    with FakeTavily() as fake, fake.client() as client:
        extracted = client.extract(["https://a.example/x", "https://fail.example/y"])
        crawled = client.crawl("https://docs.example", limit=2)
        mapped = client.map("https://docs.example")
    assert [r["url"] for r in extracted["results"]] == ["https://a.example/x"]
    assert extracted["failed_results"][0]["url"] == "https://fail.example/y"
    assert [r["url"] for r in crawled["results"]] == ["https://docs.example", "https://docs.example/page-1"]
    assert crawled["base_url"] == "https://docs.example"
    assert mapped["results"][0] == "https://docs.example" and len(mapped["results"]) == 3
    assert [r.path for r in fake.requests] == ["/extract", "/crawl", "/map"]


def test_tavily_async_client_all_endpoints() -> None:
    async def scenario(fake: FakeTavily) -> list[Any]:
        async with fake.async_client() as client:
            return [
                await client.search("async query", include_answer=True),
                await client.extract("https://a.example"),
                await client.crawl("https://docs.example"),
                await client.map("https://docs.example"),
            ]

    with FakeTavily() as fake:
        searched, extracted, crawled, mapped = asyncio.run(scenario(fake))
        sync_result = fake.client().search("async query", include_answer=True)
    assert searched["results"] == sync_result["results"] and searched["answer"] == sync_result["answer"]
    assert extracted["results"][0]["url"] == "https://a.example"
    assert len(crawled["results"]) == 3 and len(mapped["results"]) == 3


def test_tavily_qna_search_returns_the_answer() -> None:
    async def scenario(fake: FakeTavily) -> str:
        async with fake.async_client() as client:
            return await client.qna_search("who wrote python")

    with FakeTavily() as fake, fake.client() as client:
        with pytest.warns(DeprecationWarning):
            answer = client.qna_search("who wrote python")
        async_answer = asyncio.run(scenario(fake))  # the async client does not warn
        sent = fake.requests[0].body
    assert answer == async_answer and "who wrote python" in answer
    assert sent["include_answer"] is True and sent["search_depth"] == "advanced"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, tavily.BadRequestError),
        (401, tavily.InvalidAPIKeyError),
        (403, ForbiddenError),
        (429, tavily.UsageLimitExceededError),
        (432, ForbiddenError),
        (433, ForbiddenError),
        (500, requests.HTTPError),
    ],
)
def test_tavily_injected_errors_map_to_client_errors(status: int, exception: type) -> None:
    with FakeTavily() as fake, fake.client() as client:
        fake.fail_next(status, message="tavily says no")
        with pytest.raises(exception) as caught:
            client.search("x")
        assert client.search("x")["results"]
    if status != 500:
        assert str(caught.value) == "tavily says no"


def test_tavily_async_errors_and_path_filter() -> None:
    async def scenario(fake: FakeTavily) -> list[str]:
        outcomes = []
        async with fake.async_client() as client:
            fake.fail_next(429, path="/extract")
            outcomes.append(type(await client.search("fine")).__name__)
            for call in (client.extract("https://a.example"), client.search("y")):
                try:
                    await call
                    outcomes.append("ok")
                except tavily.UsageLimitExceededError:
                    outcomes.append("limited")
            fake.fail_next(502)
            try:
                await client.map("https://a.example")
            except httpx.HTTPStatusError as error:
                outcomes.append(str(error.response.status_code))
        return outcomes

    with FakeTavily() as fake:
        assert asyncio.run(scenario(fake)) == ["dict", "limited", "ok", "502"]
