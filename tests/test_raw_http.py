"""Raw HTTP calls (``enable(http=[...])``): httpx, httpx async and aiohttp, recorded then replayed
offline, plus llama-stack's own raw HTTP files replayed through a real httpx client."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

import api_recorder
from api_recorder.errors import RecordingNotFoundError
from api_recorder.hashing import http_hash
from api_recorder.network import network_blocked
from api_recorder.recorder import RECORDER
from fakes.http_app import FakeHttpApi
from helpers import SAMPLE, read_json, recordings_in

httpx = pytest.importorskip("httpx")
aiohttp = pytest.importorskip("aiohttp")

TEST_ID = "tests/area/test_raw.py::test_call"
SECRET = "sk-live-0123456789abcdefSECRETVALUE"
QUERY_SECRET = "AIzaQUERYSECRET0123456789abcdef"
KINDS = ["httpx", "httpx-async", "aiohttp"]
SSE_LINES = 4 * 3 + 2  # four events (event, data, blank), then "data: [DONE]" and its blank line


@pytest.fixture(autouse=True)
def no_prefixes(monkeypatch):
    """Every test opts its own prefixes in; none leak from another test or the environment."""
    monkeypatch.delenv("API_RECORDER_HTTP", raising=False)
    monkeypatch.setattr(RECORDER, "http_prefixes", [])


@pytest.fixture
def api():
    with FakeHttpApi() as server:
        yield server


# -- what an application does, through each client -------------------------------------------


def httpx_calls(base: str) -> list:
    out = []
    with httpx.Client() as client:
        response = client.post(
            f"{base}/json",
            params={"key": QUERY_SECRET},
            json={"prompt": "hi"},
            headers={"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET},
        )
        out.append(("json", response.status_code, _headers(response.headers), response.json()))
        out.append(("cookie", response.headers.get("set-cookie") is not None))
        with client.stream("POST", f"{base}/sse", json={"prompt": "s"}) as stream:
            out.append(("sse", stream.status_code, _headers(stream.headers), list(stream.iter_lines())))
        with client.stream("POST", f"{base}/ndjson", json={"rows": 3}) as stream:
            out.append(("ndjson", stream.status_code, [json.loads(line) for line in stream.iter_lines()]))
        response = client.get(f"{base}/text")
        out.append(("text", response.status_code, response.headers["content-type"], response.text))
        response = client.get(f"{base}/error")
        out.append(("error", response.status_code, response.headers["retry-after"], response.json()))
        with pytest.raises(httpx.HTTPStatusError):
            response.raise_for_status()
    return out


def httpx_async_calls(base: str) -> list:
    async def calls() -> list:
        out = []
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{base}/json",
                params={"key": QUERY_SECRET},
                json={"prompt": "hi"},
                headers={"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET},
            )
            out.append(("json", response.status_code, _headers(response.headers), response.json()))
            out.append(("cookie", response.headers.get("set-cookie") is not None))
            async with client.stream("POST", f"{base}/sse", json={"prompt": "s"}) as stream:
                out.append(
                    ("sse", stream.status_code, _headers(stream.headers), [x async for x in stream.aiter_lines()])
                )
            async with client.stream("POST", f"{base}/ndjson", json={"rows": 3}) as stream:
                out.append(("ndjson", stream.status_code, [json.loads(x) async for x in stream.aiter_lines()]))
            response = await client.get(f"{base}/text")
            out.append(("text", response.status_code, response.headers["content-type"], response.text))
            response = await client.get(f"{base}/error")
            out.append(("error", response.status_code, response.headers["retry-after"], response.json()))
            with pytest.raises(httpx.HTTPStatusError):
                response.raise_for_status()
        return out

    return asyncio.run(calls())


def aiohttp_calls(base: str) -> list:
    async def calls() -> list:
        out = []
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/json",
                params={"key": QUERY_SECRET},
                json={"prompt": "hi"},
                headers={"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET},
            ) as response:
                out.append(("json", response.status, _headers(response.headers), await response.json()))
                out.append(("cookie", response.headers.get("set-cookie") is not None))
            async with session.post(f"{base}/sse", json={"prompt": "s"}) as response:
                out.append(("sse", response.status, _headers(response.headers), [x async for x in response.content]))
            async with session.post(f"{base}/ndjson", json={"rows": 3}) as response:
                rows = []
                while line := await response.content.readline():
                    rows.append(json.loads(line))
                out.append(("ndjson", response.status, rows))
            async with session.get(f"{base}/text") as response:
                out.append(("text", response.status, response.headers["content-type"], await response.text()))
            async with session.get(f"{base}/error") as response:
                out.append(("error", response.status, response.headers["retry-after"], await response.json()))
                with pytest.raises(aiohttp.ClientResponseError) as raised:
                    response.raise_for_status()
                assert raised.value.status == 429
        return out

    return asyncio.run(calls())


CALLS = {"httpx": httpx_calls, "httpx-async": httpx_async_calls, "aiohttp": aiohttp_calls}


def _headers(headers) -> dict:
    return {name: headers[name] for name in ("content-type", "x-request-id")}


def _live_and_recorded(kind: str, api, folder) -> list:
    with api_recorder.recording("record", folder, http=[f"{api.base_url}/api"]), api_recorder.test_context(TEST_ID):
        return CALLS[kind](f"{api.base_url}/api")


def _replayed(kind: str, base: str, folder, **options) -> list:
    with api_recorder.recording("replay", folder, http=[base], **options), api_recorder.test_context(TEST_ID):
        with network_blocked():
            return CALLS[kind](base)


# -- record, then replay with the server gone ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_record_then_replay_offline(kind, workdir, api):
    live = _live_and_recorded(kind, api, "rec")
    base = f"{api.base_url}/api"
    assert api.request_count == 5
    files = recordings_in(workdir)
    assert len(files) == 5
    api.stop()

    replayed = _replayed(kind, base, "rec")

    cookie = ("cookie", False)
    assert [item for item in replayed if item[0] != "cookie"] == [item for item in live if item[0] != "cookie"]
    assert cookie in replayed  # set-cookie is not stored, so not replayed either
    sse = next(item for item in replayed if item[0] == "sse")[3]
    assert len(sse) == SSE_LINES
    # secrets never reach a file: credentials in headers and query, cookies
    text = "".join(path.read_text() for path in files)
    assert SECRET not in text and QUERY_SECRET not in text
    assert "set-cookie" not in text.lower() and "session=" not in text
    assert "Authorization" not in text and "x-api-key" not in text


def test_live_answers_differ_from_call_to_call(workdir, api):
    """The fake is honest: a replay that equals the recording did not reach the server again."""
    base = f"{api.base_url}/api"
    assert httpx_calls(base) != httpx_calls(base)


@pytest.mark.parametrize("recorded_with, replayed_with", [("httpx", "aiohttp"), ("aiohttp", "httpx-async")])
def test_a_recording_replays_through_the_other_client(recorded_with, replayed_with, workdir, api):
    live = _live_and_recorded(recorded_with, api, "rec")
    api.stop()
    replayed = _replayed(replayed_with, f"{api.base_url}/api", "rec")
    by_name = {item[0]: item for item in replayed}
    for item in live:
        if item[0] not in ("sse", "cookie"):  # aiohttp's lines keep their "\n"
            assert by_name[item[0]] == item
    assert len(by_name["sse"][3]) == SSE_LINES


def test_recorded_file_has_llama_stacks_request_shape(workdir, api):
    with api_recorder.recording("record", "rec", http=[api.base_url]), api_recorder.test_context(TEST_ID):
        httpx.post(f"{api.base_url}/api/json", json={"prompt": "shape", "model": "m-1"})
    (path,) = recordings_in(workdir)
    document = read_json(path)
    request = document["request"]
    assert set(request) == {"test_id", "url", "method", "payload"}
    assert request == {
        "test_id": TEST_ID,
        "url": f"{api.base_url}/api/json",
        "method": "POST",
        "payload": {"prompt": "shape", "model": "m-1"},
    }
    assert document["test_id"] == TEST_ID
    response = document["response"]
    assert response["status"] == 200 and response["is_streaming"] is False
    assert response["body"]["echo"] == {"prompt": "shape", "model": "m-1"}
    assert response["headers"]["content-type"] == "application/json"
    assert path.stem == http_hash(request["url"], request["method"], request["payload"], TEST_ID)


# -- what is not recorded --------------------------------------------------------------------


def _plain_calls(kind: str, url: str, headers: dict | None = None) -> int:
    """One POST to ``url``; its status."""
    if kind == "httpx":
        return httpx.post(url, json={"q": 1}, headers=headers).status_code
    if kind == "httpx-async":

        async def call() -> int:
            async with httpx.AsyncClient() as client:
                return (await client.post(url, json={"q": 1}, headers=headers)).status_code

        return asyncio.run(call())

    async def call_aiohttp() -> int:
        async with aiohttp.ClientSession() as session, session.post(url, json={"q": 1}, headers=headers) as response:
            await response.read()
            return response.status

    return asyncio.run(call_aiohttp())


@pytest.mark.parametrize("kind", KINDS)
def test_urls_outside_the_prefixes_are_untouched(kind, workdir, api):
    prefix = [f"{api.base_url}/api"]
    with api_recorder.recording("record", "rec", http=prefix):
        assert _plain_calls(kind, f"{api.base_url}/other/json") == 200
    assert recordings_in(workdir) == [] and api.request_count == 1
    with api_recorder.recording("replay", "rec", http=prefix):
        assert _plain_calls(kind, f"{api.base_url}/other/json") == 200  # to the network, as usual
        with pytest.raises(RecordingNotFoundError):
            _plain_calls(kind, f"{api.base_url}/api/json")
    assert api.request_count == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_request_an_sdk_client_sent_is_left_to_its_integration(kind, workdir, api):
    sdk = {"User-Agent": "OpenAI/Python 3.57.0"}
    prefix = [api.base_url]
    with api_recorder.recording("record", "rec", http=prefix):
        assert _plain_calls(kind, f"{api.base_url}/api/json", sdk) == 200
    assert recordings_in(workdir) == []
    with api_recorder.recording("replay", "rec", http=prefix):
        assert _plain_calls(kind, f"{api.base_url}/api/json", sdk) == 200
    assert api.request_count == 2


def test_an_openai_client_is_recorded_once_by_its_own_integration(workdir, fake_openai):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{fake_openai.base_url}/v1", api_key="sk-test", max_retries=0)
    with api_recorder.recording("record", "rec", http=[fake_openai.base_url]), api_recorder.test_context(TEST_ID):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    (path,) = recordings_in(workdir)
    assert "endpoint" in read_json(path)["request"]  # the OpenAI integration's file, not a raw one


@pytest.mark.parametrize("kind", KINDS)
def test_a_replay_miss_raises_recording_not_found(kind, workdir, api):
    api.stop()
    with api_recorder.recording("replay", "rec", http=[api.base_url]), network_blocked():
        with pytest.raises(RecordingNotFoundError, match="POST"):
            _plain_calls(kind, f"{api.base_url}/api/json")


def test_the_environment_variable_opts_prefixes_in(workdir, api, monkeypatch):
    monkeypatch.setenv("API_RECORDER_HTTP", f"http://elsewhere.invalid/, {api.base_url}/api")
    with api_recorder.recording("record", "rec"):
        assert _plain_calls("aiohttp", f"{api.base_url}/api/json") == 200
        assert _plain_calls("httpx", f"{api.base_url}/api/json") == 200
    assert len(recordings_in(workdir)) == 1  # one request, answered twice
    api.stop()
    with api_recorder.recording("replay", "rec"), network_blocked():
        assert _plain_calls("httpx-async", f"{api.base_url}/api/json") == 200
        assert _plain_calls("aiohttp", f"{api.base_url}/api/json") == 200


# -- streams left early ------------------------------------------------------------------------


def _first_sse_line(kind: str, url: str) -> str:
    if kind == "httpx":
        with httpx.Client() as client, client.stream("POST", url, json={"prompt": "early"}) as stream:
            return next(stream.iter_lines())

    async def first() -> str:
        if kind == "httpx-async":
            async with httpx.AsyncClient() as client, client.stream("POST", url, json={"prompt": "early"}) as stream:
                async for line in stream.aiter_lines():
                    return line
        async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": "early"}) as response:
            return (await response.content.readline()).decode()
        raise AssertionError("no line")

    return asyncio.run(first())


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_left_early_is_recorded_whole(kind, workdir, api):
    url = f"{api.base_url}/api/sse"
    with api_recorder.recording("record", "rec", http=[api.base_url]):
        assert _first_sse_line(kind, url).strip() == "event: delta"
    (path,) = recordings_in(workdir)
    response = read_json(path)["response"]
    assert response["is_streaming"] is True
    assert len(response["body"]) == SSE_LINES and response["body"][-2] == "data: [DONE]"
    api.stop()
    with api_recorder.recording("replay", "rec", http=[api.base_url]), network_blocked():

        async def all_lines() -> list[bytes]:
            async with aiohttp.ClientSession() as session, session.post(url, json={"prompt": "early"}) as resp:
                return [line async for line in resp.content]

        lines = asyncio.run(all_lines())
    assert [line.decode().rstrip("\n") for line in lines] == response["body"]


# -- aiohttp's response, replayed ----------------------------------------------------------------


def test_a_replayed_aiohttp_response_is_a_real_client_response(workdir, api):
    base = f"{api.base_url}/api"

    async def calls() -> dict:
        seen: dict = {}
        async with aiohttp.ClientSession(raise_for_status=False) as session:
            async with session.post(f"{base}/sse", json={"prompt": "any"}) as response:
                seen["type"] = type(response)
                seen["chunks"] = b"".join([chunk async for chunk in response.content.iter_any()])
            async with session.post(f"{base}/ndjson", json={"rows": 2}) as response:
                seen["read"] = await response.read()
                seen["text"] = await response.text()
            async with session.post(f"{base}/json", json={"prompt": "x"}) as response:
                seen["json"] = await response.json()
                seen["ok"] = (response.ok, response.reason, str(response.url), response.method)
                seen["lines"] = [line async for line in response.content]
            response = await session.get(f"{base}/text")  # no context manager: released by hand
            seen["plain"] = await response.text()
            response.release()
        async with aiohttp.ClientSession(raise_for_status=True) as session:
            with pytest.raises(aiohttp.ClientResponseError) as raised:
                await session.get(f"{base}/error")
            seen["raised"] = raised.value.status
        return seen

    with api_recorder.recording("record", "rec", http=[base]):
        live = asyncio.run(calls())
    assert len(recordings_in(workdir)) == 5  # the error answer is recorded although it raised
    api.stop()
    with api_recorder.recording("replay", "rec", http=[base]), network_blocked():
        replayed = asyncio.run(calls())
    assert replayed == live
    assert replayed["type"] is aiohttp.ClientResponse and replayed["raised"] == 429
    assert replayed["ok"][:2] == (True, "OK") and replayed["chunks"].count(b"\n") == SSE_LINES


def test_an_aiohttp_request_without_json_is_keyed_by_its_body(workdir, api):
    url = f"{api.base_url}/api/json"

    async def calls() -> list:
        async with aiohttp.ClientSession() as session:
            out = []
            for data in (b'{"raw": true}', "plain text", {"form": "value"}, None):
                async with session.post(url, data=data) as response:
                    out.append((await response.json())["echo"])
            return out

    with api_recorder.recording("record", "rec", http=[url]):
        live = asyncio.run(calls())
    payloads = sorted(json.dumps(read_json(path)["request"]["payload"]) for path in recordings_in(workdir))
    assert payloads == sorted(
        json.dumps(p) for p in [{"raw": True}, {"__text__": "plain text"}, {"__text__": "form=value"}, {}]
    )
    api.stop()
    with api_recorder.recording("replay", "rec", http=[url]), network_blocked():
        assert asyncio.run(calls()) == live


# -- llama-stack's raw HTTP files ----------------------------------------------------------------

LLAMA_STACK_FILES = sorted(SAMPLE.glob("messages/recordings/*.json")) + sorted(
    SAMPLE.glob("interactions/recordings/*.json")
)


@pytest.mark.parametrize("path", LLAMA_STACK_FILES, ids=lambda path: f"{path.parent.parent.name}-{path.stem[:8]}")
def test_llama_stack_raw_http_files_replay_through_httpx(path: Path, workdir):
    document = read_json(path)
    request, recorded = document["request"], document["response"]
    assert path.stem == http_hash(request["url"], request["method"], request["payload"], document["test_id"])
    folder = workdir / "rec"
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    url = request["url"]
    prefix = url.rsplit("/", 1)[0]

    async def call() -> tuple:
        async with httpx.AsyncClient() as client:
            if recorded["is_streaming"]:
                async with client.stream(request["method"], url, json=request["payload"]) as stream:
                    return stream.status_code, [line async for line in stream.aiter_lines()]
            response = await client.request(request["method"], url, json=request["payload"])
            return response.status_code, response.json()

    async def post() -> tuple:  # the non-streamed call shape, for a streamed file too
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json=request["payload"])
            return response.status_code, list(response.iter_lines())

    with api_recorder.recording("replay", folder, http=[prefix]), network_blocked():
        with api_recorder.test_context(document["test_id"]):
            status, body = asyncio.run(call())
            if recorded["is_streaming"]:
                assert asyncio.run(post()) == (200, recorded["body"])
    assert status == recorded.get("status", 200)
    assert body == recorded["body"]


def test_a_file_we_record_for_llama_stacks_call_has_its_shape(workdir, api):
    (path,) = sorted(SAMPLE.glob("messages/recordings/*.json"))
    document = read_json(path)
    payload, test_id = document["request"]["payload"], document["test_id"]
    url = f"{api.base_url}/v1/messages"

    async def call() -> list[str]:
        async with httpx.AsyncClient() as client, client.stream("POST", url, json=payload) as stream:
            return [line async for line in stream.aiter_lines()]

    with api_recorder.recording("record", "rec", http=[api.base_url]), api_recorder.test_context(test_id):
        lines = asyncio.run(call())
    (ours,) = recordings_in(workdir)
    mine = read_json(ours)
    assert set(mine) == set(document)
    assert mine["test_id"] == test_id
    assert mine["request"] == {**document["request"], "url": url}
    assert ours.stem == http_hash(url, "POST", payload, test_id)
    assert set(document["response"]) <= set(mine["response"])
    assert mine["response"]["is_streaming"] is True and mine["response"]["body"] == lines
