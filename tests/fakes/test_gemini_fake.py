"""Prove `FakeGemini` speaks the Google GenAI wire format: the real `google-genai` SDK against it, over HTTP.

Every test runs the real `genai.Client` on both backends it supports (the
Gemini Developer API and Vertex AI), sync and async, with no network access
beyond 127.0.0.1.  No library code is involved here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import google.auth
import httpx
import pytest
from google.genai import errors, types
from google.oauth2.credentials import Credentials
from pydantic import BaseModel

from .gemini_app import FakeGemini, json_schema

pytestmark = [
    pytest.mark.filterwarnings("error"),
    # With aiohttp installed, google-genai's async client subclasses aiohttp.ClientSession and
    # TCPConnector, which aiohttp discourages with a DeprecationWarning: the SDK's, not the fake's.
    pytest.mark.filterwarnings("ignore:Inheritance class Aiohttp:DeprecationWarning"),
]

MODEL = "gemini-2.0-flash"
BACKENDS = ("gemini", "vertex")

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city.",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "days": types.Schema(type=types.Type.INTEGER),
            "unit": types.Schema(type=types.Type.STRING, enum=["celsius", "fahrenheit"]),
        },
        required=["city"],
    ),
)
WEATHER_TOOLS = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])


class Recipe(BaseModel):
    name: str
    minutes: int
    vegan: bool


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeGemini) -> None:
    fake.release_streams()
    fake.reset()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def vertexai(backend: str) -> bool:
    return backend == "vertex"


@pytest.fixture(scope="module")
def client(fake: FakeGemini, vertexai: bool) -> Iterator[Any]:
    """One real client per backend for the module (building one loads CA certificates: ~50 ms)."""
    with fake.client(vertexai=vertexai) as genai_client:
        yield genai_client


def generate_path(backend: str, method: str = "generateContent", model: str = MODEL) -> str:
    if backend == "vertex":
        return f"/v1beta1/projects/test-project/locations/us-central1/publishers/google/models/{model}:{method}"
    return f"/v1/models/{model}:{method}"


def run_async(fake: FakeGemini, vertexai: bool, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    """`scenario(client.aio)` in a fresh event loop, on an async client that is closed in that loop.

    The SDK's async httpx2 client keeps one connection pool per event loop;
    closing it inside the loop keeps sockets from leaking into later tests.
    """

    async def main() -> Any:
        async with fake.async_client(vertexai=vertexai) as aio:
            return await scenario(aio)

    return asyncio.run(main())


# ---------------------------------------------------------------------------
# generateContent
# ---------------------------------------------------------------------------


def test_generate_content_from_a_plain_string(fake: FakeGemini, client: Any, backend: str) -> None:
    response = client.models.generate_content(model=MODEL, contents="Hello there")

    assert response.text.startswith("echo: Hello there ")
    assert len(response.text.split()) == 8
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    assert response.model_version == MODEL
    assert response.response_id
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (2, 8, 10)
    assert (response.create_time is not None) == (backend == "vertex")
    request = fake.last_request
    assert request.path == generate_path(backend)
    assert request.body == {"contents": [{"parts": [{"text": "Hello there"}], "role": "user"}]}


def test_generate_content_from_a_list_of_contents_answers_the_last_user_turn(
    fake: FakeGemini, client: Any, backend: str
) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part(text="My name is Ada.")]),
        types.Content(role="model", parts=[types.Part(text="Hello Ada.")]),
        types.Content(role="user", parts=[types.Part(text="What is my name?")]),
    ]

    response = client.models.generate_content(model=MODEL, contents=contents)

    assert response.text.startswith("echo: What is my name? ")
    assert [c["role"] for c in fake.last_request.body["contents"]] == ["user", "model", "user"]
    assert response.usage_metadata.prompt_token_count == 4 + 2 + 4


def test_system_instruction_and_generation_config_reach_the_wire(fake: FakeGemini, client: Any) -> None:
    config = types.GenerateContentConfig(system_instruction="Answer briefly.", temperature=0.2, max_output_tokens=3)

    response = client.models.generate_content(model=MODEL, contents="Tell me a long story", config=config)

    body = fake.last_request.body
    assert body["systemInstruction"] == {"parts": [{"text": "Answer briefly."}], "role": "user"}
    assert body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 3}
    assert response.text == "echo: Tell me"
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.prompt_token_count == 5 + 2  # the system instruction counts too


def test_two_answers_to_one_request_differ_in_ids_only(fake: FakeGemini, client: Any, backend: str) -> None:
    first = client.models.generate_content(model=MODEL, contents="Same question")
    second = client.models.generate_content(model=MODEL, contents="Same question")

    assert first.text == second.text
    assert first.usage_metadata == second.usage_metadata
    assert first.response_id != second.response_id
    first_headers, second_headers = first.sdk_http_response.headers, second.sdk_http_response.headers
    assert first_headers["x-goog-request-id"] != second_headers["x-goog-request-id"]
    if backend == "vertex":
        assert first.create_time is not None and second.create_time is not None
        assert second.create_time >= first.create_time


def test_backends_and_sync_async_answer_the_same_words(fake: FakeGemini) -> None:
    async def ask(aio: Any) -> str:
        return (await aio.models.generate_content(model=MODEL, contents="Same words?")).text

    texts = set()
    for vertexai in (False, True):
        with fake.client(vertexai=vertexai) as genai_client:
            texts.add(genai_client.models.generate_content(model=MODEL, contents="Same words?").text)
        texts.add(run_async(fake, vertexai, ask))
    assert len(texts) == 1


def test_tools_answer_a_function_call_sampled_from_the_declaration(fake: FakeGemini, client: Any) -> None:
    response = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=WEATHER_TOOLS)

    [call] = response.function_calls
    assert call.name == "get_weather"
    assert call.args == {"city": "Weather in Paris?", "days": 42, "unit": "celsius"}
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    declaration = fake.last_request.body["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"]["type"] == "OBJECT"


def test_a_function_response_is_answered_with_text_quoting_it(client: Any) -> None:
    question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
    first = client.models.generate_content(model=MODEL, contents=[question], config=WEATHER_TOOLS)
    call = first.candidates[0].content
    result = types.Part.from_function_response(name="get_weather", response={"forecast": "sunny"})
    contents = [question, call, types.Content(role="user", parts=[result])]

    second = client.models.generate_content(model=MODEL, contents=contents, config=WEATHER_TOOLS)

    assert second.function_calls is None
    assert second.text.startswith('Based on the function result: get_weather: {"forecast": "sunny"}')


def test_tool_config_mode_none_answers_text(client: Any) -> None:
    config = WEATHER_TOOLS.model_copy(
        update={"tool_config": types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE"))}
    )

    response = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)

    assert response.function_calls is None
    assert response.text.startswith("echo: Weather in Paris?")


def test_automatic_function_calling_runs_a_python_tool_and_answers_its_result(fake: FakeGemini, client: Any) -> None:
    seen: list[tuple[str, int]] = []

    def get_weather(city: str, days: int) -> str:
        """The weather in a city."""
        seen.append((city, days))
        return "sunny"

    response = client.models.generate_content(
        model=MODEL, contents="Weather in Rome?", config=types.GenerateContentConfig(tools=[get_weather])
    )

    assert seen == [("Weather in Rome?", 42)]
    assert response.text.startswith('Based on the function result: get_weather: {"result": "sunny"}')
    assert fake.request_count == 2


def test_structured_output_fits_the_response_schema(client: Any) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Recipe)

    response = client.models.generate_content(model=MODEL, contents="A recipe", config=config)

    assert response.parsed == Recipe(name="name-value", minutes=42, vegan=True)


def test_gemini_schemas_become_json_schemas() -> None:
    schema = {"type": "OBJECT", "properties": {"tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "2"}}}

    assert json_schema(schema) == {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
    }


# ---------------------------------------------------------------------------
# streamGenerateContent
# ---------------------------------------------------------------------------


def test_stream_chunks_join_to_the_non_streamed_text(fake: FakeGemini, client: Any, backend: str) -> None:
    whole = client.models.generate_content(model=MODEL, contents="Stream me")

    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Stream me"))

    assert "".join(chunk.text for chunk in chunks) == whole.text
    assert len(chunks) == len(whole.text.split())
    assert len({chunk.response_id for chunk in chunks}) == 1
    assert chunks[0].response_id != whole.response_id
    assert [chunk.candidates[0].finish_reason for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == whole.usage_metadata.total_token_count
    assert fake.last_request.path == generate_path(backend, "streamGenerateContent")
    assert fake.last_request.query == {"alt": "sse"}


def test_stream_raw_frames_are_sse_data_lines(fake: FakeGemini) -> None:
    url = fake.base_url + generate_path("gemini", "streamGenerateContent") + "?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "Raw"}]}]}

    response = httpx.post(url, json=body, headers={"x-goog-api-key": fake.api_key})

    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert frames and all(frame.startswith("data: {") for frame in frames)


def test_stream_a_function_call_comes_in_one_chunk(client: Any) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Weather?", config=WEATHER_TOOLS))

    assert len(chunks) == 1
    assert chunks[0].function_calls[0].args["city"] == "Weather?"


def test_async_generate_stream_embed_and_count(fake: FakeGemini, client: Any, vertexai: bool) -> None:
    whole = client.models.generate_content(model=MODEL, contents="Async please")
    sync_embedding = client.models.embed_content(model="text-embedding-004", contents="Async please")

    async def scenario(aio: Any) -> tuple[Any, str, Any, Any]:
        models = aio.models
        answer = await models.generate_content(model=MODEL, contents="Async please")
        pieces = [
            chunk.text async for chunk in await models.generate_content_stream(model=MODEL, contents="Async please")
        ]
        embedding = await models.embed_content(model="text-embedding-004", contents="Async please")
        count = await models.count_tokens(model=MODEL, contents="Async please")
        return answer, "".join(pieces), embedding, count

    answer, streamed, embedding, count = run_async(fake, vertexai, scenario)

    assert answer.text == streamed == whole.text
    assert answer.response_id != whole.response_id
    assert embedding.embeddings[0].values == sync_embedding.embeddings[0].values
    assert count.total_tokens == 2
    assert fake.request_count == 6


# ---------------------------------------------------------------------------
# embeddings and countTokens
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "gemini_method", "vertex_method"),
    [
        ("text-embedding-004", "batchEmbedContents", "predict"),
        ("gemini-embedding-001", "batchEmbedContents", "embedContent"),
    ],
)
def test_embed_one_content(
    fake: FakeGemini, client: Any, backend: str, model: str, gemini_method: str, vertex_method: str
) -> None:
    response = client.models.embed_content(model=model, contents="The quick brown fox")

    [embedding] = response.embeddings
    assert len(embedding.values) == 8
    assert abs(sum(v * v for v in embedding.values) - 1.0) < 1e-6
    method = vertex_method if backend == "vertex" else gemini_method
    assert fake.last_request.path == generate_path(backend, method, model)
    again = client.models.embed_content(model=model, contents="The quick brown fox")
    assert again.embeddings[0].values == embedding.values


@pytest.mark.parametrize("model", ["text-embedding-004", "gemini-embedding-001"])
def test_embed_several_contents_with_dimensions(fake: FakeGemini, client: Any, backend: str, model: str) -> None:
    config = types.EmbedContentConfig(output_dimensionality=4)

    response = client.models.embed_content(model=model, contents=["first text", "second", "first text"], config=config)

    values = [embedding.values for embedding in response.embeddings]
    assert [len(v) for v in values] == [4, 4, 4]
    assert values[0] == values[2] != values[1]
    vertex_method = "predict" if model.startswith("text-") else "batchEmbedContents"
    expected = vertex_method if backend == "vertex" else "batchEmbedContents"
    assert fake.last_request.path == generate_path(backend, expected, model)


def test_embeddings_are_the_same_on_both_backends(fake: FakeGemini) -> None:
    vectors = []
    for vertexai in (False, True):
        with fake.client(vertexai=vertexai) as genai_client:
            response = genai_client.models.embed_content(model="text-embedding-004", contents=["a", "b"])
            vectors.append([embedding.values for embedding in response.embeddings])
    assert vectors[0] == vectors[1]


def test_vertex_predict_embeddings_carry_statistics_and_metadata(fake: FakeGemini) -> None:
    with fake.client(vertexai=True) as genai_client:
        response = genai_client.models.embed_content(model="text-embedding-004", contents=["one two", "three"])

    assert [e.statistics.token_count for e in response.embeddings] == [2, 1]
    assert response.metadata.billable_character_count == len("one two") + len("three")


def test_count_tokens_matches_the_prompt_usage_of_an_answer(fake: FakeGemini, client: Any, backend: str) -> None:
    counted = client.models.count_tokens(model=MODEL, contents="one two three four")
    answer = client.models.generate_content(model=MODEL, contents="one two three four")

    assert counted.total_tokens == answer.usage_metadata.prompt_token_count == 4
    assert fake.requests[0].path == generate_path(backend, "countTokens")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "status_name"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (403, errors.ClientError, "PERMISSION_DENIED"),
        (404, errors.ClientError, "NOT_FOUND"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_injected_errors_raise_the_sdk_exception(
    fake: FakeGemini, client: Any, status: int, exception: type, status_name: str
) -> None:
    fake.fail_next(status, message="Injected.")

    with pytest.raises(exception) as caught:
        client.models.generate_content(model=MODEL, contents="Hi")

    assert (caught.value.code, caught.value.status) == (status, status_name)
    assert caught.value.message == "Injected. (injected by FakeGemini)"


def test_fail_next_honors_path_substring_and_count(fake: FakeGemini, client: Any) -> None:
    fake.fail_next(503, count=2, path=":streamGenerateContent")

    assert client.models.generate_content(model=MODEL, contents="Hi").text
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            list(client.models.generate_content_stream(model=MODEL, contents="Hi"))
    assert list(client.models.generate_content_stream(model=MODEL, contents="Hi"))


def test_async_client_sees_injected_errors(fake: FakeGemini, vertexai: bool) -> None:
    fake.fail_next(429, path=":countTokens")

    async def scenario(aio: Any) -> None:
        await aio.models.count_tokens(model=MODEL, contents="Hi")

    with pytest.raises(errors.ClientError) as caught:
        run_async(fake, vertexai, scenario)
    assert caught.value.status == "RESOURCE_EXHAUSTED"


def test_mid_stream_error_raises_after_the_first_chunks(fake: FakeGemini, client: Any) -> None:
    fake.fail_mid_stream(2)
    received: list[str] = []

    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="Break me"):
            received.append(chunk.text)

    assert received == ["echo:", " Break"]
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")


def test_mid_stream_error_raises_in_async_streams(fake: FakeGemini, vertexai: bool) -> None:
    fake.fail_mid_stream(1, status=429, message="Slow down.")
    received: list[str] = []

    async def scenario(aio: Any) -> None:
        async for chunk in await aio.models.generate_content_stream(model=MODEL, contents="Break me"):
            received.append(chunk.text)

    with pytest.raises(errors.ClientError) as caught:
        run_async(fake, vertexai, scenario)
    assert received == ["echo:"]
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.message == "Slow down. (injected by FakeGemini)"


def test_mid_stream_failure_ignores_non_streaming_requests(fake: FakeGemini, client: Any) -> None:
    fake.fail_mid_stream(1)

    assert client.models.generate_content(model=MODEL, contents="Hi").text
    with pytest.raises(errors.ServerError):
        list(client.models.generate_content_stream(model=MODEL, contents="Hi"))


def test_held_stream_sends_its_first_chunks_then_goes_on_when_released(fake: FakeGemini, client: Any) -> None:
    whole = client.models.generate_content(model=MODEL, contents="Hold me")
    fake.hold_stream(2)

    stream = client.models.generate_content_stream(model=MODEL, contents="Hold me")
    first = [next(stream).text, next(stream).text]
    fake.release_streams()
    rest = [chunk.text for chunk in stream]

    assert "".join(first + rest) == whole.text


def test_release_before_the_stream_starts_lets_it_run(fake: FakeGemini, client: Any) -> None:
    fake.hold_stream(1)
    fake.release_streams()

    assert len(list(client.models.generate_content_stream(model=MODEL, contents="Go"))) == 8


def test_unknown_method_and_empty_contents_are_google_errors(fake: FakeGemini) -> None:
    headers = {"x-goog-api-key": fake.api_key}
    unknown = httpx.post(fake.base_url + "/v1/models/gemini-2.0-flash:dance", json={}, headers=headers)
    empty = httpx.post(fake.base_url + generate_path("gemini"), json={"contents": []}, headers=headers)

    assert unknown.status_code == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    assert empty.status_code == 400
    assert empty.json()["error"] == {
        "code": 400,
        "message": "* GenerateContentRequest.contents: contents is not specified",
        "status": "INVALID_ARGUMENT",
    }


def test_missing_credentials_are_refused(fake: FakeGemini) -> None:
    body = {"contents": [{"parts": [{"text": "Hi"}]}]}

    no_key = httpx.post(fake.base_url + generate_path("gemini"), json=body)
    no_token = httpx.post(fake.base_url + generate_path("vertex"), json=body)

    assert (no_key.status_code, no_key.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert (no_token.status_code, no_token.json()["error"]["status"]) == (401, "UNAUTHENTICATED")


# ---------------------------------------------------------------------------
# credentials and the network
# ---------------------------------------------------------------------------


def test_gemini_api_key_travels_in_the_x_goog_api_key_header(fake: FakeGemini) -> None:
    with fake.client() as genai_client:
        genai_client.models.generate_content(model=MODEL, contents="Hi")

    request = fake.last_request
    assert request.headers["x-goog-api-key"] == fake.api_key
    assert "key" not in request.query
    assert "authorization" not in request.headers


def test_vertex_sends_the_bearer_token_and_no_api_key(fake: FakeGemini) -> None:
    with fake.client(vertexai=True) as genai_client:
        genai_client.models.generate_content(model=MODEL, contents="Hi")

    request = fake.last_request
    assert request.headers["authorization"] == f"Bearer {fake.access_token}"
    assert "x-goog-api-key" not in request.headers


def test_vertex_express_mode_uses_the_api_key_and_a_project_less_path(fake: FakeGemini) -> None:
    with fake.client(vertexai=True, api_key="express-key") as genai_client:
        response = genai_client.models.generate_content(model=MODEL, contents="Hi")

    request = fake.last_request
    assert request.path == f"/v1beta1/publishers/google/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == "express-key"
    assert response.create_time is not None


@pytest.fixture
def no_outside_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Refuse (and note) any connection or name lookup beyond 127.0.0.1, and any credential refresh."""
    attempts: list[Any] = []
    local = {"127.0.0.1", "localhost", "::1"}
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in local:
            attempts.append(address)
            raise OSError(f"outside connection attempted: {address!r}")
        return real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in local:
            attempts.append(host)
            raise OSError(f"outside lookup attempted: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append("credentials")
        raise AssertionError("credentials were refreshed or looked up")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(Credentials, "refresh", refuse)
    monkeypatch.setattr(google.auth, "default", refuse)
    return attempts


def test_vertex_client_never_leaves_127_0_0_1(fake: FakeGemini, no_outside_network: list[Any]) -> None:
    with fake.client(vertexai=True) as genai_client:
        models = genai_client.models
        models.generate_content(model=MODEL, contents="Hi")
        list(models.generate_content_stream(model=MODEL, contents="Hi"))
        models.embed_content(model="text-embedding-004", contents="Hi")
        models.count_tokens(model=MODEL, contents="Hi")

    async def scenario(aio: Any) -> None:
        await aio.models.generate_content(model=MODEL, contents="Hi")
        async for _ in await aio.models.generate_content_stream(model=MODEL, contents="Hi"):
            pass

    run_async(fake, True, scenario)

    assert no_outside_network == []
    assert fake.request_count == 6
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {fake.access_token}"}


def test_the_guard_does_notice_an_outside_connection(no_outside_network: list[Any]) -> None:
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 443), timeout=0.01)
    assert no_outside_network == ["192.0.2.1"]


# ---------------------------------------------------------------------------
# bookkeeping
# ---------------------------------------------------------------------------


def test_requests_are_recorded_and_reset(fake: FakeGemini, client: Any) -> None:
    client.models.generate_content(model=MODEL, contents="one")
    client.models.count_tokens(model=MODEL, contents="two")

    assert fake.request_count == 2
    assert [r.path.rsplit(":", 1)[1] for r in fake.requests] == ["generateContent", "countTokens"]
    assert fake.last_request.json() == {"contents": [{"parts": [{"text": "two"}], "role": "user"}]}
    assert len(fake.requests_to(":countTokens")) == 1
    fake.fail_next(500)
    fake.reset()
    assert fake.request_count == 0
    assert client.models.generate_content(model=MODEL, contents="ok").text
    with pytest.raises(AssertionError):
        FakeGemini().last_request  # noqa: B018


def test_base_url_is_the_server_root(fake: FakeGemini) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}"
