"""Prove `FakeOllama` speaks Ollama's REST API: the real `ollama` SDK against it, over HTTP.

No library code is involved here.  Raw NDJSON lines are additionally parsed by
hand and validated with the SDK's own pydantic types.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import inspect
import json
import math
import platform
from typing import Any

import httpx
import ollama
import pytest
from ollama import (
    ChatResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    ListResponse,
    ProcessResponse,
    ProgressResponse,
    ShowResponse,
)
from pydantic import BaseModel

from .ollama_app import FakeOllama, ModelSpec

pytestmark = pytest.mark.filterwarnings("error")

MODEL = "llama3.2"
THINKER = "qwen3:0.6b"
EMBEDDER = "nomic-embed-text"
COUNTERS = ("prompt_eval_count", "eval_count")
DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
      city: The city to look up

    Returns:
      str: The weather there
    """
    return f"sunny in {city}"


class Country(BaseModel):
    name: str
    capital: str
    population: int


def ndjson(fake: FakeOllama, path: str, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """POST and split the body into JSON lines, independent of the SDK's decoder."""
    with httpx.Client() as http:
        response = http.post(f"{fake.base_url}{path}", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n")
    lines = response.text[:-1].split("\n")
    assert all(line.strip() for line in lines)  # no blank lines: the SDK json.loads every one
    return response, [json.loads(line) for line in lines]


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")[:26] + "+00:00")


@pytest.fixture
def client(fake_ollama):
    with fake_ollama.client() as client:
        yield client


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------


def test_plain_chat_echoes_the_prompt_with_counters_and_durations(fake_ollama, client):
    response = client.chat(model=MODEL, messages=user("Why is the sky blue?"))

    assert isinstance(response, ChatResponse)
    assert response.model == MODEL
    assert response.message.role == "assistant"
    assert response.message.content.startswith("echo: Why is the sky blue?")
    assert response.message.tool_calls is None
    assert response.done is True
    assert response.done_reason == "stop"
    assert response.prompt_eval_count == 5 + 3
    assert response.eval_count == len(response.message.content.split())
    assert all(isinstance(getattr(response, name), int) and getattr(response, name) > 0 for name in DURATIONS)
    assert response.total_duration > response.load_duration + response.eval_duration
    assert abs(parse_time(response.created_at) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60

    request = fake_ollama.last_request
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.body == {"model": MODEL, "messages": user("Why is the sky blue?"), "tools": [], "stream": False}


def test_raw_chat_json_and_ndjson_validate_as_sdk_types(fake_ollama):
    with httpx.Client() as http:
        body = {"model": MODEL, "messages": user("hi"), "stream": False}
        plain = http.post(f"{fake_ollama.base_url}/api/chat", json=body)
    assert plain.headers["content-type"] == "application/json"
    payload = plain.json()
    assert set(payload) == {"model", "created_at", "message", "done", "done_reason", *COUNTERS, *DURATIONS}
    ChatResponse.model_validate(payload)

    _, lines = ndjson(fake_ollama, "/api/chat", {"model": MODEL, "messages": user("hi")})  # streams by default
    *parts, last = lines
    assert all(set(part) == {"model", "created_at", "message", "done"} and part["done"] is False for part in parts)
    assert set(last) == {"model", "created_at", "message", "done", "done_reason", *COUNTERS, *DURATIONS}
    assert last["done"] is True and last["message"] == {"role": "assistant", "content": ""}
    assert "".join(part["message"]["content"] for part in parts) == payload["message"]["content"]
    assert len({line["created_at"] for line in lines}) == len(lines)  # stamped as each line is sent
    for line in lines:
        ChatResponse.model_validate(line)


def test_streamed_chat_is_a_lazy_generator_that_adds_up_to_the_plain_answer(fake_ollama, client):
    plain = client.chat(model=MODEL, messages=user("Tell me a story"))
    before = fake_ollama.request_count

    stream = client.chat(model=MODEL, messages=user("Tell me a story"), stream=True)
    assert inspect.isgenerator(stream)
    assert fake_ollama.request_count == before  # nothing is sent until the first next()
    parts = list(stream)

    assert fake_ollama.request_count == before + 1
    assert all(isinstance(part, ChatResponse) for part in parts)
    assert [part.done for part in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(part.message.content for part in parts) == plain.message.content
    final = parts[-1]
    assert final.done_reason == "stop"
    assert (final.prompt_eval_count, final.eval_count) == (plain.prompt_eval_count, plain.eval_count)
    assert all(getattr(final, name) > 0 for name in DURATIONS)
    assert all(part.total_duration is None for part in parts[:-1])
    assert fake_ollama.last_request.body["stream"] is True


def test_tool_call_then_tool_result_round_trip(fake_ollama, client):
    messages = user("What is the weather in Paris?")
    response = client.chat(model=MODEL, messages=messages, tools=[get_weather])

    [call] = response.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "What is the weather in Paris?"}
    assert response.message.content == ""
    assert response.done_reason == "stop"
    [tool] = fake_ollama.last_request.body["tools"]
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["city"]

    messages += [response.message, {"role": "tool", "content": "sunny, 21C", "tool_name": "get_weather"}]
    answer = client.chat(model=MODEL, messages=messages, tools=[get_weather])
    assert answer.message.tool_calls is None
    assert answer.message.content.startswith("Based on the tool result: sunny, 21C")
    assert fake_ollama.last_request.body["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_tool_named_in_the_prompt_is_chosen_and_streamed_in_one_line(client):
    tools = [
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            },
        },
    ]
    parts = list(client.chat(model=MODEL, messages=user("please lookup otters"), tools=tools, stream=True))

    with_calls = [part for part in parts if part.message.tool_calls]
    assert len(with_calls) == 1 and len(parts) == 2
    [call] = with_calls[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == ("lookup", {"q": "please lookup otters"})
    assert parts[-1].done is True


def test_format_schema_and_json(client):
    response = client.chat(model=MODEL, messages=user("France?"), format=Country.model_json_schema())
    country = Country.model_validate_json(response.message.content)
    assert country == Country(name="name-value", capital="capital-value", population=42)

    streamed = client.chat(model=MODEL, messages=user("France?"), format=Country.model_json_schema(), stream=True)
    assert "".join(part.message.content for part in streamed) == response.message.content

    loose = client.chat(model=MODEL, messages=user("France?"), format="json")
    assert json.loads(loose.message.content) == {"echo": "France?"}


def test_thinking_models_think_and_others_refuse(client):
    response = client.chat(model=THINKER, messages=user("Think hard"), think=True)
    assert response.message.thinking.startswith("Thinking about: Think hard")
    assert response.message.content.startswith("echo: Think hard")

    parts = list(client.chat(model=THINKER, messages=user("Think hard"), think=True, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == response.message.thinking
    assert "".join(p.message.content for p in parts) == response.message.content

    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model=MODEL, messages=user("Think hard"), think=True)
    assert raised.value.status_code == 400
    assert raised.value.error == '"llama3.2" does not support thinking'
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model=EMBEDDER, messages=user("hi"))
    assert (raised.value.status_code, raised.value.error) == (400, '"nomic-embed-text" does not support chat')


def test_options_num_predict_and_stop(client):
    cut = client.chat(model=MODEL, messages=user("one two three four five"), options={"num_predict": 3})
    assert cut.message.content == "echo: one two"
    assert (cut.done_reason, cut.eval_count) == ("length", 3)

    stopped = client.chat(model=MODEL, messages=user("one two three four five"), options={"stop": ["three"]})
    assert stopped.message.content == "echo: one two "
    assert stopped.done_reason == "stop"

    longer = client.chat(model=MODEL, messages=user("hi"), options={"reply_words": 40})
    assert len(longer.message.content.split()) == 40


def test_empty_messages_load_and_keep_alive_zero_unloads(fake_ollama, client):
    loaded = client.chat(model=THINKER, messages=[])
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")
    assert fake_ollama.running[0] == "qwen3:0.6b"

    unloaded = client.generate(model=THINKER, keep_alive=0)
    assert (unloaded.done_reason, unloaded.response) == ("unload", "")
    assert "qwen3:0.6b" not in fake_ollama.running


def test_same_request_twice_fresh_timestamps_and_durations_same_content(client):
    first = client.chat(model=MODEL, messages=user("Same question"))
    second = client.chat(model=MODEL, messages=user("Same question"))

    assert first.message == second.message
    assert (first.prompt_eval_count, first.eval_count) == (second.prompt_eval_count, second.eval_count)
    assert first.created_at != second.created_at
    assert parse_time(first.created_at) <= parse_time(second.created_at)
    assert all(getattr(first, name) != getattr(second, name) for name in DURATIONS)

    one = list(client.generate(model=MODEL, prompt="Same question", stream=True))
    two = list(client.generate(model=MODEL, prompt="Same question", stream=True))
    assert [p.response for p in one] == [p.response for p in two]
    assert one[-1].context == two[-1].context
    assert not {p.created_at for p in one} & {p.created_at for p in two}
    assert one[-1].total_duration != two[-1].total_duration


# ---------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------


def test_generate_plain_and_streamed(fake_ollama, client):
    plain = client.generate(model=MODEL, prompt="Why is the sky blue?", system="Be brief.")
    assert isinstance(plain, GenerateResponse)
    assert plain.response.startswith("echo: Why is the sky blue?")
    assert (plain.done, plain.done_reason) == (True, "stop")
    assert plain.context and all(isinstance(token, int) for token in plain.context)
    assert all(getattr(plain, name) > 0 for name in (*COUNTERS, *DURATIONS))
    assert fake_ollama.last_request.path == "/api/generate"

    stream = client.generate(model=MODEL, prompt="Why is the sky blue?", system="Be brief.", stream=True)
    assert inspect.isgenerator(stream)
    parts = list(stream)
    assert all(isinstance(part, GenerateResponse) for part in parts)
    assert "".join(part.response for part in parts) == plain.response
    assert parts[-1].done and parts[-1].context == plain.context
    assert all(part.context is None and not part.done for part in parts[:-1])

    follow_up = client.generate(model=MODEL, prompt="And at night?", context=plain.context)
    assert follow_up.context[: len(plain.context)] == plain.context

    _, lines = ndjson(fake_ollama, "/api/generate", {"model": MODEL, "prompt": "raw"})
    final_keys = {"model", "created_at", "response", "done", "done_reason", "context", *COUNTERS, *DURATIONS}
    assert set(lines[-1]) == final_keys
    for line in lines:
        GenerateResponse.model_validate(line)


# ---------------------------------------------------------------------------
# embeddings
# ---------------------------------------------------------------------------


def test_embed_one_and_several(fake_ollama, client):
    one = client.embed(model=EMBEDDER, input="hello world")
    assert isinstance(one, EmbedResponse)
    [vector] = one.embeddings
    assert len(vector) == 768
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-5)
    assert one.model == EMBEDDER
    assert one.prompt_eval_count == 4 and one.total_duration > 0 and one.load_duration > 0

    several = client.embed(model=EMBEDDER, input=["hello world", "goodbye", "hello world"])
    assert len(several.embeddings) == 3
    assert several.embeddings[0] == vector == several.embeddings[2]
    assert several.embeddings[1] != vector
    assert client.embed(model="all-minilm", input="hello world").embeddings[0] != vector[:384]
    assert len(client.embed(model=EMBEDDER, input="hi", dimensions=64).embeddings[0]) == 64
    assert fake_ollama.last_request.body == {"model": EMBEDDER, "input": "hi", "dimensions": 64}


def test_legacy_embeddings(fake_ollama, client):
    response = client.embeddings(model=EMBEDDER, prompt="hello world")
    assert isinstance(response, EmbeddingsResponse)
    assert len(response.embedding) == 768
    assert client.embeddings(model=EMBEDDER, prompt="hello world").embedding == response.embedding
    assert fake_ollama.last_request.path == "/api/embeddings"
    assert client.embeddings(model=EMBEDDER, prompt="").embedding == []


# ---------------------------------------------------------------------------
# models: list, ps, show, pull
# ---------------------------------------------------------------------------


def test_list_models(fake_ollama, client):
    response = client.list()
    assert isinstance(response, ListResponse)
    names = [model.model for model in response.models]
    assert names == ["llama3.2:latest", "qwen3:0.6b", "nomic-embed-text:latest", "all-minilm:latest"]
    first = response.models[0]
    assert first.details.family == "llama" and first.details.parameter_size == "3.2B"
    assert first.size == 2_019_393_189 and len(first.digest) == 64
    assert isinstance(first.modified_at, datetime.datetime)
    assert fake_ollama.last_request.method == "GET" and fake_ollama.last_request.path == "/api/tags"
    with httpx.Client() as http:
        raw = http.get(f"{fake_ollama.base_url}/api/tags").json()["models"][0]
    assert set(raw) == {"name", "model", "modified_at", "size", "digest", "details"}


def test_ps_lists_loaded_models_with_fresh_expiry(fake_ollama, client):
    first = client.ps()
    assert isinstance(first, ProcessResponse)
    [running] = first.models
    assert (running.name, running.model) == ("llama3.2:latest", "llama3.2:latest")
    assert running.size_vram == running.size > 0
    assert running.details.family == "llama" and running.context_length == 4096
    now = datetime.datetime.now(datetime.timezone.utc)
    assert 290 < (running.expires_at - now).total_seconds() <= 300

    client.chat(model=THINKER, messages=user("hi"), keep_alive="10m")
    second = client.ps()
    assert [model.name for model in second.models] == ["qwen3:0.6b", "llama3.2:latest"]
    assert 590 < (second.models[0].expires_at - now).total_seconds() <= 601
    assert second.models[1].expires_at > running.expires_at  # fresh on every answer


def test_show_model(fake_ollama, client):
    response = client.show(MODEL)
    assert isinstance(response, ShowResponse)
    assert response.capabilities == ["completion", "tools"]
    assert response.modelinfo["general.architecture"] == "llama"
    assert response.modelinfo["llama.context_length"] == 131_072
    assert response.details.quantization_level == "Q4_K_M"
    assert "FROM " in response.modelfile and "{{ .Prompt }}" in response.template
    assert "stop" in response.parameters
    assert isinstance(response.modified_at, datetime.datetime)
    assert fake_ollama.last_request.body == {"model": MODEL}
    assert client.show(EMBEDDER).capabilities == ["embedding"]


def test_pull_streamed_and_not(fake_ollama, client):
    stream = client.pull("smollm2:135m", stream=True)
    assert inspect.isgenerator(stream)
    parts = list(stream)
    assert all(isinstance(part, ProgressResponse) for part in parts)
    statuses = [part.status for part in parts]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = [part for part in parts if part.digest]
    assert len(layers) >= 6
    for part in layers:
        assert part.digest.startswith("sha256:") and part.status == f"pulling {part.digest[7:19]}"
        assert 0 <= part.completed <= part.total
    assert layers[-1].completed == layers[-1].total
    assert "smollm2:135m" in fake_ollama.models
    assert client.chat(model="smollm2:135m", messages=user("hi")).message.content.startswith("echo: hi")

    again = list(client.pull("smollm2:135m", stream=True))
    assert [p.model_dump() for p in again] == [p.model_dump() for p in parts]  # no volatile fields in a pull

    done = client.pull(MODEL)
    assert isinstance(done, ProgressResponse) and done.status == "success"
    assert fake_ollama.last_request.body == {"model": MODEL, "insecure": False, "stream": False}


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat(model="nope", messages=user("hi")),
        lambda c: list(c.chat(model="nope", messages=user("hi"), stream=True)),
        lambda c: c.generate(model="nope", prompt="hi"),
        lambda c: c.embed(model="nope", input="hi"),
        lambda c: c.embeddings(model="nope", prompt="hi"),
        lambda c: c.show("nope"),
    ],
)
def test_unknown_model_is_a_404_response_error(client, call):
    with pytest.raises(ollama.ResponseError) as raised:
        call(client)
    assert raised.value.status_code == 404
    assert raised.value.error == "model 'nope' not found"
    assert str(raised.value) == "model 'nope' not found (status code: 404)"


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_injected_errors_raise_response_error_with_the_status(fake_ollama, client, status):
    fake_ollama.fail_next(status, message=f"boom {status}")
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat(model=MODEL, messages=user("hi"))
    assert (raised.value.status_code, raised.value.error) == (status, f"boom {status}")
    assert client.chat(model=MODEL, messages=user("hi")).done  # one-shot


def test_injected_error_count_path_and_default_message(fake_ollama, client):
    fake_ollama.fail_next(500, count=2, path="embed")
    assert client.list().models  # other paths are not affected
    for _ in range(2):
        with pytest.raises(ollama.ResponseError) as raised:
            client.embed(model=EMBEDDER, input="hi")
        assert raised.value.status_code == 500
        assert raised.value.error == "internal server error (injected by FakeOllama)"
    assert client.embed(model=EMBEDDER, input="hi").embeddings

    fake_ollama.fail_next(429, path="/api/chat")
    stream = client.chat(model=MODEL, messages=user("hi"), stream=True)
    with pytest.raises(ollama.ResponseError) as raised:
        next(stream)
    assert raised.value.status_code == 429
    assert len(fake_ollama.requests_to("chat")) == 1 == len(fake_ollama.requests_to("/api/chat"))


def test_mid_stream_error_raises_from_the_iteration(fake_ollama, client):
    fake_ollama.fail_mid_stream(2, message="runner crashed")
    received = []
    with pytest.raises(ollama.ResponseError) as raised:
        for part in client.chat(model=MODEL, messages=user("one two three"), stream=True):
            received.append(part.message.content)
    assert received == ["echo:", " one"]
    assert (raised.value.error, raised.value.status_code) == ("runner crashed", -1)

    fake_ollama.fail_mid_stream(1, path="pull")
    assert client.generate(model=MODEL, prompt="unaffected", stream=False).done
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        list(client.pull(MODEL, stream=True))


def test_hold_and_release_stream(fake_ollama, client):
    fake_ollama.hold_stream(2)
    parts = iter(client.generate(model=MODEL, prompt="Hold on please", stream=True))
    first = [next(parts).response, next(parts).response]
    fake_ollama.release_streams()
    rest = list(parts)
    assert first == ["echo:", " Hold"]
    assert rest[-1].done is True

    fake_ollama.hold_stream(1)  # a later hold holds again
    parts = iter(client.chat(model=MODEL, messages=user("Again"), stream=True))
    assert next(parts).message.content == "echo:"
    fake_ollama.release_streams()
    assert list(parts)[-1].done is True


def test_headers_the_sdk_sends(fake_ollama, client):
    client.list()
    headers = fake_ollama.last_request.headers
    # `ollama._client` is the module-level default Client, not the module: ask the package metadata
    assert headers["user-agent"].startswith(f"ollama-python/{importlib.metadata.version('ollama')} (")
    assert headers["user-agent"].endswith(f" Python/{platform.python_version()}")
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert "authorization" not in headers or headers["authorization"].startswith("Bearer ")


def test_misc_routes_and_bad_requests(fake_ollama):
    with httpx.Client(base_url=fake_ollama.base_url) as http:
        assert http.get("/").text == "Ollama is running"
        assert http.get("/api/version").json() == {"version": "0.12.6"}
        assert (http.get("/api/nothing").status_code, http.get("/api/nothing").text) == (404, "404 page not found")
        assert http.get("/api/chat").status_code == 405
        assert http.post("/api/chat", json={"messages": []}).json() == {"error": "model is required"}
        bad = http.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": "soon"})
        assert (bad.status_code, bad.json()) == (400, {"error": 'time: invalid duration "soon"'})
        ps = http.get("/api/ps").json()["models"][0]
    assert set(ps) == {"name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"}


def test_reset_forgets_requests_injections_and_pulls(fake_ollama, client):
    client.pull("extra:1b")
    fake_ollama.fail_next(500)
    fake_ollama.fail_mid_stream(1)
    fake_ollama.hold_stream(1)
    fake_ollama.reset()

    assert fake_ollama.request_count == 0 and fake_ollama.requests == []
    assert "extra:latest" not in fake_ollama.models and "extra:1b" not in fake_ollama.models
    assert list(client.chat(model=MODEL, messages=user("hi"), stream=True))[-1].done
    with pytest.raises(AssertionError):
        FakeOllama().last_request  # noqa: B018


def test_custom_models_and_running():
    with FakeOllama(models=[ModelSpec("tiny:1b", family="tiny"), "mxbai-embed-large"], running=[]) as fake:
        with fake.client() as client:
            assert [m.model for m in client.list().models] == ["tiny:1b", "mxbai-embed-large:latest"]
            assert client.ps().models == []
            assert client.show("mxbai-embed-large").capabilities == ["embedding"]
            assert client.chat(model="tiny:1b", messages=user("hi")).done
            assert fake.running == ["tiny:1b"]


# ---------------------------------------------------------------------------
# AsyncClient
# ---------------------------------------------------------------------------


def test_async_client_end_to_end(fake_ollama):
    async def run() -> dict[str, Any]:
        async with fake_ollama.async_client() as client:
            out: dict[str, Any] = {}
            out["chat"] = await client.chat(model=MODEL, messages=user("Async hello"))
            stream = await client.chat(model=MODEL, messages=user("Async hello"), stream=True)
            out["is_async_gen"] = inspect.isasyncgen(stream)
            out["parts"] = [part async for part in stream]
            out["tools"] = await client.chat(model=MODEL, messages=user("Rome"), tools=[get_weather])
            out["generate"] = [p async for p in await client.generate(model=MODEL, prompt="Async", stream=True)]
            out["embed"] = await client.embed(model=EMBEDDER, input=["a", "b"])
            out["embeddings"] = await client.embeddings(model=EMBEDDER, prompt="a")
            out["list"] = await client.list()
            out["ps"] = await client.ps()
            out["show"] = await client.show(EMBEDDER)
            out["pull"] = [p.status async for p in await client.pull("llama3.2", stream=True)]
            out["pull_plain"] = await client.pull("llama3.2")
            return out

    out = asyncio.run(run())
    assert isinstance(out["chat"], ChatResponse)
    assert out["is_async_gen"]
    assert "".join(p.message.content for p in out["parts"]) == out["chat"].message.content
    assert out["parts"][-1].done and out["parts"][-1].eval_count == out["chat"].eval_count
    assert out["tools"].message.tool_calls[0].function.arguments == {"city": "Rome"}
    assert "".join(p.response for p in out["generate"]).startswith("echo: Async")
    assert len(out["embed"].embeddings) == 2 and out["embed"].embeddings[0] == out["embeddings"].embedding
    assert isinstance(out["list"], ListResponse) and isinstance(out["ps"], ProcessResponse)
    assert out["show"].capabilities == ["embedding"]
    assert out["pull"][0] == "pulling manifest" and out["pull"][-1] == "success"
    assert out["pull_plain"].status == "success"
    assert fake_ollama.request_count == 11


def test_async_client_errors(fake_ollama):
    async def run() -> list[Any]:
        results: list[Any] = []
        async with fake_ollama.async_client() as client:
            try:
                await client.chat(model="nope", messages=user("hi"))
            except ollama.ResponseError as exc:
                results.append((exc.status_code, exc.error))
            fake_ollama.fail_next(503, path="chat")
            stream = await client.chat(model=MODEL, messages=user("hi"), stream=True)
            try:
                await stream.__anext__()
            except ollama.ResponseError as exc:
                results.append((exc.status_code, exc.error))
            fake_ollama.fail_mid_stream(3, message="lost the GPU")
            received = []
            try:
                async for part in await client.generate(model=MODEL, prompt="one two three", stream=True):
                    received.append(part.response)
            except ollama.ResponseError as exc:
                results.append((exc.status_code, exc.error, received))
        return results

    assert asyncio.run(run()) == [
        (404, "model 'nope' not found"),
        (503, "server busy, please try again.  maximum pending requests exceeded (injected by FakeOllama)"),
        (-1, "lost the GPU", ["echo:", " one", " two"]),
    ]
