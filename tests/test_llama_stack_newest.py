"""llama-stack's newest recorder (renamed OGX): its variable names, its headers, its hash.

Expected hashes are written out by hand here, as the document llama-stack hashes, so that these
tests check our normalization against the rules rather than against itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

import api_recorder
from api_recorder.context import TEST_ID_HEADER
from conftest import ENV_NAMES
from helpers import read_json, recordings_in

openai = pytest.importorskip("openai")
from openai.resources.chat.completions import completions  # noqa: E402, F401  (see test_pytest_plugin)
from openai.types.chat import ChatCompletion  # noqa: E402

TEST_ID = "tests/integration/responses/test_file_search.py::test_search[openai]"
DOC_ID = "3f2b8c1e-9a4d-4c6b-8e2f-1a2b3c4d5e6f"
FILE_SEARCH_TEXT = (
    f"[1] document_id: {DOC_ID}, score: 0.8123456789, attributes: {{'lang': 'en', 'year': 2024}}\n"
    f"Llama 4 Maverick has 128 experts <|{DOC_ID}|>"
)
MESSAGES = [{"role": "user", "content": FILE_SEARCH_TEXT}]
EXTRA_BODY = {"project_id": "my-gcp-project", "guided_choice": ["yes", "no"]}


def llama_stack_hash(endpoint: str, body: dict, test_id: str | None) -> str:
    """sha256 of llama-stack's hashed document, spelled out: the body given is already normalized."""
    document = {"method": "POST", "endpoint": endpoint, "body": body, "test_id": test_id}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


NEWEST_BODY = {
    "model": "gpt-4o",
    "messages": [
        {
            "role": "user",
            "content": "[1] document_id: __NORMALIZED__, score: __NORMALIZED__\n"
            "Llama 4 Maverick has 128 experts <|__NORMALIZED__|>",
        }
    ],
    "extra_body": {"guided_choice": ["yes", "no"]},
}
OLDER_BODY = {
    "model": "gpt-4o",
    "messages": [
        {
            "role": "user",
            "content": f"[1] document_id: {DOC_ID}, score: 0.81235, attributes: {{'lang': 'en', 'year': 2024}}\n"
            f"Llama 4 Maverick has 128 experts <|{DOC_ID}|>",
        }
    ],
    "extra_body": EXTRA_BODY,
}


def ask(client):
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_body=EXTRA_BODY)


# -- the hash ---------------------------------------------------------------------------------


def test_files_are_written_under_the_newest_hash_with_the_request_as_sent(workdir, fake_openai):
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        ask(fake_openai.client())
    (path,) = recordings_in(workdir / "tests")
    assert path.name == llama_stack_hash("/v1/v1/chat/completions", NEWEST_BODY, TEST_ID) + ".json"
    request = read_json(path)["request"]
    # as llama-stack does, the rules apply to the hashed copy: the file keeps what was sent
    assert request["body"] == {"model": "gpt-4o", "messages": MESSAGES, "extra_body": EXTRA_BODY}
    assert json.loads(fake_openai.requests[0].raw_body)["guided_choice"] == ["yes", "no"]


def test_files_named_by_the_older_hash_are_found(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        live = ask(client)
    (path,) = recordings_in(workdir / "tests")
    older = path.with_name(llama_stack_hash("/v1/v1/chat/completions", OLDER_BODY, TEST_ID) + ".json")
    path.rename(older)  # as a recorder before the newest rules would have named it
    requests_before = len(fake_openai.requests)
    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        replayed = ask(client)
    assert type(replayed) is ChatCompletion
    assert replayed.choices[0].message.content == live.choices[0].message.content
    assert len(fake_openai.requests) == requests_before


def test_scores_and_ids_that_change_between_runs_still_replay(workdir, fake_openai):
    """The point of the newest rules: a re-run's search has other scores and document ids."""
    client = fake_openai.client()
    with api_recorder.recording("record", "recs"), api_recorder.test_context(TEST_ID):
        live = ask(client)
    other_run = FILE_SEARCH_TEXT.replace("0.8123456789", "0.79").replace(DOC_ID, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    other_run = other_run.replace("'year': 2024", "'year': 2025")
    with api_recorder.recording("replay", "recs"), api_recorder.test_context(TEST_ID):
        replayed = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": other_run}],
            extra_body={**EXTRA_BODY, "project_id": "the-replay-project"},
        )
    assert replayed.choices[0].message.content == live.choices[0].message.content


def test_project_id_is_dropped_from_extra_query_too_but_only_at_the_top(workdir, fake_openai):
    from api_recorder.hashing import NEWEST

    body = {
        "extra_query": {"project_id": "p", "region": "us"},
        "metadata": {"extra_body": {"project_id": "kept: not at the top"}},
        "messages": [{"extra_body": {"project_id": "dropped: list items count as roots, as in llama-stack"}}],
    }
    assert NEWEST(body) == {
        "extra_query": {"region": "us"},
        "metadata": {"extra_body": {"project_id": "kept: not at the top"}},
        "messages": [{"extra_body": {}}],
    }


def test_azure_clients_keep_the_api_version_in_provider_metadata(workdir, fake_openai):
    client = openai.AzureOpenAI(
        base_url=fake_openai.url, api_key="azure-key-0123456789abcdef", api_version="2024-10-21", max_retries=0
    )
    with api_recorder.recording("record", "recs"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    (path,) = recordings_in(workdir / "recs")
    request = read_json(path)["request"]
    assert request["provider_metadata"] == {
        "openai_sdk_version": openai.__version__,
        "azure_api_version": "2024-10-21",
    }
    assert "azure-key-0123456789abcdef" not in path.read_text()
    with api_recorder.recording("replay", "recs"):
        replayed = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert type(replayed) is ChatCompletion


# -- OGX's variable names -------------------------------------------------------------------


def test_enable_reads_the_ogx_names(workdir, fake_openai, monkeypatch):
    monkeypatch.setenv("OGX_TEST_INFERENCE_MODE", "record")
    monkeypatch.setenv("OGX_TEST_RECORDING_DIR", str(workdir / "ogx-recs"))
    api_recorder.enable()
    try:
        assert api_recorder.current_mode() is api_recorder.Mode.RECORD
        fake_openai.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    finally:
        api_recorder.disable()
    assert len(recordings_in(workdir / "ogx-recs")) == 1


def test_both_names_may_agree(workdir, monkeypatch):
    monkeypatch.setenv("OGX_TEST_INFERENCE_MODE", "record")
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", " record ")
    with api_recorder.recording():
        assert api_recorder.current_mode() is api_recorder.Mode.RECORD


@pytest.mark.parametrize(
    ("names", "values"),
    [
        (("LLAMA_STACK_TEST_INFERENCE_MODE", "OGX_TEST_INFERENCE_MODE"), ("record", "replay")),
        (("LLAMA_STACK_TEST_RECORDING_DIR", "OGX_TEST_RECORDING_DIR"), ("a", "b")),
    ],
)
def test_names_that_disagree_stop_enable_naming_both(workdir, monkeypatch, names, values):
    for name, value in zip(names, values, strict=True):
        monkeypatch.setenv(name, value)
    with pytest.raises(api_recorder.ApiRecorderError) as caught:
        api_recorder.enable()
    message = str(caught.value)
    assert all(f"{name}={value!r}" in message for name, value in zip(names, values, strict=True))
    assert "Unset one of them" in message


INNER_SUITE = """
import os, openai

def test_hi():
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).id
"""


@pytest.fixture
def inner(pytester, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_inner=INNER_SUITE)
    return pytester


def test_the_pytest_plugin_reads_the_ogx_names(inner, fake_openai, monkeypatch):
    monkeypatch.setenv("OGX_TEST_INFERENCE_MODE", "record")
    inner.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    (path,) = recordings_in(inner.path / "recordings")
    assert read_json(path)["test_id"] == "test_inner.py::test_hi"
    fake_openai.stop()
    monkeypatch.setenv("OGX_TEST_INFERENCE_MODE", "replay")
    inner.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_pytest_plugin_stops_when_the_names_disagree(inner, monkeypatch):
    monkeypatch.setenv("OGX_TEST_INFERENCE_MODE", "record")
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", "replay")
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*LLAMA_STACK_TEST_INFERENCE_MODE='replay'*OGX_TEST_INFERENCE_MODE='record'*"])


PROBE = """
import openai
from openai.resources.chat.completions.completions import Completions
print(type(Completions.__dict__["create"]).__name__ == "FunctionWrapper")
"""


def run_python(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("API_RECORDER_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_auto_activation_reads_the_ogx_name():
    result = run_python(PROBE, OGX_TEST_INFERENCE_MODE="replay")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]


def test_auto_activation_refuses_names_that_disagree_and_says_why():
    result = run_python(PROBE, OGX_TEST_INFERENCE_MODE="replay", LLAMA_STACK_TEST_INFERENCE_MODE="record")
    assert result.stdout.split() == ["False"]
    assert result.stderr.count("api-recorder:") == 1
    assert "LLAMA_STACK_TEST_INFERENCE_MODE='record'" in result.stderr
    assert "OGX_TEST_INFERENCE_MODE='replay'" in result.stderr


# -- the test id in OGX's and llama-stack's provider data ----------------------------------


def provider_data(request, name):
    value = request.headers.get(name)
    return json.loads(value) if value is not None else None


def test_clients_merge_the_test_id_into_the_provider_data_they_already_send(workdir, fake_openai):
    client = fake_openai.client(
        default_headers={"X-LlamaStack-Provider-Data": json.dumps({"tavily_search_api_key": "tvly-x"})}
    )
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-OGX-Provider-Data": json.dumps({"vllm_api_token": "t"})},
        )
    (request,) = fake_openai.requests
    assert provider_data(request, "x-llamastack-provider-data") == {
        "tavily_search_api_key": "tvly-x",
        "__test_id": TEST_ID,
    }
    assert provider_data(request, "x-ogx-provider-data") == {"vllm_api_token": "t", "__test_id": TEST_ID}
    assert request.headers.get(TEST_ID_HEADER.lower()) == TEST_ID
    (path,) = recordings_in(workdir / "tests")
    assert "tvly-x" not in path.read_text() and "vllm_api_token" not in path.read_text()


def test_a_provider_data_header_that_is_not_a_json_object_is_left_alone(workdir, fake_openai):
    client = fake_openai.client(default_headers={"X-OGX-Provider-Data": "not json"})
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        client.models.retrieve("gpt-4o")
    (request,) = fake_openai.requests
    assert request.headers.get("x-ogx-provider-data") == "not json"
    assert provider_data(request, "x-llamastack-provider-data") == {"__test_id": TEST_ID}


def test_propagated_httpx_clients_send_the_provider_data_too(workdir, fake_openai):
    import httpx

    with httpx.Client(headers={"X-OGX-Provider-Data": '{"k": 1}'}) as client:
        api_recorder.propagate_test_id(client)
        with api_recorder.test_context(TEST_ID):
            client.get(fake_openai.url + "/models")
    (request,) = fake_openai.requests
    assert provider_data(request, "x-ogx-provider-data") == {"k": 1, "__test_id": TEST_ID}
    assert provider_data(request, "x-llamastack-provider-data") == {"__test_id": TEST_ID}


@pytest.mark.parametrize("header", ["X-OGX-Provider-Data", "X-LlamaStack-Provider-Data"])
def test_the_middlewares_honour_both_provider_data_headers(header):
    import asyncio

    from api_recorder.recorder import RECORDER

    seen = []

    async def asgi_app(scope, receive, send):
        seen.append(RECORDER.current_test_id())

    def wsgi_app(environ, start_response):
        seen.append(RECORDER.current_test_id())
        return [b"ok"]

    value = json.dumps({"some_key": "x", "__test_id": TEST_ID})
    scope = {"type": "http", "headers": [(header.lower().encode(), value.encode())]}
    asyncio.run(api_recorder.TestIdMiddleware(asgi_app)(scope, None, None))
    environ = {"HTTP_" + header.upper().replace("-", "_"): value}
    list(api_recorder.WSGITestIdMiddleware(wsgi_app)(environ, lambda *a: None))
    assert seen == [TEST_ID, TEST_ID]
