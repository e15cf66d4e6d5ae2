"""Prove `FakeAnthropic` speaks the Messages API wire format: the real `anthropic` SDK against it, over HTTP.

No library code is involved here.  Raw payloads are additionally validated
with the SDK's own pydantic types (the SDK itself only `construct`s them, so a
missing required field would otherwise go unnoticed).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageTokensCount, ModelInfo, RawMessageStreamEvent
from pydantic import TypeAdapter

from .anthropic_app import FakeAnthropic, fragments

pytestmark = pytest.mark.filterwarnings("error")

MODEL = "claude-haiku-4-5"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "minimum": 1},
            "metric": {"type": "boolean"},
            "threshold": {"type": "number"},
        },
        "required": ["city", "days"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}
EVENTS = TypeAdapter(RawMessageStreamEvent)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def without_id(message: Any) -> dict[str, Any]:
    data = message.model_dump(exclude={"id"})
    for block in data["content"]:
        block.pop("parsed_output", None)  # only ParsedTextBlock (from the stream helpers) has it
        if block["type"] == "tool_use":
            block.pop("id")
    return data


def accumulate(events: list[Any]) -> dict[str, Any]:
    """A Message rebuilt from raw stream events by hand, independent of the SDK's MessageStream."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for event in events:
        if event.type == "message_start":
            message = event.message.model_dump()
        elif event.type == "content_block_start":
            message["content"].append(event.content_block.model_dump())
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            message["content"][event.index]["text"] += event.delta.text
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
        elif event.type == "content_block_stop" and event.index in partial:
            message["content"][event.index]["input"] = json.loads(partial[event.index])
        elif event.type == "message_delta":
            message.update(event.delta.model_dump(exclude={"container"}))
            message["usage"].update(event.usage.model_dump(exclude_none=True))
    return Message.model_validate(message)


def raw_sse(fake: FakeAnthropic, body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """POST and split the SSE body into (event, data) pairs, independent of the SDK's decoder."""
    with httpx.Client() as http:
        response = http.post(f"{fake.base_url}/v1/messages", json=body, headers={"x-api-key": fake.api_key})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    pairs = []
    for frame in response.text.split("\n\n"):
        if frame.strip():
            fields = dict(line.split(": ", 1) for line in frame.split("\n"))
            pairs.append((fields.get("event"), fields["data"]))
    return pairs


@pytest.fixture
def client(fake_anthropic):
    with fake_anthropic.client() as client:
        yield client


def raw_post(fake: FakeAnthropic, path: str, body: Any) -> httpx.Response:
    with httpx.Client() as http:
        return http.post(f"{fake.base_url}{path}", json=body, headers={"x-api-key": fake.api_key})


# ---------------------------------------------------------------------------
# messages.create
# ---------------------------------------------------------------------------


def test_plain_message_is_a_valid_message_echoing_the_prompt(fake_anthropic, client):
    message = client.messages.create(model=MODEL, max_tokens=256, messages=user("What is up?"))

    assert message.id.startswith("msg_")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    [block] = message.content
    assert block.type == "text"
    assert block.text.startswith("echo: What is up?")
    assert message.usage.output_tokens == len(block.text.split())
    assert message.usage.input_tokens == 3 + 3  # three words, plus three per message
    assert fake_anthropic.request_count == 1
    assert fake_anthropic.last_request.body == {"model": MODEL, "max_tokens": 256, "messages": user("What is up?")}

    raw = raw_post(fake_anthropic, "/v1/messages", {"model": MODEL, "max_tokens": 256, "messages": user("hi")})
    Message.model_validate(raw.json())


def test_system_prompt_as_string_or_blocks(fake_anthropic, client):
    plain = client.messages.create(model=MODEL, max_tokens=256, messages=user("Hi"))
    as_text = client.messages.create(model=MODEL, max_tokens=256, system="Be terse and kind.", messages=user("Hi"))
    as_blocks = client.messages.create(
        model=MODEL,
        max_tokens=256,
        system=[{"type": "text", "text": "Be terse and kind."}],
        messages=user("Hi"),
    )

    assert fake_anthropic.requests[1].body["system"] == "Be terse and kind."
    assert fake_anthropic.requests[2].body["system"] == [{"type": "text", "text": "Be terse and kind."}]
    assert as_text.usage.input_tokens == as_blocks.usage.input_tokens == plain.usage.input_tokens + 4
    assert as_text.content[0].text == as_blocks.content[0].text
    assert as_text.content[0].text.startswith("echo: Hi")


def test_max_tokens_is_required_by_the_server(fake_anthropic):
    response = raw_post(fake_anthropic, "/v1/messages", {"model": MODEL, "messages": user("hi")})

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert body["request_id"] == response.headers["request-id"]


def test_max_tokens_and_stop_sequences_cut_the_text(client):
    short = client.messages.create(model=MODEL, max_tokens=2, messages=user("one two three"))
    assert short.content[0].text == "echo: one"
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens == 2

    stopped = client.messages.create(
        model=MODEL, max_tokens=99, stop_sequences=["three"], messages=user("one two three")
    )
    assert stopped.content[0].text == "echo: one two "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "three")


def test_same_request_twice_fresh_ids_same_content(client):
    kwargs = {"model": MODEL, "max_tokens": 256, "messages": user("Same question")}
    first = client.messages.with_raw_response.create(**kwargs)
    second = client.messages.with_raw_response.create(**kwargs)

    assert first.request_id != second.request_id
    assert first.request_id.startswith("req_")
    one, two = first.parse(), second.parse()
    assert one._request_id == first.request_id
    assert one.id != two.id
    assert without_id(one) == without_id(two)

    tooled = {**kwargs, "tools": [WEATHER_TOOL]}
    call_one, call_two = client.messages.create(**tooled), client.messages.create(**tooled)
    assert call_one.content[0].id != call_two.content[0].id
    assert call_one.content[0].id.startswith("toolu_")
    assert without_id(call_one) == without_id(call_two)


def test_api_key_and_version_headers(fake_anthropic, client):
    client.messages.create(model=MODEL, max_tokens=16, messages=user("hi"))
    headers = fake_anthropic.last_request.headers

    # anthropic 2.14.0 sends `api_key` as a bearer token, not as `x-api-key`.
    assert headers["authorization"] == f"Bearer {FakeAnthropic.api_key}"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"]
    assert headers["x-stainless-async"] == "false"
    assert headers["x-stainless-retry-count"] == "0"


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------


def test_tool_use_then_tool_result_round_trip(fake_anthropic, client):
    messages: list[dict[str, Any]] = user("Weather in Paris?")
    call = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER_TOOL, TIME_TOOL], messages=messages)

    assert call.stop_reason == "tool_use"
    [tool_use] = call.content
    assert tool_use.type == "tool_use"
    assert tool_use.name == "get_weather"
    assert tool_use.input == {"city": "Weather in Paris?", "days": 42, "metric": True, "threshold": 1.5}
    Message.model_validate(call.model_dump())

    def follow_up(tool_use_id: str) -> list[dict[str, Any]]:
        result = {"type": "tool_result", "tool_use_id": tool_use_id, "content": "Sunny, 21 C"}
        return [*messages, call.to_param(), {"role": "user", "content": [result]}]

    answer = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER_TOOL], messages=follow_up(tool_use.id))
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text"
    assert "Sunny, 21 C" in answer.content[0].text
    sent = fake_anthropic.last_request.body["messages"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": tool_use.id,
        "name": tool_use.name,
        "input": tool_use.input,
    }
    assert sent[2]["content"][0]["tool_use_id"] == tool_use.id

    # The fresh tool_use id of the first answer does not change the second answer's words.
    call.content[0].id = "toolu_01other"
    again_messages = follow_up("toolu_01other")
    again = client.messages.create(model=MODEL, max_tokens=256, tools=[WEATHER_TOOL], messages=again_messages)
    assert fake_anthropic.last_request.body["messages"][1]["content"][0]["id"] == "toolu_01other"
    assert again.content[0].text == answer.content[0].text


def test_tool_choice(client):
    tools = [WEATHER_TOOL, TIME_TOOL]
    forced = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=tools,
        tool_choice={"type": "tool", "name": "get_time"},
        messages=user("UTC"),
    )
    assert (forced.content[0].name, forced.content[0].input) == ("get_time", {"zone": "UTC"})

    off = client.messages.create(
        model=MODEL, max_tokens=99, tools=tools, tool_choice={"type": "none"}, messages=user("x")
    )
    assert (off.stop_reason, off.content[0].type) == ("end_turn", "text")

    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model=MODEL, max_tokens=9, tools=tools, tool_choice={"type": "tool", "name": "nope"}, messages=user("x")
        )


# ---------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------


def test_raw_stream_frames_are_named_events(fake_anthropic):
    pairs = raw_sse(fake_anthropic, {"model": MODEL, "max_tokens": 64, "stream": True, "messages": user("a b")})

    names = [event for event, _ in pairs]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    for event, data in pairs:
        payload = json.loads(data)
        assert payload["type"] == event
        if event != "ping":
            EVENTS.validate_python(payload)


def test_create_stream_accumulates_to_the_non_streamed_message(client):
    kwargs = {"model": MODEL, "max_tokens": 256, "system": "Be brief.", "messages": user("Stream me")}
    events = list(client.messages.create(stream=True, **kwargs))

    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]  # the SDK drops `ping`
    assert events[0].message.content == []
    assert events[0].message.stop_reason is None
    rebuilt = accumulate(events)
    assert rebuilt.id.startswith("msg_")
    assert without_id(rebuilt) == without_id(client.messages.create(**kwargs))


def test_stream_helper_text_stream_and_final_message(fake_anthropic, client):
    kwargs = {"model": MODEL, "max_tokens": 256, "messages": user("Tell me")}
    with client.messages.stream(**kwargs) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == final.content[0].text
    rebuilt = accumulate(list(client.messages.create(stream=True, **kwargs)))
    assert without_id(final) == without_id(rebuilt)
    headers = fake_anthropic.requests[0].headers
    assert fake_anthropic.requests[0].body["stream"] is True
    assert (headers["x-stainless-helper-method"], headers["x-stainless-stream-helper"]) == ("stream", "messages")


def test_streamed_tool_use_sends_input_json_fragments(client):
    kwargs = {"model": MODEL, "max_tokens": 256, "tools": [WEATHER_TOOL], "messages": user("Rome")}
    events = list(client.messages.create(stream=True, **kwargs))

    start = next(e for e in events if e.type == "content_block_start")
    assert (start.content_block.type, start.content_block.input) == ("tool_use", {})
    parts = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert len(parts) > 1
    assert parts == fragments("".join(parts))
    with client.messages.stream(**kwargs) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == json.loads("".join(parts))
    assert without_id(final) == without_id(accumulate(events)) == without_id(client.messages.create(**kwargs))


def test_async_create_and_stream(fake_anthropic):
    async def run() -> tuple[Any, Any, list[str]]:
        client = fake_anthropic.async_client()
        try:
            kwargs = {"model": MODEL, "max_tokens": 256, "messages": user("Async please")}
            message = await client.messages.create(**kwargs)
            async with client.messages.stream(**kwargs) as stream:
                pieces = [piece async for piece in stream.text_stream]
                final = await stream.get_final_message()
            return message, final, pieces
        finally:
            await client.close()

    message, final, pieces = asyncio.run(run())
    assert message.id != final.id
    assert without_id(message) == without_id(final)
    assert "".join(pieces) == message.content[0].text
    assert fake_anthropic.last_request.headers["x-stainless-async"].startswith("async")


# ---------------------------------------------------------------------------
# count_tokens, models, beta
# ---------------------------------------------------------------------------


def test_count_tokens_matches_usage(fake_anthropic, client):
    kwargs = {"model": MODEL, "system": "Sys words here", "tools": [WEATHER_TOOL], "messages": user("Count me")}
    counted = client.messages.count_tokens(**kwargs)
    message = client.messages.create(max_tokens=256, tool_choice={"type": "none"}, **kwargs)

    assert isinstance(counted, MessageTokensCount)
    assert counted.input_tokens == message.usage.input_tokens > 0
    assert fake_anthropic.requests[0].path == "/v1/messages/count_tokens"


def test_models_list_and_retrieve(fake_anthropic, client):
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert MODEL in ids
    assert page.has_more is False
    assert (page.first_id, page.last_id) == (ids[0], ids[-1])
    assert [model.id for model in client.models.list(limit=2)] == ids  # auto-pagination via after_id
    assert fake_anthropic.last_request.query == {"limit": "2", "after_id": ids[3]}

    model = client.models.retrieve(MODEL)
    assert (model.id, model.type, model.display_name) == (MODEL, "model", "Claude Haiku 4.5")
    assert model.created_at.tzinfo is not None

    with pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("claude-nonexistent")
    assert caught.value.type == "not_found_error"

    with httpx.Client() as http:
        raw = http.get(f"{fake_anthropic.base_url}/v1/models").json()
    for item in raw["data"]:
        ModelInfo.model_validate(item)


def test_beta_surface_is_served_identically(fake_anthropic, client):
    kwargs = {"model": MODEL, "max_tokens": 128, "messages": user("Beta hello")}
    beta = client.beta.messages.create(betas=["some-beta-2025-01-01"], **kwargs)
    plain = client.messages.create(**kwargs)

    assert type(beta).__name__ == "BetaMessage"
    assert beta.content[0].text == plain.content[0].text
    beta_request = fake_anthropic.requests[0]
    assert beta_request.path == "/v1/messages"
    assert beta_request.headers["anthropic-beta"] == "some-beta-2025-01-01"

    # Older SDKs mark beta calls with `?beta=true`: same answers.
    queried = client.beta.messages.create(extra_query={"beta": "true"}, **kwargs)
    assert fake_anthropic.last_request.query == {"beta": "true"}
    assert queried.content[0].text == plain.content[0].text
    with client.beta.messages.stream(**kwargs) as stream:
        assert stream.get_final_message().content[0].text == plain.content[0].text
    assert client.beta.messages.count_tokens(model=MODEL, messages=kwargs["messages"]).input_tokens > 0
    assert client.beta.models.retrieve(MODEL).id == MODEL


# ---------------------------------------------------------------------------
# Errors on demand
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.RequestTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_injected_errors_map_to_sdk_classes(fake_anthropic, client, status, error_class, error_type):
    fake_anthropic.fail_next(status, message="nope")
    with pytest.raises(error_class) as caught:
        client.messages.create(model=MODEL, max_tokens=16, messages=user("hi"))

    error = caught.value
    assert error.status_code == status
    assert (error.type, error.api_message) == (error_type, "nope")
    assert error.request_id == error.response.headers["request-id"]
    expected_body = {"type": "error", "error": {"type": error_type, "message": "nope"}, "request_id": error.request_id}
    assert error.body == expected_body
    retryable = status in (429, 500, 529)
    assert ("retry-after-ms" in error.response.headers) is retryable
    # one shot: the next call succeeds
    assert client.messages.create(model=MODEL, max_tokens=16, messages=user("hi")).content


def test_retries_obey_retry_after_ms_and_path_filter(fake_anthropic):
    fake_anthropic.fail_next(529, count=2, path="/v1/messages")
    with fake_anthropic.client(max_retries=2) as client:
        assert client.models.retrieve(MODEL).id == MODEL  # other paths are not affected
        message = client.messages.create(model=MODEL, max_tokens=16, messages=user("hi"))

    assert message.content[0].text.startswith("echo: hi")
    retry_counts = [r.headers["x-stainless-retry-count"] for r in fake_anthropic.requests_to("messages")]
    assert retry_counts == ["0", "1", "2"]


def test_mid_stream_error_raises_from_the_iteration(fake_anthropic, client):
    kwargs = {"model": MODEL, "max_tokens": 256, "messages": user("Break me")}
    fake_anthropic.fail_mid_stream(4, message="went away")
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client.messages.create(stream=True, **kwargs):
            seen.append(event.type)

    assert seen == ["message_start", "content_block_start", "content_block_delta"]  # `ping` was the 3rd frame
    error = caught.value
    assert type(error) is anthropic.APIStatusError  # the class follows the HTTP status, which is 200
    assert (error.status_code, error.type, error.api_message) == (200, "overloaded_error", "went away")
    assert error.body == {"type": "error", "error": {"type": "overloaded_error", "message": "went away"}}

    fake_anthropic.fail_mid_stream(3)
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(**kwargs) as stream:
        stream.get_final_message()

    async def run_async() -> None:
        async_client = fake_anthropic.async_client()
        try:
            async with async_client.messages.stream(**kwargs) as stream:
                async for _ in stream.text_stream:
                    pass
        finally:
            await async_client.close()

    fake_anthropic.fail_mid_stream(5)
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        asyncio.run(run_async())
    assert client.messages.create(**kwargs).content  # one shot


def test_hold_and_release_stream(fake_anthropic, client):
    fake_anthropic.hold_stream(3)
    stream = client.messages.create(model=MODEL, max_tokens=64, messages=user("Hold on"), stream=True)
    events = iter(stream)
    first = [next(events).type, next(events).type]  # both arrived before the hold; `ping` (3rd) is dropped

    fake_anthropic.release_streams()
    rest = [event.type for event in events]
    assert first == ["message_start", "content_block_start"]
    assert rest[-2:] == ["message_delta", "message_stop"]

    fake_anthropic.hold_stream(1)  # a later hold holds again
    stream = client.messages.create(model=MODEL, max_tokens=64, messages=user("Again"), stream=True)
    events = iter(stream)
    assert next(events).type == "message_start"
    fake_anthropic.release_streams()
    assert [event.type for event in events][-1] == "message_stop"


def test_reset_forgets_requests_and_injections(fake_anthropic, client):
    client.messages.create(model=MODEL, max_tokens=16, messages=user("hi"))
    fake_anthropic.fail_next(500)
    fake_anthropic.fail_mid_stream(1)
    fake_anthropic.reset()

    assert fake_anthropic.request_count == 0
    assert fake_anthropic.requests == []
    assert list(client.messages.create(model=MODEL, max_tokens=16, messages=user("hi"), stream=True))
    with pytest.raises(AssertionError):
        FakeAnthropic().last_request  # noqa: B018
