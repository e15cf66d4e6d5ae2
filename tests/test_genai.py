"""google-genai: llama-stack's Gemini files replay through the real SDK, and what we record is theirs.

Covered: ``models.generate_content``, ``generate_content_stream``, ``embed_content``,
``count_tokens``, sync and ``client.aio``, for Gemini API and Vertex AI clients, against
``FakeGemini`` (fresh ids and timestamps on every answer, content a function of the request).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import api_recorder
from api_recorder.context import TEST_ID_HEADER
from api_recorder.errors import RecordingNotFoundError, UnsupportedCallError
from api_recorder.hashing import inference_hash
from api_recorder.network import network_blocked
from helpers import read_json, recordings_in, run_python, sample_files

genai = pytest.importorskip("google.genai")
import google.oauth2.credentials  # noqa: E402
from google.genai import errors, types  # noqa: E402

import fakes.gemini_app as gemini_app  # noqa: E402
from fakes.gemini_app import FakeGemini  # noqa: E402

MODEL = "gemini-2.0-flash"
EMBEDDING_MODEL = "text-embedding-004"
NORMALIZED_TIME = "1970-01-01T00:00:00Z"
NORMALIZED_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
VOLATILE = {"response_id", "create_time", "sdk_http_response"}
BACKENDS = pytest.mark.parametrize("vertex", [False, True], ids=["gemini-api", "vertex"])
MODES = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


def comparable(answer):
    """An answer (or a list of them) without what the server makes fresh on every call."""
    if isinstance(answer, list):
        return [comparable(item) for item in answer]
    return {"class": type(answer).__name__, **answer.model_dump(mode="json", exclude=VOLATILE)}


def run(coroutine_or_value):
    return asyncio.run(coroutine_or_value) if asyncio.iscoroutine(coroutine_or_value) else coroutine_or_value


def file_for(folder, url_suffix):
    """The one recording in ``folder`` whose request URL ends with ``url_suffix``."""
    found = [path for path in recordings_in(folder) if read_json(path)["request"]["url"].endswith(url_suffix)]
    assert len(found) == 1, found
    return found[0]


def walk_keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_keys(item)


# -- 1. llama-stack's Gemini files replay through the real async SDK call ---------------------


def _llama_stack_gemini_files():
    files = []
    for path in sample_files():
        document = read_json(path)
        if str(document["request"].get("url", "")).startswith("vertexai://"):
            files.append((path, document))
    return files


GEMINI_FILES = _llama_stack_gemini_files()


def test_the_sample_holds_four_gemini_files_two_streamed():
    assert len(GEMINI_FILES) == 4
    assert sorted(d["request"]["endpoint"] for _, d in GEMINI_FILES) == [
        "/generate_content",
        "/generate_content",
        "/generate_content_stream",
        "/generate_content_stream",
    ]


def llama_stack_kwargs(body):
    """The arguments llama-stack's Vertex provider passed to ``client.aio.models.generate_content``."""
    return {
        "model": body["model"],
        "contents": [types.Content(**content) for content in body["contents"]],
        "config": types.GenerateContentConfig(**body["config"]),
    }


async def llama_stack_call(client, endpoint, body):
    kwargs = llama_stack_kwargs(body)
    if endpoint == "/generate_content_stream":
        return [chunk async for chunk in await client.aio.models.generate_content_stream(**kwargs)]
    assert endpoint == "/generate_content"
    return await client.aio.models.generate_content(**kwargs)


def vertex_client(base_url):
    return genai.Client(
        vertexai=True,
        project="llama-stack-project",
        location="us-central1",
        credentials=google.oauth2.credentials.Credentials(token="x"),
        http_options=types.HttpOptions(base_url=base_url),
    )


@pytest.mark.parametrize(("path", "document"), GEMINI_FILES, ids=[p.stem[:12] for p, _ in GEMINI_FILES])
def test_llama_stack_gemini_file_replays_as_typed_answers(workdir, path, document):
    request = document["request"]
    recorded = document["response"]["body"]
    folder = workdir / "recs"
    folder.mkdir()
    shutil.copy(path, folder)
    from api_recorder.integrations.genai import request_body

    # our body for the same arguments is llama-stack's, and so is its hash: the file's own name
    assert request_body(llama_stack_kwargs(request["body"])) == request["body"]
    assert inference_hash("POST", request["url"], request["body"], document["test_id"]) == path.stem
    client = vertex_client("http://127.0.0.1:9")  # a dead port: nothing may be sent
    with (
        network_blocked(),
        api_recorder.recording("replay", folder),
        api_recorder.test_context(document["test_id"]),
    ):
        answer = asyncio.run(llama_stack_call(client, request["endpoint"], request["body"]))
    assert [p.name for p in folder.iterdir()] == [path.name]  # the only file there, found by its hash

    if document["response"]["is_streaming"]:
        assert isinstance(answer, list) and len(answer) == len(recorded) > 1
        replayed, expected = answer, recorded
    else:
        replayed, expected = [answer], [recorded]
    for item, body in zip(replayed, expected, strict=True):
        assert type(item) is types.GenerateContentResponse
        assert item == types.GenerateContentResponse.model_validate(body)
        assert item.response_id == body["response_id"]  # llama-stack's own, as stored
    text = "".join(part["text"] for body in expected for part in body["candidates"][0]["content"]["parts"])
    assert "".join(item.text or "" for item in replayed) == text and len(text) > 20


def test_llama_stack_file_is_not_found_under_another_test_id(workdir):
    path, document = next((p, d) for p, d in GEMINI_FILES if not d["response"]["is_streaming"])
    shutil.copy(path, workdir)
    client = vertex_client("http://127.0.0.1:9")
    with (
        network_blocked(),
        api_recorder.recording("replay", workdir),
        api_recorder.test_context(document["test_id"] + "-other"),
        pytest.raises(RecordingNotFoundError),
    ):
        asyncio.run(llama_stack_call(client, "/generate_content", document["request"]["body"]))


# -- 2. the reverse: what we record for llama-stack's call is llama-stack's file -------------


@pytest.mark.parametrize(("path", "document"), GEMINI_FILES, ids=[p.stem[:12] for p, _ in GEMINI_FILES])
def test_recording_llama_stack_call_writes_llama_stack_file(workdir, fake_gemini, path, document):
    request = document["request"]
    client = fake_gemini.client(vertexai=True)
    with api_recorder.recording("record", workdir / "recs"), api_recorder.test_context(document["test_id"]):
        live = asyncio.run(llama_stack_call(client, request["endpoint"], request["body"]))
    (written,) = recordings_in(workdir)
    assert written.name == path.name  # same hash as llama-stack gave its file

    ours = read_json(written)
    assert ours["test_id"] == document["test_id"]
    assert set(ours) >= {"test_id", "request", "response"}
    mine = ours["request"]
    assert {k: mine[k] for k in ("method", "url", "headers", "body", "endpoint", "model")} == {
        "method": "POST",
        "url": request["url"],
        "headers": {},
        "body": request["body"],
        "endpoint": request["endpoint"],
        "model": request["model"],
    }
    assert set(mine["body"]) == {"model", "contents", "config"}
    assert mine["provider_metadata"]["provider"] == "vertexai"
    assert ours["response"]["is_streaming"] is document["response"]["is_streaming"]

    body = ours["response"]["body"]
    assert "__type__" not in set(walk_keys(body)) and "__data__" not in set(walk_keys(body))
    bodies = body if isinstance(body, list) else [body]
    lives = live if isinstance(live, list) else [live]
    assert len(bodies) == len(lives)
    for stored, answer in zip(bodies, lives, strict=True):
        # llama-stack's replay: GenerateContentResponse.model_validate(body), strictly
        strict = type("Strict", (types.GenerateContentResponse,), {"model_config": {"extra": "forbid"}})
        strict.model_validate(stored)
        assert comparable(types.GenerateContentResponse.model_validate(stored)) == comparable(answer)
        assert stored["response_id"] == f"rec-{path.stem[:12]}"
        assert stored["create_time"] == NORMALIZED_TIME
        assert answer.response_id != stored["response_id"]  # the fake's fresh id was replaced


def test_a_json_envelope_would_fail_llama_stack_strict_validation():
    """The check above can fail: an envelope is refused by a strict GenerateContentResponse."""
    strict = type("Strict", (types.GenerateContentResponse,), {"model_config": {"extra": "forbid"}})
    with pytest.raises(Exception, match="__type__"):
        strict.model_validate({"__type__": "google.genai.types.GenerateContentResponse", "__data__": {}})


# -- 3. record, stop the server, replay: the same objects --------------------------------------

WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="The weather in a city.",
            parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
        )
    ]
)


def scenario_arguments():
    """Every covered call, by name: (method, keyword arguments)."""
    conversation = [
        types.Content(role="user", parts=[types.Part(text="Plan a trip to Rome.")]),
        types.Content(role="model", parts=[types.Part(text="Three days, starting at the Colosseum.")]),
        types.Content(role="user", parts=[types.Part(text="And the fourth day?")]),
    ]
    return {
        "text": ("generate_content", {"model": MODEL, "contents": "hello there"}),
        "conversation": ("generate_content", {"model": MODEL, "contents": conversation}),
        "system": (
            "generate_content",
            {
                "model": MODEL,
                "contents": "Name a capital.",
                "config": types.GenerateContentConfig(system_instruction="Answer in one word.", temperature=0.0),
            },
        ),
        "tool": (
            "generate_content",
            {
                "model": MODEL,
                "contents": "Weather in Paris?",
                "config": types.GenerateContentConfig(tools=[WEATHER_TOOL]),
            },
        ),
        "stream": (
            "generate_content_stream",
            {
                "model": MODEL,
                "contents": [types.Content(role="user", parts=[types.Part(text="stream me several words please")])],
                "config": types.GenerateContentConfig(system_instruction="be brief"),
            },
        ),
        "embed_one": ("embed_content", {"model": EMBEDDING_MODEL, "contents": "a single sentence"}),
        "embed_many": ("embed_content", {"model": EMBEDDING_MODEL, "contents": ["first", "second", "third"]}),
        "count": ("count_tokens", {"model": MODEL, "contents": "count these four words"}),
    }


def make_calls(client, is_async):
    """Every covered call through ``client`` (or ``client.aio``); streams read to a list."""
    calls = scenario_arguments()
    if not is_async:
        answers = {}
        for name, (method, kwargs) in calls.items():
            answer = getattr(client.models, method)(**kwargs)
            answers[name] = list(answer) if method.endswith("_stream") else answer
        return answers

    async def all_calls():
        answers = {}
        for name, (method, kwargs) in calls.items():
            answer = await getattr(client.aio.models, method)(**kwargs)
            answers[name] = [chunk async for chunk in answer] if method.endswith("_stream") else answer
        return answers

    return asyncio.run(all_calls())


@BACKENDS
@MODES
def test_record_then_replay_gives_the_same_objects(workdir, vertex, is_async):
    fake = FakeGemini().start()
    try:
        client = fake.client(vertexai=vertex)
        with api_recorder.recording("record", workdir / "recs"):
            live = make_calls(client, is_async)
        sent = fake.request_count
    finally:
        fake.stop()
    assert sent == len(live)
    assert len(recordings_in(workdir / "recs")) == len(live)

    with api_recorder.recording("replay", workdir / "recs"):
        replayed = make_calls(client, is_async)
    assert fake.request_count == sent

    for name in live:
        assert comparable(replayed[name]) == comparable(live[name]), name

    # types and contents that make the comparison mean something
    for name in ("text", "conversation", "system", "tool"):
        assert type(replayed[name]) is types.GenerateContentResponse
    assert replayed["text"].text and "hello there" in replayed["text"].text
    (call,) = replayed["tool"].function_calls
    assert call.name == "get_weather" and call.args == live["tool"].function_calls[0].args and call.args
    chunks = replayed["stream"]
    assert len(chunks) == len(live["stream"]) > 2
    assert all(type(chunk) is types.GenerateContentResponse for chunk in chunks)
    assert "".join(c.text for c in chunks) == "".join(c.text for c in live["stream"])
    assert type(replayed["embed_one"]) is types.EmbedContentResponse
    assert [e.values for e in replayed["embed_one"].embeddings] == [e.values for e in live["embed_one"].embeddings]
    assert len(replayed["embed_many"].embeddings) == 3
    assert [e.values for e in replayed["embed_many"].embeddings] == [e.values for e in live["embed_many"].embeddings]
    assert replayed["embed_many"].embeddings[0].values != replayed["embed_many"].embeddings[1].values
    assert type(replayed["count"]) is types.CountTokensResponse
    assert replayed["count"].total_tokens == live["count"].total_tokens == 4

    # ids and times: normalized in the file and in replay, fresh live
    generated = [replayed[n] for n in ("text", "conversation", "system", "tool")] + chunks
    for answer in generated:
        assert answer.response_id.startswith("rec-")
        assert answer.create_time == (EPOCH if vertex else None)
        headers = {name.lower(): value for name, value in answer.sdk_http_response.headers.items()}
        assert headers["date"] == NORMALIZED_DATE  # httpx sends "date", aiohttp "Date": kept as sent
        assert "x-goog-request-id" not in headers
    assert len({c.response_id for c in chunks}) == 1
    assert not live["text"].response_id.startswith("rec-")
    if vertex:
        assert live["text"].create_time is not None
    stored = read_json(file_for(workdir / "recs", "/generate_content_stream"))
    assert [c["response_id"] for c in stored["response"]["body"]] == [c.response_id for c in chunks]
    assert all(("create_time" in c) is vertex for c in stored["response"]["body"])
    if vertex:
        assert {c["create_time"] for c in stored["response"]["body"]} == {NORMALIZED_TIME}


def test_gemini_and_vertex_record_under_their_own_url(workdir, fake_gemini):
    for vertex, folder in ((False, "gemini"), (True, "vertex")):
        client = fake_gemini.client(vertexai=vertex)  # kept: a dropped Client closes its connection pool
        with api_recorder.recording("record", workdir / folder):
            client.models.count_tokens(model=MODEL, contents="two words")
        (path,) = recordings_in(workdir / folder)
        request = read_json(path)["request"]
        scheme = "vertexai" if vertex else "gemini"
        assert request["url"] == f"{scheme}:///count_tokens"
        assert request["provider_metadata"]["provider"] == scheme


# -- 4. errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [(429, errors.ClientError), (400, errors.ClientError), (500, errors.ServerError), (503, errors.ServerError)],
)
@BACKENDS
def test_http_errors_replay_as_the_same_exception(workdir, vertex, code, cls):
    fake = FakeGemini().start()
    try:
        client = fake.client(vertexai=vertex)
        fake.fail_next(code)
        with api_recorder.recording("record", workdir), pytest.raises(errors.APIError) as live:
            client.models.generate_content(model=MODEL, contents="this one fails")
    finally:
        fake.stop()
    assert type(live.value) is cls and live.value.code == code
    sent = fake.request_count

    with api_recorder.recording("replay", workdir):
        with pytest.raises(errors.APIError) as replayed:
            client.models.generate_content(model=MODEL, contents="this one fails")
        with pytest.raises(errors.APIError) as replayed_async:
            asyncio.run(client.aio.models.generate_content(model=MODEL, contents="this one fails"))
    assert fake.request_count == sent
    for error in (replayed.value, replayed_async.value):
        assert type(error) is cls
        assert (error.code, error.status, error.message) == (live.value.code, live.value.status, live.value.message)
        assert error.details == live.value.details
        assert "injected by FakeGemini" in error.message


@MODES
@BACKENDS
def test_an_error_mid_stream_replays_after_the_same_chunks(workdir, vertex, is_async):
    prompt = "a stream that breaks after two of its many words"

    def read(client):
        got = []
        if not is_async:
            with pytest.raises(errors.APIError) as caught:
                for chunk in client.models.generate_content_stream(model=MODEL, contents=prompt):
                    got.append(chunk)
            return got, caught.value

        async def read_async():
            with pytest.raises(errors.APIError) as caught:
                async for chunk in await client.aio.models.generate_content_stream(model=MODEL, contents=prompt):
                    got.append(chunk)
            return got, caught.value

        return asyncio.run(read_async())

    fake = FakeGemini().start()
    try:
        client = fake.client(vertexai=vertex)
        fake.fail_mid_stream(2)
        with api_recorder.recording("record", workdir):
            live_chunks, live_error = read(client)
    finally:
        fake.stop()
    assert len(live_chunks) == 2 and type(live_error) is errors.ServerError
    with api_recorder.recording("replay", workdir):
        chunks, error = read(client)
    assert comparable(chunks) == comparable(live_chunks)
    assert all(type(chunk) is types.GenerateContentResponse for chunk in chunks)
    assert type(error) is errors.ServerError
    assert (error.code, error.status, error.message) == (500, live_error.status, live_error.message)


# -- 5. secrets ------------------------------------------------------------------------------

PROMPT_KEY = "AIzaSy" + "Q7vX2kLm9pR4tW8zB1nC5dF3gH6jK0s_-"
assert len(PROMPT_KEY) == 39


@pytest.fixture
def leaky_headers(monkeypatch):
    """The fake answers with headers a recording must never keep (credentials, cookies)."""
    original = gemini_app.fresh_headers

    def fresh_headers(started):
        return {
            **original(started),
            "set-cookie": "NID=cookie-secret-123; Path=/; HttpOnly",
            "authorization": f"Bearer {FakeGemini.access_token}",
            "x-goog-api-key": FakeGemini.api_key,
            "x-custom-kept": "kept-value",
        }

    monkeypatch.setattr(gemini_app, "fresh_headers", fresh_headers)


@BACKENDS
def test_no_credential_reaches_a_file(workdir, fake_gemini, leaky_headers, vertex):
    client = fake_gemini.client(vertexai=vertex)
    assert FakeGemini.api_key.startswith("AIza")
    prompt = f"my key is {PROMPT_KEY} keep it"
    with api_recorder.recording("record", workdir):
        live = client.models.generate_content(model=MODEL, contents=prompt)
        list(client.models.generate_content_stream(model=MODEL, contents="two words"))
        client.models.embed_content(model=EMBEDDING_MODEL, contents="hello")
        client.models.count_tokens(model=MODEL, contents="hello")
    assert live.sdk_http_response.headers["set-cookie"].startswith("NID=")  # the leak was there live
    assert PROMPT_KEY in live.text  # and the fake echoed the key back
    sent = fake_gemini.requests
    assert any(r.headers.get("authorization") == f"Bearer {FakeGemini.access_token}" for r in sent) is vertex
    assert any(r.headers.get("x-goog-api-key") == FakeGemini.api_key for r in sent) is not vertex

    files = recordings_in(workdir)
    assert len(files) == 4
    for path in files:
        data = path.read_bytes()
        for secret in (FakeGemini.api_key, FakeGemini.access_token, PROMPT_KEY, "cookie-secret-123", "AIzaSy"):
            assert secret.encode() not in data, (path.name, secret)
        document = json.loads(data)
        bodies = document["response"]["body"]
        for body in bodies if isinstance(bodies, list) else [bodies]:
            headers = {name.lower(): value for name, value in body["sdk_http_response"]["headers"].items()}
            lowered = set(headers)
            assert not lowered & {"authorization", "x-goog-api-key", "set-cookie", "x-goog-request-id"}
            assert headers["date"] == NORMALIZED_DATE
            assert headers["x-custom-kept"] == "kept-value"
    scrubbed = read_json(file_for(workdir, "/generate_content"))
    assert scrubbed["request"]["body"]["contents"] == "my key is <redacted> keep it"

    # the scrubbed request hashes alike: replay with the key in the prompt finds the file
    with api_recorder.recording("replay", workdir):
        replayed = client.models.generate_content(model=MODEL, contents=prompt)
    assert "<redacted>" in replayed.text and PROMPT_KEY not in replayed.text


# -- 6. replay misses and calls not covered ----------------------------------------------------


@BACKENDS
def test_a_replay_miss_raises_recording_not_found(workdir, fake_gemini, vertex):
    client = fake_gemini.client(vertexai=vertex)
    with api_recorder.recording("replay", workdir):
        with pytest.raises(RecordingNotFoundError, match="generate_content"):
            client.models.generate_content(model=MODEL, contents="never recorded")
        with pytest.raises(RecordingNotFoundError, match="generate_content_stream"):
            list(client.models.generate_content_stream(model=MODEL, contents="never recorded"))
        with pytest.raises(RecordingNotFoundError, match="embed_content"):
            asyncio.run(client.aio.models.embed_content(model=EMBEDDING_MODEL, contents="never recorded"))
        with pytest.raises(RecordingNotFoundError, match="count_tokens"):
            asyncio.run(client.aio.models.count_tokens(model=MODEL, contents="never recorded"))
        with pytest.raises(RecordingNotFoundError):

            async def stream():
                return [c async for c in await client.aio.models.generate_content_stream(model=MODEL, contents="no")]

            asyncio.run(stream())
    assert fake_gemini.request_count == 0
    assert recordings_in(workdir) == []


UNCOVERED = {
    "models.list": lambda client: list(client.models.list()),
    "models.get": lambda client: client.models.get(model=MODEL),
    "caches.list": lambda client: list(client.caches.list()),
    "aio.models.list": lambda client: asyncio.run(client.aio.models.list()),
    "files.list": lambda client: list(client.files.list()),  # Gemini API only
}


@pytest.mark.parametrize("name", list(UNCOVERED))
@BACKENDS
def test_an_uncovered_call_in_replay_is_refused_and_sends_nothing(workdir, fake_gemini, vertex, name):
    if name == "files.list" and vertex:
        pytest.skip("the SDK has no files API on Vertex")
    client = fake_gemini.client(vertexai=vertex)
    with api_recorder.recording("replay", workdir), pytest.raises(UnsupportedCallError, match="not recorded"):
        UNCOVERED[name](client)
    assert fake_gemini.request_count == 0


def test_an_uncovered_call_outside_replay_reaches_the_server(workdir, fake_gemini):
    """The refusal above is replay's, not a broken client: in record mode the request is sent."""
    client = fake_gemini.client()
    with api_recorder.recording("record", workdir), pytest.raises(errors.APIError):
        client.models.get(model=MODEL)  # the fake does not serve it: 404
    assert fake_gemini.request_count == 1


# -- 7. a stream left early is recorded whole ----------------------------------------------------

LONG_PROMPT = "please stream a long answer of many words"


def test_a_sync_stream_left_early_is_recorded_whole(workdir, fake_gemini):
    client = fake_gemini.client(vertexai=True)
    with api_recorder.recording("live"):
        whole = list(client.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT))
    assert len(whole) > 3
    with api_recorder.recording("record", workdir):
        for chunk in client.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT):
            first = chunk
            break
    (path,) = recordings_in(workdir)
    stored = read_json(path)["response"]["body"]
    assert len(stored) == len(whole)
    assert first.text == whole[0].text
    with api_recorder.recording("replay", workdir):
        replayed = list(client.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT))
    assert comparable(replayed) == comparable(whole)


def test_an_async_stream_closed_early_is_recorded_whole(workdir, fake_gemini):
    client = fake_gemini.client(vertexai=True)

    async def first_then_close():
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT)
        async for chunk in stream:
            first = chunk
            break
        await stream.aclose()
        return first

    with api_recorder.recording("live"):
        whole = asyncio.run(_collect(client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT)))
    with api_recorder.recording("record", workdir):
        asyncio.run(first_then_close())
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) == len(whole) > 3
    with api_recorder.recording("replay", workdir):
        replayed = asyncio.run(_collect(client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT)))
    assert comparable(replayed) == comparable(whole)


async def _collect(awaitable_stream):
    return [chunk async for chunk in await awaitable_stream]


def test_an_async_stream_left_with_break_and_closed_is_recorded_whole(workdir, fake_gemini):
    client = fake_gemini.client(vertexai=True)

    async def first_only():
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT)
        chunk = await stream.__anext__()  # the first chunk only
        await stream.aclose()  # closing reads the rest: the recording is the whole stream
        return chunk

    with api_recorder.recording("record", workdir):
        asyncio.run(first_only())
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) > 3


def test_an_async_stream_dropped_unclosed_is_never_recorded_in_part(workdir, fake_gemini):
    """Dropped without closing, the stream is finalized by the event loop, which may close the SDK's
    own generators first (aiohttp's transport): then nothing is recorded, never half a stream."""
    client = fake_gemini.client(vertexai=True)

    async def first_only():
        async for chunk in await client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT):
            return chunk

    with api_recorder.recording("record", workdir / "dropped"):
        asyncio.run(first_only())
    with api_recorder.recording("record", workdir / "whole"):
        whole = asyncio.run(_collect(client.aio.models.generate_content_stream(model=MODEL, contents=LONG_PROMPT)))
    dropped = recordings_in(workdir / "dropped") if (workdir / "dropped").exists() else []
    assert len(dropped) <= 1
    for path in dropped:
        assert len(read_json(path)["response"]["body"]) == len(whole) > 3


# -- 8. the test id header ---------------------------------------------------------------------


@BACKENDS
def test_requests_carry_the_test_id_header(workdir, fake_gemini, vertex):
    client = fake_gemini.client(vertexai=vertex)
    header = TEST_ID_HEADER.lower()
    with api_recorder.recording("record", workdir):
        client.models.count_tokens(model=MODEL, contents="no test yet")
        assert header not in fake_gemini.last_request.headers
        with api_recorder.test_context("t::x"):
            client.models.generate_content(model=MODEL, contents="hello")
            assert fake_gemini.last_request.headers[header] == "t::x"
            list(client.models.generate_content_stream(model=MODEL, contents="hello"))
            assert fake_gemini.last_request.headers[header] == "t::x"
            asyncio.run(client.aio.models.embed_content(model=EMBEDDING_MODEL, contents="hello"))
            assert fake_gemini.last_request.headers[header] == "t::x"
    assert fake_gemini.request_count == 4
    assert {read_json(p)["test_id"] for p in recordings_in(workdir)} == {None, "t::x"}


# -- 9. auto-activation in a child process -------------------------------------------------------

CHILD = """
import asyncio, json, os, sys
{prelude}
from google import genai
from google.genai import types
assert "api_recorder" in sys.modules, "not activated"
client = genai.Client(api_key=os.environ["FAKE_KEY"], http_options=types.HttpOptions(base_url=os.environ["FAKE_URL"]))
answer = client.models.generate_content(model="gemini-2.0-flash", contents="hello from a child")
chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="stream from a child"))
async def count():
    return await client.aio.models.count_tokens(model="gemini-2.0-flash", contents="three more words")
tokens = asyncio.run(count())
print(json.dumps([type(answer).__name__, answer.text, answer.response_id.startswith("rec-"),
                  [c.text for c in chunks], tokens.total_tokens]))
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
    fake = FakeGemini().start()
    env = {"FAKE_URL": fake.base_url, "FAKE_KEY": FakeGemini.api_key, "LLAMA_STACK_TEST_RECORDING_DIR": "recs"}
    try:
        live = run_child(tmp_path, prelude, LLAMA_STACK_TEST_INFERENCE_MODE="record", **env)
    finally:
        fake.stop()
    assert live.returncode == 0, live.stderr
    assert fake.request_count == 3
    assert len(recordings_in(tmp_path / "recs")) == 3
    replayed = run_child(tmp_path, prelude, LLAMA_STACK_TEST_INFERENCE_MODE="replay", **env)
    assert replayed.returncode == 0, replayed.stderr
    name, text, normalized, chunks, tokens = json.loads(replayed.stdout)
    assert (name, normalized, tokens) == ("GenerateContentResponse", True, 3)
    assert "hello from a child" in text and len(chunks) > 2
    _, live_text, live_normalized, live_chunks, live_tokens = json.loads(live.stdout)
    assert (live_text, live_chunks, live_tokens) == (text, chunks, tokens)
    assert live_normalized is False  # the fake's id live; replay gives the normalized one
    assert fake.request_count == 3


# -- automatic function calling (Python functions as tools) ----------------------------------------


def get_temperature(city: str) -> str:
    """The temperature in a city."""
    TOOL_RUNS.append(city)
    return "21 C"


TOOL_RUNS: list[str] = []


def test_automatic_function_calling_is_one_recorded_answer(workdir, fake_gemini):
    client = fake_gemini.client()
    config = types.GenerateContentConfig(tools=[get_temperature])
    TOOL_RUNS.clear()
    with api_recorder.recording("record", workdir):
        live = client.models.generate_content(model=MODEL, contents="Temperature in Oslo?", config=config)
    assert TOOL_RUNS == ["Temperature in Oslo?"] and fake_gemini.request_count == 2
    (path,) = recordings_in(workdir)
    assert read_json(path)["request"]["body"]["config"]["tools"] == [f"<function {__name__}.get_temperature>"]
    with api_recorder.recording("replay", workdir):
        replayed = client.models.generate_content(model=MODEL, contents="Temperature in Oslo?", config=config)
    assert TOOL_RUNS == ["Temperature in Oslo?"] and fake_gemini.request_count == 2  # not run again
    assert comparable(replayed) == comparable(live) and "21 C" in replayed.text
