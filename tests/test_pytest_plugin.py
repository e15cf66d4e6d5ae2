"""The pytest plugin: the flags, the env var, the marker, and one test id per test."""

from __future__ import annotations

import pytest

from api_recorder.recorder import RECORDER
from helpers import read_json

pytest.importorskip("openai")

INNER_TEST = """
import os
import openai
import pytest

def client():
    return openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)

def test_capital():
    answer = client().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "capital of France?"}])
    assert answer.choices[0].message.content

def test_embedding():
    answer = client().embeddings.create(model="text-embedding-3-small", input="hi", dimensions=4)
    assert len(answer.data[0].embedding) == 4
"""


@pytest.fixture
def inner(pytester, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    monkeypatch.delenv("LLAMA_STACK_TEST_INFERENCE_MODE", raising=False)
    monkeypatch.delenv("LLAMA_STACK_TEST_RECORDING_DIR", raising=False)
    pytester.mkpydir("suite")
    pytester.path.joinpath("suite", "test_inner.py").write_text(INNER_TEST)
    return pytester


def recordings(pytester):
    return sorted((pytester.path / "suite" / "recordings").glob("*.json"))


def test_flag_records_per_test_then_replays_with_the_server_stopped(inner, fake_openai):
    result = inner.runpytest("--inference-mode=record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    files = recordings(inner)
    assert len(files) == 2
    assert {read_json(p)["test_id"] for p in files} == {
        "suite/test_inner.py::test_capital",
        "suite/test_inner.py::test_embedding",
    }
    calls = fake_openai.request_count
    fake_openai.stop()

    result = inner.runpytest("--inference-mode=replay", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert fake_openai.request_count == calls
    assert not RECORDER.enabled  # the inner session switched it off again


def test_env_var_activates_and_missing_recordings_fail_clearly(inner, monkeypatch):
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", "replay")
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*RecordingNotFoundError*No recording for POST /v1/chat/completions*"])
    result.stdout.fnmatch_lines(["*record-if-missing python -m pytest suite/test_inner.py::test_capital*"])


def test_without_a_mode_the_plugin_stays_inert(inner, fake_openai):
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert recordings(inner) == []
    assert fake_openai.request_count == 2


def test_marker_switches_one_test_on(inner, fake_openai):
    inner.path.joinpath("suite", "test_marked.py").write_text(
        INNER_TEST.replace("def test_capital", "@pytest.mark.api_recording(mode='record')\ndef test_capital")
    )
    result = inner.runpytest("suite/test_marked.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    (path,) = recordings(inner)
    assert read_json(path)["test_id"] == "suite/test_marked.py::test_capital"
    assert not RECORDER.enabled


def test_marker_recording_dir_and_flag_recording_dir(inner):
    inner.path.joinpath("suite", "conftest.py").write_text(
        "import api_recorder, openai, os, pytest\n"
        "@pytest.fixture(scope='session', autouse=True)\n"
        "def warm_models():\n"
        "    url = os.environ['FAKE_OPENAI_URL']\n"
        "    client = openai.OpenAI(base_url=url, api_key='sk-test', max_retries=0)\n"
        "    with api_recorder.test_context(None):\n"
        "        list(client.models.list())\n"
    )
    result = inner.runpytest("--inference-mode=record", "--recording-dir=shared-recs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    models = list((inner.path / "shared-recs").glob("models-*.json"))
    assert len(models) == 1
