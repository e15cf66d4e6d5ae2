"""Edge cases found in review: each once broke a promise of the README."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import textwrap

import pytest
from pydantic import BaseModel, ValidationError, field_validator

import api_recorder
from api_recorder.recorder import RECORDER
from api_recorder.redaction import Redactor
from helpers import read_json, recordings_in

openai = pytest.importorskip("openai")


def ask(client, content="What is the capital of France?", **extra):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}], **extra)


def test_user_rules_match_each_string_not_its_json_form():
    assert Redactor([r"^ACME-\d+$"]).scrub({"customer": "ACME-42"}) == {"customer": "<redacted>"}
    assert Redactor().scrub({"h": "Authorization: Bearer\tabcdefghijklmnop"}) == {"h": "Authorization: <redacted>"}


def test_logprob_tokens_are_data_not_credentials():
    data = {"token": "Hello", "logprob": -0.1, "top_logprobs": [{"token": " world"}], "access_token": "abcdefgh"}
    assert Redactor().scrub(data) == {**data, "access_token": "<redacted>"}


@api_recorder.register_type
class Account(BaseModel):
    id: int
    owner: str


@api_recorder.tool(provider="crm")
def find_accounts(owner: str) -> dict:
    return {"id": "req-1", "accounts": [Account(id=7, owner=owner), Account(id=8, owner=owner)]}


def test_tool_results_keep_their_ids_and_nested_objects(workdir):
    with api_recorder.recording("record"):
        live = find_accounts("alice")
    (path,) = recordings_in(workdir)
    assert read_json(path)["response"]["body"]["id"] == "req-1"
    with api_recorder.recording("replay"):
        replayed = find_accounts("alice")
    assert replayed == live
    assert [type(account) for account in replayed["accounts"]] == [Account, Account]


class Picky(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def refuse(cls, value: str) -> str:
        raise ValueError(f"refusing {value!r}")


def test_a_parse_whose_parser_refuses_the_answer_replays_the_same_error(workdir, fake_openai):
    client = fake_openai.client()
    messages = [{"role": "user", "content": "name one"}]
    with api_recorder.recording("record"), pytest.raises(ValidationError, match="refusing") as live:
        client.chat.completions.parse(model="gpt-4o", messages=messages, response_format=Picky)
    assert len(recordings_in(workdir)) == 1
    fake_openai.stop()
    with api_recorder.recording("replay"), pytest.raises(ValidationError, match="refusing") as replayed:
        client.chat.completions.parse(model="gpt-4o", messages=messages, response_format=Picky)
    assert str(replayed.value) == str(live.value)


def test_model_lists_recorded_in_one_test_folder_serve_every_folder(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context("tests/a/test_a.py::test_one"):
        live = [m.id for m in client.models.list()]
        client.models.retrieve("gpt-4o")
    (models,) = [p for p in recordings_in(workdir / "recordings") if p.name.startswith("models-")]
    assert read_json(models)["test_id"] is None
    fake_openai.stop()
    with api_recorder.recording("replay"), api_recorder.test_context("tests/b/test_b.py::test_two"):
        assert [m.id for m in client.models.list()] == live
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"


ANSWERS = iter([])


@api_recorder.tool(provider="jobs")
def job_state(job: str) -> str:
    return next(ANSWERS)


def test_repeated_answers_of_interleaved_tests_stay_apart(workdir):
    global ANSWERS
    ANSWERS = iter(["a1", "b1", "a2", "b2"])
    with api_recorder.recording("record"):
        for test in ("tests/x/test_x.py::test_a", "tests/x/test_x.py::test_b") * 2:
            with api_recorder.test_context(test):
                job_state("j")
    with api_recorder.recording("replay"):
        for test, expected in (
            ("tests/x/test_x.py::test_a", ["a1", "a2"]),
            ("tests/x/test_x.py::test_b", ["b1", "b2"]),
        ):
            with api_recorder.test_context(test):
                assert [job_state("j"), job_state("j")] == expected


def test_a_request_scoped_test_id_leaves_the_process_wide_one_alone():
    with RECORDER.test_ids.scope("tests/t.py::test_outer"):
        with RECORDER.test_ids.scope("tests/t.py::test_request", process_wide=False):
            assert RECORDER.current_test_id() == "tests/t.py::test_request"
            assert RECORDER.test_ids.process_wide() == "tests/t.py::test_outer"
        assert RECORDER.current_test_id() == "tests/t.py::test_outer"


def test_wrap_tool_wraps_an_inherited_method_and_removes_it_cleanly(workdir, monkeypatch):
    (workdir / "inheritlib.py").write_text(
        textwrap.dedent("""
        class Base:
            def fetch(self, key):
                return {"key": key, "n": len(key)}

        class Client(Base):
            pass
    """)
    )
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.delitem(sys.modules, "inheritlib", raising=False)
    with api_recorder.recording("record"):
        api_recorder.wrap_tool("inheritlib:Client.fetch", provider="lib")
        module = importlib.import_module("inheritlib")
        assert module.Client().fetch("abc") == {"key": "abc", "n": 3}
        assert "fetch" in vars(module.Client)
    assert "fetch" in vars(module.Client)  # disable() leaves the wrapper, inert
    assert module.Client().fetch("zz") == {"key": "zz", "n": 2}  # passed through: nothing recorded
    RECORDER.uninstall()
    assert "fetch" not in vars(module.Client)  # removed: the inherited method shows through again
    assert len(recordings_in(workdir / "recordings")) == 1


def test_nested_recording_blocks_keep_the_passthrough_list(workdir):
    with api_recorder.recording("record", passthrough=["http://127.0.0.1:8321"]):
        with api_recorder.recording("replay"):
            assert RECORDER.is_passthrough("http://127.0.0.1:8321/v1")


def test_a_sync_stream_left_with_break_is_recorded_whole(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        for _chunk in ask(client, stream=True, max_tokens=10):
            break
        gc.collect()
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) == 12


SESSION_SUITE = """
import os, openai, pytest

@pytest.fixture(scope="session")
def catalog():
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "setup"}])

def test_first(catalog):
    assert catalog.choices

def test_second(catalog):
    assert catalog.choices
"""


def test_session_fixture_calls_are_shared_by_every_test(pytester, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    monkeypatch.delenv("LLAMA_STACK_TEST_INFERENCE_MODE", raising=False)
    monkeypatch.delenv("OGX_TEST_INFERENCE_MODE", raising=False)
    pytester.makepyfile(test_session=SESSION_SUITE)
    pytester.runpytest_subprocess("--inference-mode=record", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    (path,) = recordings_in(pytester.path / "recordings")
    assert read_json(path)["test_id"] is None
    fake_openai.stop()
    result = pytester.runpytest_subprocess("--inference-mode=replay", "-k", "second", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


def test_async_replay_of_the_same_shared_recording(workdir, fake_openai):
    async def names():
        async with fake_openai.async_client() as client:
            return [m.id async for m in client.models.list()]

    with api_recorder.recording("record"):
        live = asyncio.run(names())
    fake_openai.stop()
    with api_recorder.recording("replay"), api_recorder.test_context("tests/z/test_z.py::test_z"):
        assert asyncio.run(names()) == live
