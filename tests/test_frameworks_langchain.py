"""LangChain (`langchain-openai`) for real, against the local fake server: recorded, then replayed offline.

`ChatOpenAI` sends every non-streamed call through `with_raw_response` (`chat.completions.with_raw_response
.create`, `.with_raw_response.parse` for structured output, `responses.with_raw_response.create` on the
Responses API), streams with `chat.completions.create(stream=True)` or `responses.create(stream=True)`,
and with `include_response_headers=True` streams through `client.with_raw_response.responses.create`.
Each test records, stops the server, replays twice, and compares what a user of LangChain sees.
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from pydantic import BaseModel

pytest.register_assert_rewrite("framework_helpers")  # its asserts explain themselves
from framework_helpers import assert_same_answers, comparable, record_then_replay  # noqa: E402

pytest.importorskip("langchain_openai")
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_openai import ChatOpenAI, OpenAIEmbeddings  # noqa: E402

TEST_ID = "tests/test_frameworks_langchain.py::test_langchain"
API_KEY = "sk-test"


class City(BaseModel):
    name: str
    population: int
    tags: list[str]


@tool
def get_weather(city: str, days: int) -> str:
    """The weather forecast for a city, for a number of days."""
    return f"sunny in {city} for {days} days"


def chat(base_url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=base_url, api_key=API_KEY, model="gpt-4o", max_retries=0, **kwargs)


def own_async_http_client() -> Any:
    """An async HTTP client closed with its event loop.

    LangChain's default one is cached for the process (per base URL): with `asyncio.run`, its
    connection would outlive the loop and be reported as an unclosed transport in a later test.
    """
    return openai.DefaultAsyncHttpxClient()


def run_tool_loop(llm: ChatOpenAI, question: str) -> list[Any]:
    """Ask with the tool bound, run the tool call, send the ToolMessage back: every message, in order."""
    bound = llm.bind_tools([get_weather])
    messages: list[Any] = [HumanMessage(question)]
    asked = bound.invoke(messages)
    messages.append(asked)
    for call in asked.tool_calls:
        messages.append(get_weather.invoke(call))
    messages.append(bound.invoke(messages))
    return messages


def test_invoke(workdir, fake_openai):
    live, replayed, again = record_then_replay(
        fake_openai, workdir, TEST_ID, lambda url: chat(url).invoke("Tell me about Paris"), expected_requests=1
    )
    assert_same_answers(live, replayed, again)
    assert type(replayed) is AIMessage
    assert replayed.content.startswith("echo: Tell me about Paris")
    assert replayed.usage_metadata == live.usage_metadata and replayed.usage_metadata["total_tokens"] > 0
    assert replayed.response_metadata["finish_reason"] == "stop"
    assert replayed.response_metadata["id"].startswith("rec-") and live.response_metadata["id"].startswith("chatcmpl-")


def test_stream_with_and_without_usage(workdir, fake_openai):
    def scenario(url: str) -> dict[str, list[AIMessageChunk]]:
        return {
            "plain": list(chat(url).stream("Stream me a story")),
            "usage": list(chat(url, stream_usage=True).stream("Stream me a story")),
        }

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=2)
    assert_same_answers(live, replayed, again)
    for chunks in replayed.values():
        assert {type(chunk) for chunk in chunks} == {AIMessageChunk}
        assert len(chunks) > 3
    plain, with_usage = (sum(chunks[1:], chunks[0]) for chunks in (replayed["plain"], replayed["usage"]))
    assert plain.content == with_usage.content
    assert plain.content.startswith("echo: Stream me a story")
    assert plain.usage_metadata is None
    assert with_usage.usage_metadata["output_tokens"] == len(with_usage.content.split())
    sent = [request.body for request in fake_openai.requests]
    assert "stream_options" not in sent[0] and sent[1]["stream_options"] == {"include_usage": True}


def test_ainvoke_and_astream(workdir, fake_openai):
    async def scenario(url: str) -> tuple[AIMessage, list[AIMessageChunk]]:
        async with own_async_http_client() as http:
            llm = chat(url, http_async_client=http)
            answer = await llm.ainvoke("Hello asynchronously")
            chunks = [chunk async for chunk in llm.astream("Hello asynchronously")]
        return answer, chunks

    live, replayed, again = record_then_replay(
        fake_openai, workdir, TEST_ID, lambda url: asyncio.run(scenario(url)), expected_requests=2
    )
    assert_same_answers(live, replayed, again)
    answer, chunks = replayed
    assert type(answer) is AIMessage
    assert "".join(chunk.content for chunk in chunks) == answer.content


def test_bind_tools_loop(workdir, fake_openai):
    live, replayed, again = record_then_replay(
        fake_openai,
        workdir,
        TEST_ID,
        lambda url: run_tool_loop(chat(url), "What is the weather in Paris?"),
        expected_requests=2,
    )
    assert_same_answers(live, replayed, again)
    assert [type(message) for message in replayed] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    _, asked, tool_result, final = replayed
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "What is the weather in Paris?", "days": 42}
    assert call["id"] == live[1].tool_calls[0]["id"]  # ids one level down are kept as the server sent them
    assert asked.response_metadata["finish_reason"] == "tool_calls"
    assert tool_result.tool_call_id == call["id"]
    assert final.tool_calls == []
    assert final.content.startswith(f"Based on the tool result: {tool_result.content}")
    assert final.content == live[3].content


# LangChain dumps the SDK's ParsedChatCompletionChunk (whose `parsed` is typed None) itself, live or not.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(workdir, fake_openai, method):
    def scenario(url: str) -> tuple[City, dict[str, Any], list[City]]:
        llm = chat(url)
        parsed = llm.with_structured_output(City, method=method).invoke("Describe Paris")
        raw = llm.with_structured_output(City, method=method, include_raw=True).invoke("Describe Lyon")
        streamed = list(llm.with_structured_output(City, method=method).stream("Describe Nice"))
        return parsed, raw, streamed

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=3)
    assert_same_answers(live, replayed, again)
    parsed, raw, streamed = replayed
    assert type(parsed) is City and parsed == live[0]
    assert streamed and all(type(partial) is City for partial in streamed)
    assert streamed[-1] == live[2][-1]
    # json_schema streams through `client.beta.chat.completions.stream(...)`, function_calling with `stream=True`
    assert ("response_format" in fake_openai.requests[2].body) is (method == "json_schema")
    assert type(raw["parsed"]) is City and raw["parsing_error"] is None
    assert type(raw["raw"]) is AIMessage
    if method == "function_calling":  # the forced tool's arguments carry the question
        assert parsed == City(name="Describe Paris", population=42, tags=["tags-value"])
        assert raw["raw"].tool_calls[0]["name"] == "City"
    else:  # the answer's content is the JSON
        assert parsed == City(name="name-value", population=42, tags=["tags-value"])
        assert City.model_validate_json(raw["raw"].content) == raw["parsed"]


def test_include_response_headers_come_from_the_recording(workdir, fake_openai):
    def scenario(url: str) -> tuple[AIMessage, list[AIMessageChunk]]:
        llm = chat(url, include_response_headers=True)
        return llm.invoke("Headers please"), list(llm.stream("Headers please"))

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=2)
    assert_same_answers(live, replayed, again)
    answer, chunks = replayed
    assert live[0].response_metadata["headers"]["x-request-id"].startswith("req_")
    headers = answer.response_metadata["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"].startswith("rec-")
    stream_headers = chunks[0].response_metadata["headers"]
    assert stream_headers["content-type"].startswith("text/event-stream")
    assert comparable(again, mask_answer_ids=False) == comparable(replayed, mask_answer_ids=False)
    assert again[0].response_metadata["headers"] == headers


def test_responses_api_invoke_stream_and_tool_loop(workdir, fake_openai):
    def scenario(url: str) -> dict[str, Any]:
        llm = chat(url, use_responses_api=True)
        return {
            "invoke": llm.invoke("Tell me about Rome"),
            "stream": list(llm.stream("Tell me about Rome")),
            "loop": run_tool_loop(llm, "Weather in Rome?"),
            "headers": list(chat(url, use_responses_api=True, include_response_headers=True).stream("Hi")),
        }

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=5)
    assert_same_answers(live, replayed, again)
    assert all(request.path == "/v1/responses" for request in fake_openai.requests)
    answer = replayed["invoke"]
    assert type(answer) is AIMessage
    assert answer.text.startswith("echo: Tell me about Rome")
    streamed = sum(replayed["stream"][1:], replayed["stream"][0])
    assert streamed.text == answer.text
    assert [type(message) for message in replayed["loop"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert replayed["loop"][1].tool_calls[0]["args"] == {"city": "Weather in Rome?", "days": 42}
    assert replayed["loop"][3].text.startswith("Based on the tool result: sunny in Weather in Rome? for 42 days")
    assert replayed["headers"][0].response_metadata["headers"]["x-request-id"].startswith("rec-")


def test_embeddings(workdir, fake_openai):
    def embeddings(url: str, **kwargs: Any) -> OpenAIEmbeddings:
        return OpenAIEmbeddings(
            base_url=url, api_key=API_KEY, model="text-embedding-3-small", check_embedding_ctx_length=False, **kwargs
        )

    async def embed_async(url: str) -> list[list[float]]:
        async with own_async_http_client() as http:
            return await embeddings(url, http_async_client=http).aembed_documents(["delta"])

    def scenario(url: str) -> dict[str, Any]:
        return {
            "documents": embeddings(url).embed_documents(["alpha", "beta"]),
            "query": embeddings(url).embed_query("gamma"),
            "async": asyncio.run(embed_async(url)),
        }

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=3)
    assert replayed == live == again
    assert [len(vector) for vector in replayed["documents"]] == [1536, 1536]
    assert replayed["documents"][0] != replayed["documents"][1]
    assert all(type(value) is float for value in replayed["query"])
