"""``.with_raw_response`` and ``.with_streaming_response``: recorded, and replayed as the SDK's objects.

The same request through a raw wrapper and directly is one recording: same file name, same bytes.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

import api_recorder
from helpers import recordings_in

openai = pytest.importorskip("openai")
from openai._legacy_response import LegacyAPIResponse  # noqa: E402
from openai._response import APIResponse, AsyncAPIResponse  # noqa: E402
from openai.types import Model  # noqa: E402
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion  # noqa: E402
from openai.types.responses import Response  # noqa: E402

TEST_ID = "tests/raw/test_raw.py::test_raw"
MESSAGES = [{"role": "user", "content": "Say something raw"}]


class Capital(BaseModel):
    city: str
    country: str


def dumps(items):
    return [item.model_dump(mode="json", exclude={"id", "created"}) for item in items]


def record_then_replay(fake, workdir, call):
    """Run ``call(client)`` recording, then replaying with no request reaching the server."""
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        live = call(fake.client(), fake.async_client())
    requests = len(fake.requests)
    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        replayed = call(fake.client(), fake.async_client())
    assert len(fake.requests) == requests
    return live, replayed


def test_a_raw_call_and_a_direct_one_are_the_same_recording(workdir, fake_openai, monkeypatch):
    client = fake_openai.client()
    ways = {
        "direct": lambda: client.chat.completions.create(model="gpt-4o", messages=MESSAGES),
        "raw": lambda: client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES).parse(),
    }
    for folder, call in ways.items():
        (workdir / folder).mkdir()
        monkeypatch.chdir(workdir / folder)  # the project root: each way writes its own tree
        with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
            call()
    (direct,) = recordings_in(workdir / "direct")
    (raw,) = recordings_in(workdir / "raw")
    assert raw.name == direct.name
    assert raw.read_bytes() == direct.read_bytes()


def test_with_raw_response_sync(workdir, fake_openai):
    def call(client, _):
        response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
        return response, response.parse()

    (live, live_answer), (replayed, answer) = record_then_replay(fake_openai, workdir, call)
    assert type(live) is type(replayed) is LegacyAPIResponse
    assert type(answer) is ChatCompletion
    assert dumps([answer]) == dumps([live_answer])
    assert replayed.parse() is answer
    assert replayed.status_code == 200 and replayed.http_request.method == "POST"
    assert str(replayed.http_request.url).endswith("/chat/completions")
    assert replayed.headers["x-request-id"].startswith("rec-")
    assert replayed.headers["content-type"] == "application/json"
    assert json.loads(replayed.text)["choices"][0]["message"]["content"] == answer.choices[0].message.content
    assert replayed.content == replayed.text.encode()
    assert "x-request-id" in live.headers  # recording leaves the live response as it came


def test_with_raw_response_of_a_stream(workdir, fake_openai):
    def call(client, _):
        response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
        return response, list(response.parse())

    (_, live_chunks), (replayed, chunks) = record_then_replay(fake_openai, workdir, call)
    assert all(type(chunk) is ChatCompletionChunk for chunk in chunks)
    assert dumps(chunks) == dumps(live_chunks)
    assert replayed.headers["content-type"].startswith("text/event-stream")
    events = [line for line in replayed.text.splitlines() if line.startswith("data: ")]
    assert len(events) == len(chunks) + 1 and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["choices"] == chunks[0].model_dump(mode="json", exclude_unset=True)["choices"]


def test_with_raw_response_async(workdir, fake_openai):
    def call(_, client):
        async def go():
            response = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
            streamed = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True, max_tokens=5
            )
            return response, response.parse(), [chunk async for chunk in streamed.parse()]

        return asyncio.run(go())

    (_, live, live_chunks), (replayed, answer, chunks) = record_then_replay(fake_openai, workdir, call)
    assert type(replayed) is LegacyAPIResponse and type(answer) is ChatCompletion
    assert dumps([answer]) == dumps([live]) and dumps(chunks) == dumps(live_chunks)


def test_with_streaming_response_sync(workdir, fake_openai):
    def call(client, _):
        with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES) as response:
            answer = response.parse()
            body = response.json()
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        ) as streamed:
            chunks = list(streamed.parse())
        return response, answer, body, chunks

    live, replayed = record_then_replay(fake_openai, workdir, call)
    response, answer, body, chunks = replayed
    assert type(response) is APIResponse and type(answer) is ChatCompletion
    assert body["choices"][0]["message"]["content"] == answer.choices[0].message.content
    assert dumps([answer]) == dumps([live[1]]) and dumps(chunks) == dumps(live[3])
    assert response.request_id and response.request_id.startswith("rec-")


def test_with_streaming_response_lines_are_the_recorded_events(workdir, fake_openai):
    def call(client, _):
        with client.responses.with_streaming_response.create(model="gpt-4o", input="hi", stream=True) as response:
            return [event.type for event in response.parse()]

    live, replayed = record_then_replay(fake_openai, workdir, call)
    assert replayed == live and replayed[-1] == "response.completed"
    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        with fake_openai.client().responses.with_streaming_response.create(
            model="gpt-4o", input="hi", stream=True
        ) as response:
            lines = list(response.iter_lines())
    assert [line[len("event: ") :] for line in lines if line.startswith("event: ")] == live


def test_with_streaming_response_async_responses_stream_as_the_agents_sdk_calls_it(workdir, fake_openai):
    def call(_, client):
        async def go():
            manager = client.responses.with_streaming_response.create(model="gpt-4o", input="hi", stream=True)
            response = await manager.__aenter__()
            try:
                events = [event async for event in await response.parse()]
            finally:
                await manager.__aexit__(None, None, None)
            async with client.responses.with_streaming_response.create(model="gpt-4o", input="hi") as plain:
                final = await plain.parse()
            return response, events, final

        return asyncio.run(go())

    live, replayed = record_then_replay(fake_openai, workdir, call)
    response, events, final = replayed
    assert type(response) is AsyncAPIResponse and type(final) is Response
    assert [type(e) for e in events] == [type(e) for e in live[1]]
    assert events[-1].response.output_text == live[1][-1].response.output_text
    assert final.output_text == live[2].output_text


def test_with_raw_response_parse_gives_your_class(workdir, fake_openai):
    def call(client, client_async):
        response = client.chat.completions.with_raw_response.parse(
            model="gpt-4o", messages=MESSAGES, response_format=Capital
        )

        async def go():
            raw = await client_async.chat.completions.with_raw_response.parse(
                model="gpt-4o", messages=MESSAGES, response_format=Capital
            )
            return raw.parse()

        return response.parse(), asyncio.run(go())

    (live, live_async), (answer, answer_async) = record_then_replay(fake_openai, workdir, call)
    for replayed, recorded in ((answer, live), (answer_async, live_async)):
        assert type(replayed) is type(recorded)  # the SDK's own: ParsedChatCompletion[~ResponseFormatT]
        assert isinstance(replayed, ParsedChatCompletion)
        assert isinstance(replayed.choices[0].message.parsed, Capital)
        assert replayed.choices[0].message.parsed == recorded.choices[0].message.parsed


def test_with_raw_response_model_list(workdir, fake_openai):
    def call(client, _):
        response = client.models.with_raw_response.list()
        return response, [model.id for model in response.parse()]

    (_, live), (replayed, ids) = record_then_replay(fake_openai, workdir, call)
    assert ids == live and ids
    assert [model["id"] for model in json.loads(replayed.text)["data"]] == ids
    assert all(type(model) is Model for model in replayed.parse())
