"""The Anthropic SDK, recorded against a real local server speaking its wire format, replayed offline.

Every test records against ``FakeAnthropic`` (fresh ``msg_``/``toolu_``/``req_`` ids on every
answer, content a function of the request), stops it, then replays with the network blocked, and
compares object for object: the exact class, every field, the order of stream events. Only the
message id differs: ``rec-`` and the first 12 characters of the file's hash. Sync and async.
"""

from __future__ import annotations

import json

import pydantic
import pytest

import api_recorder
from api_recorder.context import TEST_ID_HEADER
from api_recorder.errors import RecordingNotFoundError, UnsupportedCallError
from api_recorder.network import network_blocked
from fakes.anthropic_app import FakeAnthropic
from helpers import read_json, recordings_in, run_python

anthropic = pytest.importorskip("anthropic")
from anthropic._response import APIResponse, AsyncAPIResponse  # noqa: E402
from anthropic.pagination import AsyncPage, SyncPage  # noqa: E402
from anthropic.types import (  # noqa: E402
    Message,
    MessageTokensCount,
    ModelInfo,
    RawContentBlockDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    TextBlock,
    ToolUseBlock,
)
from anthropic.types.beta import BetaMessage, BetaMessageTokensCount, BetaModelInfo  # noqa: E402

from anthropic_helpers import (  # noqa: E402
    API_KEY,
    FLAVORS,
    MODEL,
    TEST_FOLDER,
    TEST_ID,
    WEATHER_TOOL,
    assert_message_replayed,
    assert_same,
    client_for,
    drive,
    rec_id,
    record_then_replay,
    recording_of,
    recording_where,
    user,
)

flavors = pytest.mark.parametrize("flavor", FLAVORS)


def stream_class(flavor):
    return anthropic.AsyncStream if flavor == "async" else anthropic.Stream


def response_class(flavor):
    return AsyncAPIResponse if flavor == "async" else APIResponse


# -- messages.create -------------------------------------------------------------------------------


@flavors
def test_create_replays_the_same_message(workdir, fake_anthropic, flavor):
    async def scenario(side):
        plain = await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user("Hello there")))
        system = await side(
            side.client.messages.create(
                model=MODEL,
                max_tokens=40,
                system="You are terse.",
                messages=user("Hello there"),
                stop_sequences=["zzz"],
                metadata={"user_id": "user-1"},
            )
        )
        return plain, system

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert len(recordings_in(workdir)) == 2  # the system prompt makes another request
    plain_file = recording_where(workdir, lambda body: "system" not in body)
    system_file = recording_where(workdir, lambda body: body.get("system") == "You are terse.")
    for live_message, replayed_message, path in zip(live, replayed, (plain_file, system_file), strict=True):
        assert type(replayed_message) is Message
        assert type(replayed_message.content[0]) is TextBlock
        assert replayed_message.content[0].text.startswith("echo: Hello there")
        assert_message_replayed(live_message, replayed_message, path)
    assert read_json(system_file)["request"]["body"]["metadata"] == {"user_id": "user-1"}


@flavors
def test_tool_use_ids_are_kept_and_the_tool_result_that_quotes_one_replays(workdir, fake_anthropic, flavor):
    question = "Weather in Paris?"

    def conversation(tool_use_id):
        return [
            *user(question),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": tool_use_id, "name": "get_weather", "input": {"city": question}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use_id, "content": "18 degrees, sunny"}],
            },
        ]

    async def scenario(side):
        first = await side(
            side.client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=user(question))
        )
        call = first.content[0]
        second = await side(
            side.client.messages.create(
                model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=conversation(call.id)
            )
        )
        return first, second

    (first, second), (first_again, second_again) = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    call = first.content[0]
    assert type(first_again.content[0]) is ToolUseBlock and first_again.stop_reason == "tool_use"
    assert call.id.startswith("toolu_") and first_again.content[0].id == call.id  # never normalized
    assert first_again.content[0].input == {"city": question}
    first_file = recording_of(workdir, question)
    second_file = recording_of(workdir, question, turns=3)
    assert read_json(first_file)["response"]["body"]["__data__"]["content"][0]["id"] == call.id
    assert read_json(second_file)["request"]["body"]["messages"][2]["content"][0]["tool_use_id"] == call.id
    assert_message_replayed(first, first_again, first_file)
    assert_message_replayed(second, second_again, second_file)
    assert second_again.content[0].text.startswith("Based on the tool result: 18 degrees, sunny")

    # the second request's hash depends on the quoted id: another id is another request
    with network_blocked(), api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        with pytest.raises(RecordingNotFoundError, match="POST /v1/messages"):
            client_for(fake_anthropic.base_url, "sync").messages.create(
                model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=conversation("toolu_01OtherIdAltogether")
            )


# -- streams ---------------------------------------------------------------------------------------


@flavors
def test_a_streamed_create_replays_the_same_events_in_order(workdir, fake_anthropic, flavor):
    async def scenario(side):
        text = await side(
            side.client.messages.create(model=MODEL, max_tokens=40, messages=user("Stream a sentence"), stream=True)
        )
        tool = await side(
            side.client.messages.create(
                model=MODEL, max_tokens=40, tools=[WEATHER_TOOL], messages=user("Weather in Oslo?"), stream=True
            )
        )
        return text, await side.items(text), await side.items(tool)

    (live, live_text, live_tool), (replayed, text, tool) = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert isinstance(replayed, stream_class(flavor)) and isinstance(live, stream_class(flavor))
    for live_events, events, prompt in ((live_text, text, "Stream a sentence"), (live_tool, tool, "Weather in Oslo?")):
        path = recording_of(workdir, prompt, stream=True)
        assert [type(event) for event in events] == [type(event) for event in live_events]
        assert type(events[0]) is RawMessageStartEvent and type(events[-1]) is RawMessageStopEvent
        live_id = live_events[0].message.id
        assert live_id.startswith("msg_") and events[0].message.id == rec_id(path)
        assert_same(live_events, events, {live_id: rec_id(path)})
    assert sum(type(event) is RawContentBlockDeltaEvent for event in text) > 3
    assert tool[1].content_block.id.startswith("toolu_")  # the tool call's id is kept
    assert "".join(e.delta.partial_json for e in tool if type(e) is RawContentBlockDeltaEvent) == json.dumps(
        {"city": "Weather in Oslo?"}
    )


@flavors
def test_the_stream_helper_replays_its_text_and_final_message(workdir, fake_anthropic, flavor):
    async def scenario(side):
        text = await side.helper(model=MODEL, max_tokens=40, messages=user("Tell me something"))
        tool = await side.helper(model=MODEL, max_tokens=40, tools=[WEATHER_TOOL], messages=user("Weather in Rome?"))
        return text, tool

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    for (live_text, live_final, live_request_id), (text, final, request_id), prompt in zip(
        live, replayed, ("Tell me something", "Weather in Rome?"), strict=True
    ):
        path = recording_of(workdir, prompt, stream=True)  # recorded as messages.create(stream=True)
        assert text == live_text
        assert live_request_id.startswith("req_") and request_id == rec_id(path)
        assert live_final.id.startswith("msg_") and final.id == rec_id(path)
        assert_same(live_final, final, {live_final.id: rec_id(path)})
    assert replayed[0][0].startswith("echo: Tell me something") and replayed[0][0] == replayed[0][1].content[0].text
    assert replayed[1][1].content[0].input == {"city": "Weather in Rome?"}
    assert replayed[1][1].content[0].id == live[1][1].content[0].id


@flavors
def test_the_stream_helper_and_a_streamed_create_are_one_recording(workdir, fake_anthropic, flavor, monkeypatch):
    request = {"model": MODEL, "max_tokens": 40, "messages": user("Same request")}

    async def by_create(side):
        events = await side.items(await side(side.client.messages.create(**request, stream=True)))
        return "".join(e.delta.text for e in events if type(e) is RawContentBlockDeltaEvent), events

    async def by_helper(side):
        return await side.helper(**request)

    # recorded through create(stream=True), replayed through the helper
    (live_text, live_events), (text, final, request_id) = record_then_replay(
        fake_anthropic, workdir, flavor, by_create, replay_scenario=by_helper
    )
    (path,) = recordings_in(workdir)
    assert text == live_text and text.startswith("echo: Same request")
    assert final.id == request_id == rec_id(path) and final.content[0].text == live_text
    assert final.usage.output_tokens == live_events[-2].usage.output_tokens

    # both ways while recording: one file, one answer (the same request, the same events)
    with FakeAnthropic() as fake:
        url = fake.base_url
        for folder, scenarios in {"both-ways": (by_create, by_helper), "helper-only": (by_helper,)}.items():
            (workdir / folder).mkdir()
            monkeypatch.chdir(workdir / folder)
            with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
                for record in scenarios:
                    drive(url, flavor, record)
        assert fake.request_count == 3
    (both,) = recordings_in(workdir / "both-ways")
    (helper_only,) = recordings_in(workdir / "helper-only")
    assert "more_responses" not in read_json(both)
    assert both.name == helper_only.name
    assert read_json(both)["request"]["body"] == {**request, "stream": True}

    # recorded through the helper, replayed through create(stream=True)
    with network_blocked(), api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        replayed_text, events = drive(url, flavor, by_create)
    assert replayed_text.startswith("echo: Same request") and events[0].message.id == rec_id(helper_only)
    assert [type(e) for e in events] == [type(e) for e in live_events]


# -- parse, count_tokens ---------------------------------------------------------------------------


class City(pydantic.BaseModel):
    name: str


@flavors
def test_parse_replays_through_the_sdks_own_parser(workdir, fake_anthropic, flavor):
    """Without a format, and with ``output_format=City`` (the fake answers JSON for its schema)."""

    async def scenario(side):
        parsed = await side(side.client.messages.parse(model=MODEL, max_tokens=40, messages=user("Parse me")))
        city = await side(
            side.client.messages.parse(model=MODEL, max_tokens=40, messages=user("A city"), output_format=City)
        )
        return parsed, city

    (live, live_city), (replayed, city) = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert type(replayed).__name__.startswith("ParsedMessage")
    assert replayed.parsed_output is None
    assert_message_replayed(live, replayed, recording_of(workdir, "Parse me"), request_id=False)  # see below
    assert type(city.parsed_output) is City and type(live_city.parsed_output) is City
    assert city.parsed_output == live_city.parsed_output
    assert city.content[0].text == live_city.content[0].text
    structured = recording_where(workdir, lambda body: "output_format" in body)
    document = read_json(structured)
    assert document["request"]["body"]["output_format"]["pydantic_model"] == "City"
    assert document["response"]["body"]["__type__"] == "anthropic.types.message.Message"  # the raw answer


@flavors
def test_parse_keeps_the_request_id(workdir, fake_anthropic, flavor):
    async def scenario(side):
        return await side(side.client.messages.parse(model=MODEL, max_tokens=40, messages=user("Parse me")))

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert live._request_id.startswith("req_")  # as the SDK alone gives it
    assert replayed._request_id == rec_id(recording_of(workdir, "Parse me"))


@flavors
def test_count_tokens(workdir, fake_anthropic, flavor):
    async def scenario(side):
        return await side(side.client.messages.count_tokens(model=MODEL, messages=user("Count these four words")))

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert type(replayed) is MessageTokensCount
    assert replayed.input_tokens == live.input_tokens > 0
    assert_same(live, replayed)
    (path,) = recordings_in(workdir)
    assert read_json(path)["request"]["endpoint"] == "/v1/messages/count_tokens"
    assert replayed._request_id == rec_id(path)


# -- models ----------------------------------------------------------------------------------------


@flavors
def test_models_list_and_retrieve_keep_model_names(workdir, fake_anthropic, flavor):
    async def scenario(side):
        page = await side(side.client.models.list())
        items = await side.items(page)
        info = await side(side.client.models.retrieve(MODEL))
        message = await side(side.client.messages.create(model=info.id, max_tokens=20, messages=user("Which model?")))
        return page, items, info, message

    (live_page, live_items, live_info, live_message), (page, items, info, message) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    page_cls = AsyncPage if flavor == "async" else SyncPage
    assert type(page) is page_cls[ModelInfo] and type(live_page) is page_cls[ModelInfo]
    assert [model.id for model in items] == [model.id for model in live_items] and len(items) == 5
    assert_same(live_items, items)
    assert_same(live_page.data, page.data)
    assert (page.has_more, page.first_id, page.last_id) == (live_page.has_more, live_page.first_id, live_page.last_id)
    assert type(info) is ModelInfo and info.id == MODEL
    assert_same(live_info, info)  # no id swapped: a model's id is its name

    (page_file,) = (path for path in recordings_in(workdir) if path.name.startswith("models-"))
    assert [entry["__data__"]["id"] for entry in read_json(page_file)["response"]["body"]] == [m.id for m in items]
    (info_file,) = (p for p in recordings_in(workdir) if read_json(p)["request"]["url"].endswith(f"/models/{MODEL}"))
    assert read_json(info_file)["request"]["body"] == {}  # retrieve: the name is in the URL
    assert read_json(info_file)["response"]["body"]["__data__"]["id"] == MODEL
    message_file = recording_of(workdir, "Which model?")
    document = read_json(message_file)
    assert document["request"]["body"]["model"] == document["request"]["model"] == MODEL  # not rewritten
    assert message.model == MODEL
    assert_message_replayed(live_message, message, message_file)


@flavors
def test_a_paginated_model_list_replays_every_model_in_order(workdir, fake_anthropic, flavor):
    """``limit=2``: live, the SDK fetches three pages as it iterates; replay holds them as one page."""

    async def scenario(side):
        return await side.items(await side(side.client.models.list(limit=2)))

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert len({request.query.get("after_id") for request in fake_anthropic.requests}) == 3  # three pages
    assert [type(model) for model in replayed] == [ModelInfo] * 5
    assert_same(live, replayed)
    (path,) = recordings_in(workdir)
    assert read_json(path)["request"]["body"] == {"limit": 2}


# -- beta ------------------------------------------------------------------------------------------


@flavors
def test_beta_messages_and_models(workdir, fake_anthropic, flavor):
    async def scenario(side):
        beta = side.client.beta
        message = await side(beta.messages.create(model=MODEL, max_tokens=40, messages=user("Beta hello")))
        count = await side(beta.messages.count_tokens(model=MODEL, messages=user("Beta count")))
        models = await side.items(await side(beta.models.list()))
        return message, count, models

    (live, live_count, live_models), (replayed, count, models) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    assert type(replayed) is BetaMessage
    assert_message_replayed(live, replayed, recording_of(workdir, "Beta hello"))
    assert type(count) is BetaMessageTokensCount and count.input_tokens == live_count.input_tokens
    assert [type(model) for model in models] == [BetaModelInfo] * 5
    assert_same(live_models, models)


@flavors
def test_the_beta_stream_helper(workdir, fake_anthropic, flavor):
    async def scenario(side):
        return await side.helper(side.client.beta.messages, model=MODEL, max_tokens=40, messages=user("Beta stream"))

    (live_text, live_final, _), (text, final, request_id) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    path = recording_of(workdir, "Beta stream", stream=True)
    assert text == live_text and request_id == rec_id(path)
    assert_same(live_final, final, {live_final.id: rec_id(path)})


# -- raw responses ---------------------------------------------------------------------------------

RAW_REQUEST = {"model": MODEL, "max_tokens": 40, "messages": user("Raw please")}


@flavors
def test_with_raw_response(workdir, fake_anthropic, flavor):
    async def scenario(side):
        response = await side(side.client.messages.with_raw_response.create(**RAW_REQUEST))
        streamed = await side(side.client.messages.with_raw_response.create(**RAW_REQUEST, stream=True))
        events = await side.items(await side(streamed.parse()))
        return response, await side(response.parse()), events

    (live, live_message, live_events), (replayed, message, events) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    path = recording_of(workdir, "Raw please")
    assert type(replayed) is type(live) is response_class(flavor)
    assert type(message) is Message
    assert_message_replayed(live_message, message, path)
    assert live.headers["request-id"].startswith("req_")
    assert replayed.headers["request-id"] == rec_id(path)
    assert replayed.status_code == 200
    assert replayed.http_request.method == "POST"
    assert str(replayed.http_request.url) == f"{fake_anthropic.base_url.rstrip('/')}/v1/messages"
    streamed_path = recording_of(workdir, "Raw please", stream=True)
    assert_same(live_events, events, {live_events[0].message.id: rec_id(streamed_path)})


@flavors
def test_with_streaming_response(workdir, fake_anthropic, flavor):
    async def scenario(side):
        raw = side.client.messages.with_streaming_response
        if side.is_async:
            async with raw.create(**RAW_REQUEST) as response:
                message = await response.parse()
            async with raw.create(**RAW_REQUEST, stream=True) as streamed:
                events = [event async for event in await streamed.parse()]
        else:
            with raw.create(**RAW_REQUEST) as response:
                message = response.parse()
            with raw.create(**RAW_REQUEST, stream=True) as streamed:
                events = list(streamed.parse())
        return response, message, events

    (live, live_message, live_events), (replayed, message, events) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    path = recording_of(workdir, "Raw please")
    assert type(replayed) is type(live) is response_class(flavor)
    assert_message_replayed(live_message, message, path)
    assert replayed.headers["request-id"] == rec_id(path)
    assert replayed.http_request.method == "POST" and str(replayed.http_request.url).endswith("/v1/messages")
    streamed_path = recording_of(workdir, "Raw please", stream=True)
    assert_same(live_events, events, {live_events[0].message.id: rec_id(streamed_path)})


@flavors
def test_a_raw_call_and_a_direct_one_write_the_same_bytes(workdir, fake_anthropic, flavor, monkeypatch):
    async def direct(side):
        await side(side.client.messages.create(**RAW_REQUEST))

    async def raw(side):
        await side((await side(side.client.messages.with_raw_response.create(**RAW_REQUEST))).parse())

    async def streaming(side):
        if side.is_async:
            async with side.client.messages.with_streaming_response.create(**RAW_REQUEST) as response:
                await response.parse()
        else:
            with side.client.messages.with_streaming_response.create(**RAW_REQUEST) as response:
                response.parse()

    files = {}
    for name, scenario in {"direct": direct, "raw": raw, "streaming": streaming}.items():
        (workdir / name).mkdir()
        monkeypatch.chdir(workdir / name)
        with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
            drive(fake_anthropic.base_url, flavor, scenario)
        (files[name],) = recordings_in(workdir / name)
    assert fake_anthropic.request_count == 3
    assert files["raw"].name == files["streaming"].name == files["direct"].name
    assert files["raw"].read_bytes() == files["streaming"].read_bytes() == files["direct"].read_bytes()


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, anthropic.BadRequestError),
        (429, anthropic.RateLimitError),
        (529, anthropic.OverloadedError),
        (500, anthropic.InternalServerError),
    ],
)
@flavors
def test_status_errors_replay_as_the_same_class(workdir, fake_anthropic, flavor, status, error_class):
    fake_anthropic.fail_next(status)

    async def scenario(side):
        try:
            await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user("Fail me")))
        except anthropic.APIError as error:
            return error
        raise AssertionError("no error")

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert type(live) is error_class
    assert type(replayed) is error_class
    assert replayed.status_code == live.status_code == status
    assert replayed.body == live.body and replayed.body["error"]["type"] == live.body["error"]["type"]
    assert replayed.message == live.message
    assert fake_anthropic.request_count == 1  # max_retries=0: no retry, while recording either
    assert read_json(recording_of(workdir, "Fail me"))["response"]["is_exception"] is True


@flavors
def test_an_error_answer_to_a_stream_request(workdir, fake_anthropic, flavor):
    fake_anthropic.fail_next(529)

    async def scenario(side):
        try:
            await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user("x"), stream=True))
        except anthropic.APIStatusError as error:
            return error
        raise AssertionError("no error")

    live, replayed = record_then_replay(fake_anthropic, workdir, flavor, scenario)
    assert type(replayed) is type(live) is anthropic.OverloadedError
    assert (replayed.status_code, replayed.body) == (live.status_code, live.body)


@flavors
def test_an_error_in_the_middle_of_a_stream_replays_after_the_same_events(workdir, fake_anthropic, flavor):
    fake_anthropic.fail_mid_stream(after_events=4)  # message_start, content_block_start, ping, one delta
    fake_anthropic.fail_mid_stream(after_events=5)  # the helper's stream: one more delta

    async def scenario(side):
        events = []
        try:
            stream = await side(
                side.client.messages.create(model=MODEL, max_tokens=40, messages=user("Break me"), stream=True)
            )
            if side.is_async:
                async for event in stream:
                    events.append(event)
            else:
                events.extend(stream)
        except anthropic.APIStatusError as error:
            first = error
        else:
            raise AssertionError("no error")
        try:
            await side.helper(model=MODEL, max_tokens=40, messages=user("Break the helper"))
        except anthropic.APIStatusError as error:
            return events, first, error
        raise AssertionError("no error from the helper")

    (live_events, live_error, live_helper_error), (events, error, helper_error) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario
    )
    path = recording_of(workdir, "Break me", stream=True)
    assert len(events) == 3 and type(events[-1]) is RawContentBlockDeltaEvent
    assert_same(live_events, events, {live_events[0].message.id: rec_id(path)})
    for live_one, replayed_one in ((live_error, error), (live_helper_error, helper_error)):
        assert type(live_one) is type(replayed_one) is anthropic.APIStatusError  # the base class: status 200
        assert replayed_one.status_code == live_one.status_code == 200
        assert replayed_one.body == live_one.body
        assert replayed_one.body["error"]["type"] == "overloaded_error"


def test_a_retried_call_records_the_answer_that_came_through(workdir, fake_anthropic):
    fake_anthropic.fail_next(529)  # retry-after-ms: 1, so the SDK's retry does not wait

    async def scenario(side):
        return await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user("Retry me")))

    live, replayed = record_then_replay(fake_anthropic, workdir, "sync", scenario, max_retries=2)
    assert fake_anthropic.request_count == 2
    path = recording_of(workdir, "Retry me")
    assert "is_exception" not in read_json(path)["response"]
    assert_message_replayed(live, replayed, path)


# -- secrets ---------------------------------------------------------------------------------------

SECRET = "sk-ant-api03-Qw8Er5Ty2Ui9Op4As7Df1Gh6Jk3Lz0Xc5Vb8Nm2Qa7Ws4Ed1Rf9Tg6Yh3Uj0Ik-Zz98Yy76BB"


@flavors
def test_a_key_in_a_message_is_scrubbed_and_the_recording_replays_with_another_key(workdir, fake_anthropic, flavor):
    prompt = f"my key is {SECRET} keep it"

    async def scenario(side):
        message = await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user(prompt)))
        text, _, _ = await side.helper(model=MODEL, max_tokens=40, messages=user(prompt))
        return message, text

    (live, live_text), (replayed, text) = record_then_replay(
        fake_anthropic, workdir, flavor, scenario, api_key="sk-ant-api03-AnotherKey0123456789abcdefABCDEF-XY12"
    )
    assert SECRET in live.content[0].text and SECRET in live_text  # the fake echoed it, live
    assert replayed.content[0].text == live.content[0].text.replace(SECRET, "<redacted>")
    assert text == live_text.replace(SECRET, "<redacted>")
    assert len(recordings_in(workdir)) == 2
    for path in recordings_in(workdir):
        data = path.read_bytes()
        assert SECRET.encode() not in data and b"Qw8Er5Ty2Ui9" not in data
        assert b"<redacted>" in data
    # the same request with the recording's own key: found too (scrubbed before hashing)
    with network_blocked(), api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        again = client_for(fake_anthropic.base_url, "sync").messages.create(
            model=MODEL, max_tokens=40, messages=user(prompt)
        )
    assert again.content[0].text == replayed.content[0].text


def test_the_api_key_is_never_stored(workdir, fake_anthropic):
    async def scenario(side):
        await side(side.client.messages.create(model=MODEL, max_tokens=10, messages=user("k")))
        await side(side.client.messages.count_tokens(model=MODEL, messages=user("k")))
        await side.items(await side(side.client.models.list()))

    record_then_replay(fake_anthropic, workdir, "sync", scenario)
    assert API_KEY in json.dumps(fake_anthropic.requests[0].headers)  # it was sent
    assert len(recordings_in(workdir)) == 3
    for path in recordings_in(workdir):
        data = path.read_bytes()
        assert API_KEY.encode() not in data and b"Xk29dPq7" not in data
        assert read_json(path)["request"]["headers"] == {}


@pytest.mark.xfail(
    strict=True,
    reason="known limit (README, Hardening): a key echoed into a streamed tool call arrives in 12-character "
    "partial_json fragments; each fragment is scrubbed alone, so none looks like a key",
)
def test_a_key_split_across_stream_deltas_is_scrubbed(workdir, fake_anthropic):
    async def scenario(side):
        stream = side.client.messages.create(
            model=MODEL, max_tokens=40, tools=[WEATHER_TOOL], messages=user(SECRET), stream=True
        )
        return await side.items(await side(stream))

    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        events = drive(fake_anthropic.base_url, "sync", scenario)
    live_json = "".join(e.delta.partial_json for e in events if type(e) is RawContentBlockDeltaEvent)
    assert SECRET in live_json  # live, the model called the tool with the key
    (path,) = recordings_in(workdir)
    document = read_json(path)
    assert SECRET not in json.dumps(document["request"])  # the request is scrubbed
    stored = [event["__data__"] for event in document["response"]["body"]]
    stored_json = "".join(e["delta"].get("partial_json", "") for e in stored if e["type"] == "content_block_delta")
    assert SECRET not in stored_json


# -- replay misses and uncovered calls ------------------------------------------------------------


@flavors
def test_a_changed_prompt_is_a_replay_miss_naming_the_endpoint(workdir, fake_anthropic, flavor):
    def ask(content):
        async def scenario(side):
            return await side(side.client.messages.create(model=MODEL, max_tokens=40, messages=user(content)))

        return scenario

    recorded, changed = ask("What is 2+2?"), ask("What is 2+3?")
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        drive(fake_anthropic.base_url, flavor, recorded)
    sent = fake_anthropic.request_count
    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        assert type(drive(fake_anthropic.base_url, flavor, recorded)) is Message
        with pytest.raises(RecordingNotFoundError) as caught:
            drive(fake_anthropic.base_url, flavor, changed)
    assert fake_anthropic.request_count == sent  # the server is up: replay chose not to call it
    message = str(caught.value)
    assert "POST /v1/messages" in message and MODEL in message and TEST_ID in message
    assert str(workdir / TEST_FOLDER) in message


@flavors
def test_uncovered_calls_are_refused_in_replay_and_reach_no_server(workdir, fake_anthropic, flavor):
    calls = {
        "GET /v1/messages/batches": lambda client: client.messages.batches.list(),
        "POST /v1/messages/batches": lambda client: client.messages.batches.create(
            requests=[{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 5, "messages": user("b")}}]
        ),
        "GET /v1/files": lambda client: client.beta.files.list(),
    }

    async def scenario(side):
        refused = {}
        for name, call in calls.items():
            try:
                await side(call(side.client))
            except UnsupportedCallError as error:
                refused[name] = str(error)
        return refused

    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        refused = drive(fake_anthropic.base_url, flavor, scenario)
    assert fake_anthropic.request_count == 0
    assert set(refused) == set(calls)
    for name, message in refused.items():
        assert message.startswith(name) and "not covered" in message

    # while recording they go to the server as they are, and nothing is written
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        with pytest.raises(anthropic.NotFoundError):  # FakeAnthropic does not serve batches
            drive(fake_anthropic.base_url, flavor, lambda side: side(side.client.messages.batches.list()))
    assert fake_anthropic.request_count == 1
    assert recordings_in(workdir) == []


# -- the test id header ----------------------------------------------------------------------------


@flavors
def test_requests_name_the_running_test_in_a_header(workdir, fake_anthropic, flavor):
    async def scenario(side):
        await side(side.client.messages.create(model=MODEL, max_tokens=10, messages=user("h")))
        await side.helper(model=MODEL, max_tokens=10, messages=user("h2"))
        await side(side.client.messages.count_tokens(model=MODEL, messages=user("h")))
        await side(side.client.models.retrieve(MODEL))

    test_id = "tests/anthropic_app/test_header.py::test_x"
    with api_recorder.recording("record", "recs"), api_recorder.test_context(test_id):
        drive(fake_anthropic.base_url, flavor, scenario)
    assert len(fake_anthropic.requests) == 4
    assert [r.headers.get(TEST_ID_HEADER.lower()) for r in fake_anthropic.requests] == [test_id] * 4
    fake_anthropic.reset()
    with api_recorder.recording("record", "recs"):  # no test running: no header
        drive(fake_anthropic.base_url, flavor, scenario)
    assert len(fake_anthropic.requests) == 4
    assert all(TEST_ID_HEADER.lower() not in r.headers for r in fake_anthropic.requests)


# -- auto-activation in a subprocess -------------------------------------------------------------

CHILD = """
import json, os, sys
import anthropic
from anthropic.resources.messages.messages import Messages

client = anthropic.Anthropic(base_url=os.environ["FAKE_ANTHROPIC_URL"], api_key=os.environ["KEY"], max_retries=0)
message = client.messages.create(
    model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "child"}]
)
events = list(client.messages.create(
    model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "child stream"}], stream=True
))
with client.messages.stream(
    model="claude-haiku-4-5", max_tokens=40, messages=[{"role": "user", "content": "child helper"}]
) as stream:
    text = "".join(stream.text_stream)
print(json.dumps({
    "wrapped": type(Messages.__dict__["create"]).__name__,
    "imported": sorted(name for name in ("openai", "api_recorder") if name in sys.modules),
    "class": type(message).__qualname__,
    "id": message.id,
    "message": message.model_dump(mode="json", exclude={"id"}),
    "events": [event.model_dump(mode="json") for event in events[1:]],
    "text": text,
}))
"""


def test_a_subprocess_records_and_replays_with_only_the_environment(tmp_path, fake_anthropic):
    """The child imports anthropic alone (no openai, no api_recorder): the variables are enough."""
    env = {"FAKE_ANTHROPIC_URL": fake_anthropic.base_url, "KEY": API_KEY}
    env["LLAMA_STACK_TEST_RECORDING_DIR"] = str(tmp_path / "recs")

    def run(mode):
        result = run_python(CHILD, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE=mode, **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    live = run("record")
    assert fake_anthropic.request_count == 3
    files = recordings_in(tmp_path / "recs")
    assert len(files) == 3
    fake_anthropic.stop()
    replayed = run("replay")
    assert live["wrapped"] == replayed["wrapped"] == "FunctionWrapper"  # no enable(): the variable did it
    assert live["imported"] == ["api_recorder"]  # openai was not what triggered it
    assert live["id"].startswith("msg_")
    message_file = next(path for path in files if read_json(path)["request"]["body"].get("stream") is None)
    assert replayed["id"] == rec_id(message_file)
    assert replayed["class"] == "Message"
    assert replayed["message"] == live["message"]
    assert replayed["events"] == live["events"] and replayed["text"] == live["text"]
    assert replayed["text"].startswith("echo: child helper")
    for path in files:
        assert API_KEY.encode() not in path.read_bytes()
