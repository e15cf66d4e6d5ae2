"""The OpenAI Agents SDK (`openai-agents`) for real, against the local fake server: recorded, then replayed.

An agent with a function tool runs its loop (model asks for the tool, the SDK runs it, the model
answers) through `Runner.run` and `Runner.run_streamed`, on the Responses API (`responses.create`,
and `responses.with_streaming_response.create` when streamed) and on Chat Completions
(`chat.completions.create`, streamed or not). Each test records, stops the server, replays twice
and compares the run: final output, new items (types and contents), model responses and usage,
and for streamed runs every event, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

pytest.register_assert_rewrite("framework_helpers")  # its asserts explain themselves
from framework_helpers import assert_same_answers, record_then_replay  # noqa: E402

pytest.importorskip("agents")
from agents import (  # noqa: E402
    Agent,
    ItemHelpers,
    MessageOutputItem,
    ModelSettings,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import _openai_shared  # noqa: E402
from agents.result import RunResultBase  # noqa: E402
from agents.tracing import get_trace_provider  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

TEST_ID = "tests/test_frameworks_agents.py::test_agents"
API_KEY = "sk-test"
QUESTION = "What is the weather in Paris?"
APIS = ["responses", "chat_completions"]


class Forecast(BaseModel):
    city: str
    temperature: int
    sunny: bool


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(autouse=True)
def agents_defaults(monkeypatch):
    """Tracing off; the SDK's process-wide client, API and tracing flag are restored after the test."""
    for name in ("_default_openai_client", "_use_responses_by_default"):
        monkeypatch.setattr(_openai_shared, name, getattr(_openai_shared, name))
    provider = get_trace_provider()
    for name in ("_manual_disabled", "_disabled"):
        if hasattr(provider, name):
            monkeypatch.setattr(provider, name, getattr(provider, name))
    set_tracing_disabled(True)


def item_view(item: Any) -> dict[str, Any]:
    return {"class": type(item), "type": item.type, "raw_item": item.raw_item, "output": getattr(item, "output", None)}


def event_view(event: Any) -> dict[str, Any]:
    if event.type == "raw_response_event":
        return {"type": event.type, "data": event.data}
    if event.type == "run_item_stream_event":
        return {"type": event.type, "name": event.name, "item": item_view(event.item)}
    return {"type": event.type, "agent": event.new_agent.name}


def result_view(result: RunResultBase) -> dict[str, Any]:
    """What a test of an agent asserts on, as data (the Agent objects themselves left out)."""
    return {
        "final_output": result.final_output,
        "new_items": [item_view(item) for item in result.new_items],
        "raw_responses": [
            {"output": r.output, "usage": r.usage, "response_id": r.response_id} for r in result.raw_responses
        ],
        "usage": result.context_wrapper.usage,
    }


def agent_run(api: str, *, streamed: bool, output_type: type | None = None):
    """A scenario: point the SDK at `base_url`, run the agent, return (result view, event views)."""

    def scenario(base_url: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
        async def run() -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
            async with AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
                set_default_openai_client(client, use_for_tracing=False)
                set_default_openai_api(api)
                return await run_agent()

        async def run_agent() -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
            agent = Agent(
                name="forecaster",
                instructions="Answer with the forecast.",
                model="gpt-4o",
                tools=[get_weather],
                output_type=output_type,
                # off by default for a base URL that is not OpenAI's: the streamed chat run would count 0 tokens
                model_settings=ModelSettings(include_usage=True),
            )
            if not streamed:
                result = await Runner.run(agent, QUESTION)
                return result_view(result), [], result.new_items
            streaming = Runner.run_streamed(agent, QUESTION)
            events = [event_view(event) async for event in streaming.stream_events()]
            return result_view(streaming), events, streaming.new_items

        return asyncio.run(run())

    return scenario


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize("api", APIS)
def test_agent_with_a_function_tool(workdir, fake_openai, api, streamed):
    live, replayed, again = record_then_replay(
        fake_openai, workdir, TEST_ID, agent_run(api, streamed=streamed), expected_requests=2
    )
    assert_same_answers(live[:2], replayed[:2], again[:2])
    result, events, items = replayed
    assert [type(item) for item in items] == [ToolCallItem, ToolCallOutputItem, MessageOutputItem]
    call, output, message = items
    assert call.raw_item.name == "get_weather"
    assert call.raw_item.arguments == '{"city": "What is the weather in Paris?"}'
    assert output.output == "sunny in What is the weather in Paris?"
    assert result["final_output"] == ItemHelpers.text_message_output(message)
    assert result["final_output"].startswith("Based on the tool result: sunny in What is the weather in Paris?")
    assert result["final_output"] == live[0]["final_output"]
    assert result["usage"].requests == 2 and result["usage"].total_tokens > 0
    sent = fake_openai.requests
    assert {request.path for request in sent} == {"/v1/responses" if api == "responses" else "/v1/chat/completions"}
    assert all(bool(request.body.get("stream")) is streamed for request in sent)
    if api == "chat_completions" and streamed:
        assert all(request.body["stream_options"] == {"include_usage": True} for request in sent)
    if api == "responses":  # the Responses id is the answer's (normalized on replay); Chat Completions has none
        assert [r["response_id"][:4] for r in result["raw_responses"]] == ["rec-", "rec-"]
    if streamed:
        kinds = [(event["type"], event.get("name")) for event in events]
        assert kinds[0] == ("agent_updated_stream_event", None)
        assert [kind for kind in kinds if kind[0] == "run_item_stream_event"] == [
            ("run_item_stream_event", "tool_called"),
            ("run_item_stream_event", "tool_output"),
            ("run_item_stream_event", "message_output_created"),
        ]
        raw_types = [event["data"].type for event in events if event["type"] == "raw_response_event"]
        assert raw_types.count("response.completed") == 2
        assert "response.function_call_arguments.delta" in raw_types
        assert "response.output_text.delta" in raw_types
        raw_events = [event["data"] for event in events if event["type"] == "raw_response_event"]
        deltas = [event.delta for event in raw_events if event.type == "response.output_text.delta"]
        assert "".join(deltas) == result["final_output"]


@pytest.mark.parametrize("api", APIS)
def test_agent_with_an_output_type(workdir, fake_openai, api):
    live, replayed, again = record_then_replay(
        fake_openai, workdir, TEST_ID, agent_run(api, streamed=False, output_type=Forecast), expected_requests=2
    )
    assert_same_answers(live[:2], replayed[:2], again[:2])
    result, _, items = replayed
    assert [type(item) for item in items] == [ToolCallItem, ToolCallOutputItem, MessageOutputItem]
    assert type(result["final_output"]) is Forecast
    assert result["final_output"] == live[0]["final_output"] == Forecast(city="city-value", temperature=42, sunny=True)
    last = fake_openai.requests[-1].body
    schema_holder = last["text"]["format"] if api == "responses" else last["response_format"]
    assert schema_holder["type"] == "json_schema"


@pytest.mark.parametrize(
    ("api", "streamed"),
    [
        pytest.param("responses", False),
        pytest.param("responses", True),
        pytest.param("chat_completions", False),
        pytest.param("chat_completions", True),
    ],
)
def test_model_responses_keep_a_request_id_on_replay(workdir, fake_openai, api, streamed):
    """`ModelResponse.request_id` is the SDK's `_request_id`: live it is the server's `x-request-id`."""

    def scenario(base_url: str) -> list[str | None]:
        async def run() -> list[str | None]:
            async with AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0) as client:
                set_default_openai_client(client, use_for_tracing=False)
                set_default_openai_api(api)
                agent = Agent(name="forecaster", model="gpt-4o", model_settings=ModelSettings(include_usage=True))
                if streamed:
                    result = Runner.run_streamed(agent, QUESTION)
                    async for _ in result.stream_events():
                        pass
                else:
                    result = await Runner.run(agent, QUESTION)
                return [response.request_id for response in result.raw_responses]

        return asyncio.run(run())

    live, replayed, again = record_then_replay(fake_openai, workdir, TEST_ID, scenario, expected_requests=1)
    assert [request_id[:4] for request_id in live] == ["req_"]
    assert replayed == again
    assert [request_id and request_id[:4] for request_id in replayed] == ["rec-"]
