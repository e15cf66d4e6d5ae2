"""The pytest plugin: the flags, the env var, the marker, and one test id per test."""

from __future__ import annotations

import json

import pytest

from api_recorder.recorder import RECORDER
from conftest import ENV_NAMES
from helpers import read_json

pytest.importorskip("openai")
# Inline pytester runs restore sys.modules afterwards: a resource module first imported inside an
# inner run would be imported anew by the next one, while the SDK keeps using the old classes.
# Import them here, once, as any application that uses them already has.
import openai.resources.chat.completions.completions
import openai.resources.embeddings
import openai.resources.models  # noqa: F401

INNER_TEST = """
import os
import openai
import json

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
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
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


def stale_copy(pytester, test_id, name):
    """A recording the suite no longer makes: same test, a request nobody sends any more."""
    source = recordings(pytester)[0]
    document = read_json(source)
    document["test_id"] = test_id
    document["request"]["body"]["temperature"] = 0.123
    target = source.parent / name
    target.write_text(json.dumps(document))
    return target


def test_report_counts_calls_and_prunes_unused_recordings_only_after_a_full_green_run(inner, fake_openai):
    inner.runpytest("--inference-mode=record", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    stale = stale_copy(inner, "suite/test_inner.py::test_capital", "stale.json")
    orphan = stale_copy(inner, "suite/test_removed.py::test_gone", "orphan.json")
    other_test = stale_copy(inner, "suite/test_not_run.py::test_x", "other.json")
    inner.path.joinpath("suite", "test_not_run.py").write_text("def test_x():\n    pass\n")
    fake_openai.stop()

    deselected = inner.runpytest(
        "--inference-mode=replay",
        "--prune-unused",
        "-k",
        "capital",
        "-p",
        "no:cacheprovider",
        "--ignore=suite/test_not_run.py",
    )
    deselected.assert_outcomes(passed=1, deselected=1)
    deselected.stdout.fnmatch_lines(["*1 replayed, 0 recorded, 0 missing*", "*nothing deleted, because 1 test(s)*"])
    assert stale.exists() and orphan.exists()

    report_path = inner.path / "report.json"
    result = inner.runpytest(
        "--inference-mode=replay",
        "--prune-unused",
        f"--api-recorder-report={report_path}",
        "-p",
        "no:cacheprovider",
        "--ignore=suite/test_not_run.py",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*api-recorder*",
            "*2 replayed, 0 recorded, 0 missing*",
            "*2 recording(s) in the folders this run used were never used:*",
            "*--prune-unused: deleted 2 unused recording(s).*",
        ]
    )
    assert not stale.exists() and not orphan.exists()
    assert other_test.exists()  # its test exists and did not run: not ours to judge
    report = read_json(report_path)
    assert report["replayed"] == 2 and sorted(report["unused"]) == sorted([str(stale), str(orphan)])


def test_report_adds_up_xdist_workers(inner, fake_openai):
    inner.runpytest("--inference-mode=record", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    fake_openai.stop()
    result = inner.runpytest_subprocess("-n", "2", "--inference-mode=replay", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 replayed, 0 recorded, 0 missing*"])


def test_api_recorder_fixture_shows_mode_test_id_and_calls(inner):
    inner.path.joinpath("suite", "test_fixture.py").write_text(
        INNER_TEST
        + """

def test_sees_its_calls(api_recorder):
    assert api_recorder.mode == "record"
    assert api_recorder.test_id == "suite/test_fixture.py::test_sees_its_calls"
    client().models.retrieve("gpt-4o")
    client().models.retrieve("gpt-4o-mini")
    assert [(c.label, c.outcome) for c in api_recorder.calls] == [
        ("GET /v1/models/gpt-4o", "recorded"), ("GET /v1/models/gpt-4o-mini", "recorded")]
"""
    )
    result = inner.runpytest("suite/test_fixture.py", "--inference-mode=record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


MIXED_TEST = """
import os

import anthropic
from google import genai
from google.genai import types

def test_two_providers():
    claude = anthropic.Anthropic(base_url=os.environ["FAKE_ANTHROPIC_URL"], api_key="sk-ant-test", max_retries=0)
    gemini = genai.Client(api_key="gemini-test", http_options=types.HttpOptions(base_url=os.environ["FAKE_GEMINI_URL"]))
    ask = [{"role": "user", "content": "hi"}]
    message = claude.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=ask)
    answer = gemini.models.generate_content(model="gemini-2.0-flash", contents="hello")
    assert message.content[0].text and answer.text
"""


def test_the_report_counts_anthropic_and_gemini_calls_like_openai_ones(pytester, monkeypatch):
    pytest.importorskip("anthropic")
    pytest.importorskip("google.genai")
    from fakes.anthropic_app import FakeAnthropic
    from fakes.gemini_app import FakeGemini

    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    pytester.mkpydir("mixed")
    pytester.path.joinpath("mixed", "test_mixed.py").write_text(MIXED_TEST)
    with FakeAnthropic() as claude, FakeGemini() as gemini:
        monkeypatch.setenv("FAKE_ANTHROPIC_URL", claude.base_url)
        monkeypatch.setenv("FAKE_GEMINI_URL", gemini.base_url)
        recorded = pytester.runpytest_subprocess("--inference-mode=record", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(["0 replayed, 2 recorded, 0 missing"])
    files = sorted((pytester.path / "mixed" / "recordings").glob("*.json"))
    assert sorted(read_json(path)["request"]["endpoint"] for path in files) == ["/generate_content", "/v1/messages"]
    replayed = pytester.runpytest_subprocess("--inference-mode=replay", "-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["2 replayed, 0 recorded, 0 missing"])
    assert claude.request_count == 1 and gemini.request_count == 1  # the replay sent nothing
