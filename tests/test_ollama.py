"""Ollama (``ollama``): recorded against a real local server of its REST API, replayed offline.

Every test records against ``FakeOllama`` (a fresh ``created_at`` on every answer and every
streamed line, fresh ``*_duration`` timings, content a function of the request), stops it, then
replays with the network blocked and compares object for object: the exact class, every field,
the order of streamed chunks. Only ``created_at`` and the timings differ: llama-stack makes them
constant, and so do we, in the file and in replay. ``ollama.Client`` and ``ollama.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import inspect
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import api_recorder
from api_recorder.errors import RecordingNotFoundError, UnsupportedCallError
from api_recorder.hashing import inference_hash
from api_recorder.network import network_blocked
from helpers import SAMPLE, read_json, recordings_in, run_python

ollama = pytest.importorskip("ollama")
from api_recorder.cli import app  # noqa: E402
from fakes.ollama_app import FakeOllama  # noqa: E402

MODEL = "llama3.2"
THINKER = "qwen3:0.6b"
EMBEDDER = "all-minilm"
TEST_ID = "tests/ollama_app/test_app.py::test_call"
NORMALIZED_TIME = "1970-01-01T00:00:00.000000Z"
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
NORMALIZED = {"created_at", *DURATIONS}
LLAMA_STACK_HOST = "http://localhost:11434"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CITY_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
}

flavors = pytest.mark.parametrize("flavor", ["sync", "async"])


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- driving a sync or async client from one scenario ------------------------------------------


@dataclass
class Side:
    """One client, sync or async: ``await side(x)`` awaits what the async client returned."""

    client: Any
    is_async: bool

    async def __call__(self, value: Any) -> Any:
        return await value if inspect.isawaitable(value) else value

    async def stream(self, value: Any) -> tuple[Any, list[Any]]:
        """A streamed call: the iterator it returned, and its chunks read to the end."""
        stream = await self(value)
        if self.is_async:
            return stream, [chunk async for chunk in stream]
        return stream, list(stream)

    async def until_error(self, value: Any) -> tuple[list[Any], Exception]:
        """A stream that ends in an error: the chunks before it, and the error."""
        chunks: list[Any] = []
        with pytest.raises(ollama.ResponseError) as caught:
            stream = await self(value)
            if self.is_async:
                async for chunk in stream:
                    chunks.append(chunk)
            else:
                for chunk in stream:
                    chunks.append(chunk)
        return chunks, caught.value


Scenario = Callable[[Side], Awaitable[Any]]


def drive(host: str, flavor: str, scenario: Scenario) -> Any:
    """Run ``scenario`` with a fresh client of ``flavor`` (made inside the loop that uses it)."""

    async def go() -> Any:
        is_async = flavor == "async"
        client = ollama.AsyncClient(host=host) if is_async else ollama.Client(host=host)
        return await scenario(Side(client, is_async))

    return asyncio.run(go())


def record_then_replay(
    fake: FakeOllama, folder: Path, flavor: str, scenario: Scenario, *, test_id: str = TEST_ID
) -> tuple[Any, Any]:
    """Record ``scenario`` against ``fake``, stop it, replay offline: (live, replayed)."""
    with api_recorder.recording("record", folder), api_recorder.test_context(test_id):
        live = drive(fake.base_url, flavor, scenario)
    sent = fake.request_count
    assert sent >= 1, "recording reached no server"
    fake.stop()
    with network_blocked(), api_recorder.recording("replay", folder), api_recorder.test_context(test_id):
        replayed = drive(fake.base_url, flavor, scenario)
    assert fake.request_count == sent, "replay reached the server"
    return live, replayed


# -- comparing answers -----------------------------------------------------------------------------


def content(answer: Any) -> Any:
    """The class and every field but the normalized ones (a list: each of its items)."""
    if isinstance(answer, list):
        return [content(item) for item in answer]
    return (type(answer), answer.model_dump(exclude=NORMALIZED))


def assert_normalized(live: Any, replayed: Any) -> None:
    """Replayed: ``created_at`` constant, timings 0 where live had them (fresh, non-zero live)."""
    if getattr(live, "created_at", None) is None:
        assert getattr(replayed, "created_at", None) is None
    else:
        assert live.created_at != NORMALIZED_TIME and replayed.created_at == NORMALIZED_TIME
    for name in DURATIONS:
        value = getattr(live, name, None)
        if value is None:
            assert getattr(replayed, name, None) is None, name
        else:
            assert value > 0 and getattr(replayed, name) == 0, name


def assert_same(live: Any, replayed: Any) -> None:
    """Same class, same content, and only the normalized fields changed."""
    assert type(replayed) is type(live)
    assert content(replayed) == content(live)
    assert_normalized(live, replayed)


def assert_same_chunks(live: list[Any], replayed: list[Any]) -> None:
    assert len(replayed) == len(live) > 1
    for live_chunk, chunk in zip(live, replayed, strict=True):
        assert_same(live_chunk, chunk)


def stored_bodies(path: Path) -> list[dict[str, Any]]:
    """The ``__data__`` of each answer a file holds (one, or a stream's chunks)."""
    body = read_json(path)["response"]["body"]
    return [item["__data__"] for item in (body if isinstance(body, list) else [body])]


def assert_files_normalized(folder: Path) -> None:
    """No file holds a live ``created_at`` or timing."""
    for path in recordings_in(folder):
        for data in stored_bodies(path):
            if "created_at" in data:
                assert data["created_at"] == NORMALIZED_TIME, path.name
            for name in DURATIONS:
                assert data.get(name) in (None, 0), (path.name, name)


def file_where(folder: Path, endpoint: str, predicate: Callable[[dict[str, Any]], bool] = lambda body: True) -> Path:
    """The one recording of ``endpoint`` whose request body satisfies ``predicate``."""
    found = [
        path
        for path in recordings_in(folder)
        if read_json(path)["request"]["endpoint"] == endpoint and predicate(read_json(path)["request"]["body"])
    ]
    assert len(found) == 1, [path.name for path in recordings_in(folder)]
    return found[0]


# -- every call, and every stream ------------------------------------------------------------------


async def every_call(side: Side) -> dict[str, Any]:
    c = side.client
    return {
        "chat": await side(c.chat(model=MODEL, messages=user("Hello there"))),
        "tools": await side(c.chat(model=MODEL, messages=user("The get_weather in Paris?"), tools=[WEATHER_TOOL])),
        "format": await side(c.chat(model=MODEL, messages=user("Describe a city"), format=CITY_SCHEMA)),
        "think": await side(c.chat(model=THINKER, messages=user("Why is the sky blue?"), think=True)),
        "generate": await side(c.generate(model=MODEL, prompt="Once upon a time")),
        "embed_one": await side(c.embed(model=EMBEDDER, input="one sentence")),
        "embed_many": await side(c.embed(model=EMBEDDER, input=["first", "second", "third"])),
        "embeddings": await side(c.embeddings(model=EMBEDDER, prompt="a legacy embedding")),
        "show": await side(c.show(MODEL)),
        "pull": await side(c.pull("tinyllama", stream=False)),
        "ps": await side(c.ps()),
    }


CLASSES = {
    "chat": "ChatResponse",
    "tools": "ChatResponse",
    "format": "ChatResponse",
    "think": "ChatResponse",
    "generate": "GenerateResponse",
    "embed_one": "EmbedResponse",
    "embed_many": "EmbedResponse",
    "embeddings": "EmbeddingsResponse",
    "show": "ShowResponse",
    "pull": "ProgressResponse",
    "ps": "ProcessResponse",
}


@flavors
def test_every_call_replays_the_same_objects(workdir, fake_ollama, flavor):
    live, replayed = record_then_replay(fake_ollama, workdir, flavor, every_call)
    assert len(recordings_in(workdir)) == len(live)  # one file a call
    for name, answer in replayed.items():
        assert type(answer) is getattr(ollama, CLASSES[name]), name
        assert_same(live[name], answer)
    assert_files_normalized(workdir)

    # what makes the comparison mean something
    assert replayed["chat"].message.content.startswith("echo: Hello there")
    (call,) = replayed["tools"].message.tool_calls
    assert type(call) is ollama.Message.ToolCall
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "The get_weather in Paris?"}
    assert json.loads(replayed["format"].message.content).keys() == {"name", "population"}
    assert replayed["think"].message.thinking.startswith("Thinking about: Why is the sky blue?")
    assert replayed["think"].message.content
    assert replayed["generate"].response.startswith("echo: Once upon a time") and replayed["generate"].context
    for name in ("chat", "generate", "think"):
        assert replayed[name].eval_count == live[name].eval_count > 0
        assert replayed[name].prompt_eval_count == live[name].prompt_eval_count > 0
    assert len(replayed["embed_one"].embeddings) == 1 and len(replayed["embed_one"].embeddings[0]) == 384
    assert replayed["embed_many"].embeddings == live["embed_many"].embeddings
    assert len(replayed["embed_many"].embeddings) == 3
    assert replayed["embed_many"].embeddings[0] != replayed["embed_many"].embeddings[1]
    assert replayed["embed_many"].prompt_eval_count == live["embed_many"].prompt_eval_count > 0
    assert replayed["embeddings"].embedding == live["embeddings"].embedding and replayed["embeddings"].embedding
    assert replayed["show"].capabilities == ["completion", "tools"] and replayed["show"].modelinfo
    assert replayed["pull"].status == "success"
    assert [m.model for m in replayed["ps"].models] == [m.model for m in live["ps"].models]
    assert len(replayed["ps"].models) >= 3  # the models the calls above loaded

    # embed is filed under /api/embeddings, as llama-stack files it
    assert read_json(file_where(workdir, "/api/embeddings", lambda b: b.get("input") == "one sentence"))["request"][
        "url"
    ].endswith("/api/embeddings")


async def every_stream(side: Side) -> dict[str, tuple[Any, list[Any]]]:
    c = side.client
    return {
        "chat": await side.stream(c.chat(model=MODEL, messages=user("Stream a sentence"), stream=True)),
        "think": await side.stream(c.chat(model=THINKER, messages=user("Think, then talk"), think=True, stream=True)),
        "tools": await side.stream(
            c.chat(model=MODEL, messages=user("The get_weather in Oslo?"), tools=[WEATHER_TOOL], stream=True)
        ),
        "generate": await side.stream(c.generate(model=MODEL, prompt="Tell a story", stream=True)),
        "pull": await side.stream(c.pull("tinyllama", stream=True)),
    }


@flavors
def test_every_stream_replays_the_same_chunks_in_order(workdir, fake_ollama, flavor):
    live, replayed = record_then_replay(fake_ollama, workdir, flavor, every_stream)
    assert len(recordings_in(workdir)) == len(live)
    classes = {"generate": ollama.GenerateResponse, "pull": ollama.ProgressResponse}
    for name, (stream, chunks) in replayed.items():
        assert inspect.isasyncgen(stream) if flavor == "async" else inspect.isgenerator(stream), name
        assert all(type(chunk) is classes.get(name, ollama.ChatResponse) for chunk in chunks), name
        assert_same_chunks(live[name][1], chunks)
        path = file_where(workdir, f"/api/{name if name in ('generate', 'pull') else 'chat'}", _streamed_as(name))
        assert read_json(path)["response"]["is_streaming"] is True
        assert len(read_json(path)["response"]["body"]) == len(chunks)
    assert_files_normalized(workdir)

    chat = replayed["chat"][1]
    assert "".join(c.message.content for c in chat).startswith("echo: Stream a sentence")
    assert chat[-1].done and chat[-1].eval_duration == 0 and chat[-1].eval_count == live["chat"][1][-1].eval_count
    assert not chat[0].done and chat[0].eval_duration is None
    assert "".join(c.message.thinking or "" for c in replayed["think"][1]).startswith("Thinking about:")
    (call,) = [call for c in replayed["tools"][1] for call in c.message.tool_calls or []]
    assert call.function.arguments == {"city": "The get_weather in Oslo?"}
    assert "".join(c.response for c in replayed["generate"][1]).startswith("echo: Tell a story")
    pull = replayed["pull"][1]
    assert pull[0].status == "pulling manifest" and pull[-1].status == "success"
    assert any(p.total and p.completed == p.total and p.digest.startswith("sha256:") for p in pull)


def _streamed_as(name: str) -> Callable[[dict[str, Any]], bool]:
    if name == "think":
        return lambda body: body.get("stream") is True and body.get("think") is True
    if name == "tools":
        return lambda body: body.get("stream") is True and "tools" in body
    if name == "chat":
        return lambda body: body.get("stream") is True and "tools" not in body and "think" not in body
    return lambda body: body.get("stream") is True


def test_sdk_objects_as_arguments_hash_like_their_dicts(workdir, fake_ollama):
    """``Message``/``Options`` objects are stored as the dicts they dump to: either form replays."""
    client = fake_ollama.client()
    with api_recorder.recording("record", workdir):
        live = client.chat(
            model=MODEL,
            messages=[ollama.Message(role="user", content="typed arguments")],
            options=ollama.Options(temperature=0.0, seed=7),
        )
    (path,) = recordings_in(workdir)
    body = read_json(path)["request"]["body"]
    assert body["messages"] == user("typed arguments") and body["options"] == {"temperature": 0.0, "seed": 7}
    fake_ollama.stop()
    with network_blocked(), api_recorder.recording("replay", workdir):
        replayed = client.chat(model=MODEL, messages=user("typed arguments"), options={"temperature": 0.0, "seed": 7})
    assert_same(live, replayed)


# -- the model list: shared by every test, merged across servers --------------------------------


def tags_hash(host: str) -> str:
    return inference_hash("POST", host + "/api/tags", {}, None, shared=True)


def names_digest(names: list[str]) -> str:
    return hashlib.sha256("|".join(sorted(names)).encode()).hexdigest()[:8]


def test_the_model_list_is_shared_by_every_test(workdir, fake_ollama):
    with api_recorder.recording("record", workdir):  # outside any test
        live = fake_ollama.client().list()
    (path,) = recordings_in(workdir)
    names = [model.model for model in live.models]
    assert len(names) == 4
    assert path.name == f"models-{tags_hash(fake_ollama.base_url)}-{names_digest(names)}.json"
    document = read_json(path)
    assert document["test_id"] is None
    assert document["request"]["endpoint"] == "/api/tags" and document["request"]["body"] == {}
    assert document["response"]["body"]["__type__"] == "ollama._types.ListResponse"
    sent = fake_ollama.request_count
    fake_ollama.stop()

    async def both(side: Side) -> Any:
        return await side(side.client.list())

    with network_blocked(), api_recorder.recording("replay", workdir):
        for test_id in ("tests/other.py::test_one", "tests/other.py::test_two"):
            with api_recorder.test_context(test_id):
                for flavor in ("sync", "async"):
                    replayed = drive(fake_ollama.base_url, flavor, both)
                    assert type(replayed) is ollama.ListResponse
                    assert all(type(model) is ollama.ListResponse.Model for model in replayed.models)
                    assert replayed == live
    assert fake_ollama.request_count == sent


def test_lists_recorded_against_two_servers_merge_into_one(workdir):
    first, second = FakeOllama().start(), FakeOllama(models=["mistral:7b", "gemma3:1b"]).start()
    try:
        with api_recorder.recording("record", workdir):
            with api_recorder.test_context("tests/a.py::test_first"):
                live_first = first.client().list()
            with api_recorder.test_context("tests/b.py::test_second"):
                live_second = second.client().list()
    finally:
        first.stop()
        second.stop()
    files = recordings_in(workdir)
    assert len(files) == 2 and all(path.name.startswith(f"models-{tags_hash(first.base_url)}-") for path in files)
    live_models = {model.model: model for model in [*live_first.models, *live_second.models]}
    assert len(live_models) == 6

    with network_blocked(), api_recorder.recording("replay", workdir), api_recorder.test_context("t::c"):
        for fake in (first, second):
            merged = fake.client().list()
            assert type(merged) is ollama.ListResponse
            assert [model.model for model in merged.models] == sorted(live_models)
            for model in merged.models:
                assert model == live_models[model.model]


# -- ps: llama-stack's files replay, and ours are theirs -------------------------------------------


def _llama_stack_ps_files() -> list[Path]:
    return sorted(
        path for path in SAMPLE.glob("*/recordings/*.json") if read_json(path)["request"].get("endpoint") == "/api/ps"
    )


PS_FILES = _llama_stack_ps_files()


def test_the_sample_holds_two_ps_files():
    assert len(PS_FILES) == 2
    assert all(path.parent == SAMPLE / "inference" / "recordings" for path in PS_FILES)


@pytest.mark.parametrize("path", PS_FILES, ids=[path.stem[:12] for path in PS_FILES])
def test_llama_stack_ps_file_replays_as_a_process_response(workdir, path):
    document = read_json(path)
    folder = workdir / "recordings"
    folder.mkdir()
    shutil.copy(path, folder)
    assert inference_hash("POST", document["request"]["url"], {}, document["test_id"]) == path.stem
    with (
        network_blocked(),
        api_recorder.recording("replay", folder),
        api_recorder.test_context(document["test_id"]),
    ):
        answer = ollama.Client(host=LLAMA_STACK_HOST).ps()
    assert type(answer) is ollama.ProcessResponse
    assert all(type(model) is ollama.ProcessResponse.Model for model in answer.models)
    assert answer == ollama.ProcessResponse.model_validate(document["response"]["body"]["__data__"])
    assert len(answer.models) >= 2 and answer.models[0].model == "llama3.2:3b"
    assert [p.name for p in folder.iterdir()] == [path.name]  # read, never rewritten


def test_a_recorded_ps_has_llama_stacks_shape(workdir, fake_ollama):
    test_id = read_json(PS_FILES[0])["test_id"]
    with api_recorder.recording("record", workdir), api_recorder.test_context(test_id):
        live = fake_ollama.client().ps()
    (path,) = recordings_in(workdir)
    url = fake_ollama.base_url + "/api/ps"
    assert path.stem == inference_hash("POST", url, {}, test_id)
    assert path.name == PS_FILES[0].name  # the hash leaves the host out: the same name as llama-stack's
    document = read_json(path)
    assert document["test_id"] == test_id
    request = document["request"]
    assert {key: request[key] for key in ("method", "url", "headers", "body", "endpoint", "model")} == {
        "method": "POST",
        "url": url,
        "headers": {},
        "body": {},
        "endpoint": "/api/ps",
        "model": "",
    }
    assert document["response"]["body"]["__type__"] == "ollama._types.ProcessResponse"
    assert document["response"]["is_streaming"] is False
    fake_ollama.stop()
    with network_blocked(), api_recorder.recording("replay", workdir), api_recorder.test_context(test_id):
        replayed = ollama.Client(host=LLAMA_STACK_HOST).ps()  # another host: the same file
    assert replayed == live and type(replayed) is ollama.ProcessResponse


def test_a_recording_names_the_sdk_version(workdir, fake_ollama):
    with api_recorder.recording("record", workdir):
        fake_ollama.client().ps()
    (path,) = recordings_in(workdir)
    metadata = read_json(path)["request"]["provider_metadata"]
    assert metadata["ollama_sdk_version"] == importlib.metadata.version("ollama")


# -- errors ----------------------------------------------------------------------------------------


def assert_same_error(live: Exception, replayed: Exception, status: int) -> None:
    assert type(replayed) is ollama.ResponseError and type(live) is ollama.ResponseError
    assert (replayed.error, replayed.status_code) == (live.error, live.status_code)
    assert live.status_code == status
    assert str(replayed) == str(live)


@flavors
def test_errors_replay_with_their_message_and_status(workdir, fake_ollama, flavor):
    async def scenario(side: Side) -> dict[str, Exception]:
        c = side.client
        errors = {}
        with pytest.raises(ollama.ResponseError) as caught:
            await side(c.chat(model="no-such-model", messages=user("Hello")))
        errors["unknown"] = caught.value
        with pytest.raises(ollama.ResponseError) as caught:
            await side(c.show("no-such-model"))
        errors["show"] = caught.value
        chunks, errors["unknown_stream"] = await side.until_error(
            c.chat(model="no-such-model", messages=user("Hello"), stream=True)
        )
        assert chunks == []
        fake_ollama.fail_next(500, path="generate")  # consumed live; replay never asks the server
        with pytest.raises(ollama.ResponseError) as caught:
            await side(c.generate(model=MODEL, prompt="Fail, please"))
        errors["injected"] = caught.value
        return errors

    live, replayed = record_then_replay(fake_ollama, workdir, flavor, scenario)
    assert live["unknown"].error == "model 'no-such-model' not found"
    for name, status in (("unknown", 404), ("show", 404), ("unknown_stream", 404), ("injected", 500)):
        assert_same_error(live[name], replayed[name], status)
    assert live["injected"].error == "internal server error (injected by FakeOllama)"
    for path in recordings_in(workdir):
        response = read_json(path)["response"]
        assert response["is_exception"] is True and response["exception_data"]["type"] == "ResponseError"


@flavors
def test_a_mid_stream_error_replays_after_the_same_chunks(workdir, fake_ollama, flavor):
    async def scenario(side: Side) -> tuple[list[Any], Exception]:
        fake_ollama.fail_mid_stream(3, path="chat")  # consumed live; replay never asks the server
        return await side.until_error(side.client.chat(model=MODEL, messages=user("Break, please"), stream=True))

    (live_chunks, live_error), (chunks, error) = record_then_replay(fake_ollama, workdir, flavor, scenario)
    assert len(live_chunks) == 3
    assert_same_chunks(live_chunks, chunks)
    assert all(type(chunk) is ollama.ChatResponse for chunk in chunks)
    assert_same_error(live_error, error, -1)
    assert error.error.startswith("an error was encountered while running the model")
    (path,) = recordings_in(workdir)
    document = read_json(path)
    assert document["response"]["is_streaming"] is True and len(document["response"]["body"]) == 3


# -- what replay refuses, and what it cannot find ------------------------------------------------

UNCOVERED = {
    "delete": lambda c: c.delete("x"),
    "copy": lambda c: c.copy("llama3.2", "llama3.2-copy"),
    "create": lambda c: c.create(model="x", from_=MODEL, system="Be brief."),
}


@flavors
@pytest.mark.parametrize("name", list(UNCOVERED))
def test_an_uncovered_call_in_replay_is_refused_and_sends_nothing(workdir, fake_ollama, flavor, name):
    async def scenario(side: Side) -> None:
        with pytest.raises(UnsupportedCallError, match="not recorded"):
            await side(UNCOVERED[name](side.client))

    with api_recorder.recording("replay", workdir):
        drive(fake_ollama.base_url, flavor, scenario)
    assert fake_ollama.request_count == 0
    assert recordings_in(workdir) == []


MISSES = {
    "chat": (lambda c: c.chat(model=MODEL, messages=user("never recorded")), False),
    "chat_stream": (lambda c: c.chat(model=MODEL, messages=user("never recorded"), stream=True), True),
    "generate_stream": (lambda c: c.generate(model=MODEL, prompt="never recorded", stream=True), True),
    "embed": (lambda c: c.embed(model=EMBEDDER, input="never recorded"), False),
    "ps": (lambda c: c.ps(), False),
    "list": (lambda c: c.list(), False),
    "pull_stream": (lambda c: c.pull("never-recorded", stream=True), True),
}


@flavors
def test_a_replay_miss_raises_recording_not_found(workdir, fake_ollama, flavor):
    async def scenario(side: Side) -> None:
        for name, (call, streamed) in MISSES.items():
            with pytest.raises(RecordingNotFoundError, match="POST /api/"):
                await (side.stream(call(side.client)) if streamed else side(call(side.client)))
                pytest.fail(f"{name} was answered")

    with api_recorder.recording("replay", workdir), api_recorder.test_context(TEST_ID):
        drive(fake_ollama.base_url, flavor, scenario)
    assert fake_ollama.request_count == 0
    assert recordings_in(workdir) == []


# -- streams left early ------------------------------------------------------------------------------


def test_a_sync_stream_left_with_break_is_recorded_whole(workdir, fake_ollama):
    client = fake_ollama.client()
    messages = user("Stream a long answer of many words")
    with api_recorder.recording("live"):
        whole = list(client.chat(model=MODEL, messages=messages, stream=True))
    assert len(whole) > 3 and whole[-1].done
    with api_recorder.recording("record", workdir):
        for chunk in client.chat(model=MODEL, messages=messages, stream=True):
            first = chunk
            break
    assert first.message.content == whole[0].message.content
    (path,) = recordings_in(workdir)
    stored = read_json(path)["response"]["body"]
    assert len(stored) == len(whole) and stored[-1]["__data__"]["done"] is True
    fake_ollama.stop()
    with network_blocked(), api_recorder.recording("replay", workdir):
        replayed = list(client.chat(model=MODEL, messages=messages, stream=True))
    assert_same_chunks(whole, replayed)


def test_an_async_stream_left_with_break_then_closed_is_recorded_whole(workdir, fake_ollama):
    messages = user("Stream a long answer of many words")

    async def first_then_close(side: Side) -> Any:
        stream = await side.client.chat(model=MODEL, messages=messages, stream=True)
        async for chunk in stream:
            first = chunk
            break
        await stream.aclose()  # closing reads the rest: the recording is the whole stream
        return first

    async def whole(side: Side) -> list[Any]:
        return (await side.stream(side.client.chat(model=MODEL, messages=messages, stream=True)))[1]

    with api_recorder.recording("live"):
        live = drive(fake_ollama.base_url, "async", whole)
    with api_recorder.recording("record", workdir):
        first = drive(fake_ollama.base_url, "async", first_then_close)
    assert first.message.content == live[0].message.content
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) == len(live) > 3
    fake_ollama.stop()
    with network_blocked(), api_recorder.recording("replay", workdir):
        replayed = drive(fake_ollama.base_url, "async", whole)
    assert_same_chunks(live, replayed)


# -- auto-activation in a child process ---------------------------------------------------------------

CHILD = """
import asyncio, json, os, sys
{prelude}
import ollama
assert "api_recorder" in sys.modules, "not activated"
host = os.environ["FAKE_URL"]
client = ollama.Client(host=host)
answer = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hello from a child"}])
chunks = list(client.generate(model="llama3.2", prompt="stream from a child", stream=True))
async def embed():
    return await ollama.AsyncClient(host=host).embed(model="all-minilm", input="three more words")
vector = asyncio.run(embed()).embeddings[0][:4]
print(json.dumps([type(answer).__name__, answer.message.content, answer.created_at, [c.response for c in chunks],
                  vector, [m.model for m in client.list().models]]))
"""


def run_child(cwd: Path, prelude: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(CHILD.replace("{prelude}", prelude), cwd, **env)


@pytest.mark.parametrize(
    "prelude",
    [
        pytest.param("", id="auto"),
        pytest.param("import api_recorder; api_recorder.enable()", id="enable-from-env"),
    ],
)
def test_a_child_records_and_another_replays_from_the_env_vars(tmp_path, prelude):
    fake = FakeOllama().start()
    env = {"FAKE_URL": fake.base_url, "LLAMA_STACK_TEST_RECORDING_DIR": "recs"}
    try:
        live = run_child(tmp_path, prelude, LLAMA_STACK_TEST_INFERENCE_MODE="record", **env)
    finally:
        fake.stop()
    assert live.returncode == 0, live.stderr
    assert "could not wrap" not in live.stderr, live.stderr
    sent = fake.request_count
    assert sent == 4
    assert len(recordings_in(tmp_path / "recs")) == 4
    replayed = run_child(tmp_path, prelude, LLAMA_STACK_TEST_INFERENCE_MODE="replay", **env)
    assert replayed.returncode == 0, replayed.stderr
    assert fake.request_count == sent
    name, text, created_at, chunks, vector, models = json.loads(replayed.stdout)
    assert (name, created_at) == ("ChatResponse", NORMALIZED_TIME)
    assert text.startswith("echo: hello from a child") and len(chunks) > 2 and len(models) == 4
    _, live_text, live_created_at, live_chunks, live_vector, live_models = json.loads(live.stdout)
    assert (live_text, live_chunks, live_vector, live_models) == (text, chunks, vector, models)
    assert live_created_at != NORMALIZED_TIME


# -- the CLI ----------------------------------------------------------------------------------------


def test_show_renders_ollama_recordings(workdir, fake_ollama):
    client = fake_ollama.client()
    with api_recorder.recording("record", workdir), api_recorder.test_context(TEST_ID):
        answer = client.chat(model=MODEL, messages=user("Show me"))
        chunks = list(client.chat(model=MODEL, messages=user("Show me streamed"), stream=True))
        client.list()
        with pytest.raises(ollama.ResponseError):
            client.chat(model="no-such-model", messages=user("Show me"))
    runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})
    paths = recordings_in(workdir)
    assert len(paths) == 4
    outputs = {}
    for path in paths:
        result = runner.invoke(app, ["show", str(path)])
        assert result.exit_code == 0, result.output
        assert "/api/" in result.output
        outputs[path] = result.output
    plain = file_where(
        workdir, "/api/chat", lambda body: body["messages"] == user("Show me") and body["model"] == MODEL
    )
    assert answer.message.content in outputs[plain]
    streamed = file_where(workdir, "/api/chat", lambda body: body.get("stream") is True)
    assert f"({len(chunks)} chunks)" in outputs[streamed]
    failed = file_where(workdir, "/api/chat", lambda body: body["model"] == "no-such-model")
    assert "model 'no-such-model' not found" in outputs[failed]
