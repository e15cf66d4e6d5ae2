"""The recorder's promises beyond one call: modes, files, layout, errors, ids, streams."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest

import api_recorder
import scenarios
from api_recorder.hashing import inference_hash
from api_recorder.recorder import RECORDER
from helpers import read_json, recordings_in

openai = pytest.importorskip("openai")
from openai.resources.chat.completions.completions import Completions  # noqa: E402
from openai.types.chat import ChatCompletion  # noqa: E402

TEST_ID = "tests/area/test_calls.py::test_one"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def ask(client, content="What is the capital of France?", **extra):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}], **extra)


# -- modes -------------------------------------------------------------------------------


def test_unknown_mode_lists_the_four(workdir):
    with pytest.raises(api_recorder.InvalidModeError) as caught:
        api_recorder.enable("playback")
    message = str(caught.value)
    for mode in ("live", "record", "replay", "record-if-missing"):
        assert repr(mode) in message
    assert isinstance(caught.value, ValueError)


def test_unknown_mode_in_the_env_var_is_a_clear_error(workdir, monkeypatch):
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", "recrod")
    with pytest.raises(api_recorder.InvalidModeError, match="recrod"):
        api_recorder.enable()


def test_enable_reads_the_env_vars(workdir, monkeypatch, fake_openai):
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", "record")
    monkeypatch.setenv("LLAMA_STACK_TEST_RECORDING_DIR", str(workdir / "from-env"))
    api_recorder.enable()
    assert api_recorder.current_mode() is api_recorder.Mode.RECORD
    ask(fake_openai.client())
    assert len(recordings_in(workdir / "from-env")) == 1


def test_live_mode_neither_reads_nor_writes(workdir, fake_openai):
    with api_recorder.recording("live"):
        ask(fake_openai.client())
        ask(fake_openai.client())
    assert fake_openai.request_count == 2
    assert recordings_in(workdir) == []


def test_record_mode_always_calls_and_overwrites(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        first = ask(client)
        second = ask(client)
    assert fake_openai.request_count == 2
    files = recordings_in(workdir)
    assert len(files) == 1
    assert first.id != second.id  # the server answers with fresh ids
    assert read_json(files[0])["response"]["body"]["__data__"]["id"].startswith("rec-")


def test_record_if_missing_calls_once_per_new_request(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record-if-missing"):
        first = ask(client)
        again = ask(client)
        other = ask(client, "And of Italy?")
        other_again = ask(client, "And of Italy?")
    assert fake_openai.request_count == 2
    assert type(again) is ChatCompletion
    assert again.choices[0].message.content == first.choices[0].message.content
    assert other_again.choices[0].message.content == other.choices[0].message.content
    assert len(recordings_in(workdir)) == 2


def test_replay_never_calls_and_names_what_is_missing(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingNotFoundError) as caught:
            ask(client)
    assert fake_openai.request_count == 0
    message = str(caught.value)
    expected_hash = inference_hash(
        "POST", fake_openai.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}, TEST_ID
    )
    assert "POST /v1/chat/completions" in message
    assert "gpt-4o" in message
    assert TEST_ID in message
    assert expected_hash in message
    assert str(workdir / "tests" / "area" / "recordings" / f"{expected_hash}.json") in message
    assert f"LLAMA_STACK_TEST_INFERENCE_MODE=record-if-missing python -m pytest {TEST_ID}" in message
    assert isinstance(caught.value, RuntimeError)


# -- files and layout ----------------------------------------------------------------------


def test_file_format_is_llama_stacks_with_stable_ids(workdir, fake_openai):
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live = ask(fake_openai.client(), temperature=0.5)
    (path,) = recordings_in(workdir / "tests" / "area" / "recordings")
    text = path.read_text()
    document = json.loads(text)
    body = {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0.5}
    expected_hash = inference_hash("POST", fake_openai.url + "/v1/chat/completions", body, TEST_ID)

    assert path.name == f"{expected_hash}.json"
    assert list(document) == ["test_id", "request", "response", "id_normalization_mapping"]
    assert document["test_id"] == TEST_ID
    request = document["request"]
    assert request["method"] == "POST"
    assert request["url"] == fake_openai.url + "/v1/chat/completions"
    assert request["headers"] == {}
    assert request["body"] == body
    assert request["endpoint"] == "/v1/chat/completions"
    assert request["model"] == "gpt-4o"
    assert request["provider_metadata"] == {"openai_sdk_version": openai.__version__}
    response = document["response"]
    assert response["is_streaming"] is False
    assert response["body"]["__type__"] == "openai.types.chat.chat_completion.ChatCompletion"
    assert response["body"]["__data__"]["id"] == f"rec-{expected_hash[:12]}"
    assert response["body"]["__data__"]["created"] == 0
    assert live.id.startswith("chatcmpl-") and live.created > 0  # the caller saw the live answer
    assert text.endswith("}\n") and '\n  "request": {\n' in text
    assert [p for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_rerecording_gives_an_identical_file(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        ask(client, stream=True).close()
        (path,) = recordings_in(workdir)
        first = path.read_bytes()
        list(ask(client, stream=True))
    assert path.read_bytes() == first


def test_calls_outside_a_test_go_to_the_recording_dir(workdir, fake_openai):
    with api_recorder.recording("record", recording_dir="elsewhere"):
        ask(fake_openai.client())
    assert len(recordings_in(workdir / "elsewhere")) == 1


def test_lookup_falls_back_from_the_test_folder_to_the_recording_dir(workdir, fake_openai):
    """A call recorded during session setup (no test) is found from inside a test... when its
    hash has no test id: model lists are shared."""
    client = fake_openai.client()
    with api_recorder.recording("record"):
        live = [model.id for model in client.models.list()]
    fake_openai.stop()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = [model.id for model in client.models.list()]
    with api_recorder.recording("replay"), api_recorder.test_context("tests/other/test_b.py::test_b"):
        replayed_elsewhere = [model.id for model in client.models.list()]
    assert replayed == live == replayed_elsewhere
    (path,) = recordings_in(workdir / "recordings")
    assert path.name.startswith("models-")


def test_same_request_in_two_tests_gets_two_recordings(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        with api_recorder.test_context("tests/a/test_x.py::test_one"):
            ask(client)
        with api_recorder.test_context("tests/a/test_x.py::test_two"):
            ask(client)
    files = recordings_in(workdir / "tests" / "a" / "recordings")
    assert len(files) == 2
    assert {read_json(p)["test_id"] for p in files} == {
        "tests/a/test_x.py::test_one",
        "tests/a/test_x.py::test_two",
    }


# -- hashing -------------------------------------------------------------------------------


def test_float_noise_in_numbers_and_in_strings_hashes_the_same(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        ask(client, "search score 0.8321765432 for doc", temperature=0.7000000001)
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed = ask(client, "search score 0.8321769 for doc", temperature=0.7)
    assert type(replayed) is ChatCompletion


def test_normalizers_make_varying_values_hash_the_same(workdir, fake_openai):
    client = fake_openai.client()
    normalizers = [
        api_recorder.Normalizer.regex(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<timestamp>"),
        api_recorder.Normalizer.ignore("metadata.request_id"),
    ]
    with api_recorder.recording("record", normalizers=normalizers):
        ask(client, "now is 2026-11-25T00:00:01.5Z", metadata={"request_id": "a1", "team": "x"}, store=True)
    (path,) = recordings_in(workdir)
    stored = read_json(path)["request"]["body"]
    assert stored["messages"][0]["content"] == "now is <timestamp>"
    assert stored["metadata"] == {"team": "x"}
    fake_openai.stop()
    with api_recorder.recording("replay", normalizers=normalizers):
        replayed = ask(client, "now is 2027-01-01T10:11:12Z", metadata={"request_id": "b2", "team": "x"}, store=True)
    assert type(replayed) is ChatCompletion


def test_a_conversation_passing_answers_back_replays(workdir, fake_openai):
    """Typed messages from one answer go into the next request: their dump must hash the same."""

    def conversation(client):
        messages = [{"role": "user", "content": "Search for Paris"}]
        tools = scenarios.TOOLS
        first = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        messages += [
            first.choices[0].message,
            {"role": "tool", "tool_call_id": call.id, "content": "Paris: 2.1M"},
        ]
        second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
        return call.function.arguments, second.choices[0].message.content

    client = fake_openai.client()
    with api_recorder.recording("record"):
        live = conversation(client)
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed = conversation(client)
    assert replayed == live
    assert "Paris: 2.1M" in live[1]


def test_previous_response_id_chains_replay(workdir, fake_openai):
    def chain(client):
        first = client.responses.create(model="gpt-4o", input="Hello")
        second = client.responses.create(model="gpt-4o", input="And then?", previous_response_id=first.id)
        return first.id, second.output_text

    client = fake_openai.client()
    with api_recorder.recording("record"):
        live_id, live_text = chain(client)
    sent = fake_openai.requests[-1].body["previous_response_id"]
    assert sent == live_id and live_id.startswith("resp_")  # the server saw its own id
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed_id, replayed_text = chain(client)
    assert replayed_id.startswith("rec-")
    assert replayed_text == live_text


# -- streams -------------------------------------------------------------------------------


def test_a_stream_abandoned_early_is_recorded_whole(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        stream = ask(client, stream=True, max_tokens=20)
        first_two = [next(stream), next(stream)]
        stream.close()
    (path,) = recordings_in(workdir)
    chunks = read_json(path)["response"]["body"]
    assert len(chunks) == 22  # role chunk, 20 words, finish chunk
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed = list(ask(client, stream=True, max_tokens=20))
    assert len(replayed) == 22
    assert [c.choices[0].delta for c in replayed[:2]] == [c.choices[0].delta for c in first_two]


def test_an_async_stream_abandoned_early_is_recorded_whole(workdir, fake_openai):
    async def abandon():
        async with fake_openai.async_client() as client:
            stream = await ask(client, stream=True, max_tokens=20)
            async with stream:
                first = await stream.__anext__()
            return first

    with api_recorder.recording("record"):
        first = asyncio.run(abandon())
    assert first.choices[0].delta.role == "assistant"
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) == 22


def test_a_stream_helper_left_early_is_recorded_whole(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, max_tokens=30) as stream:
            for event in stream:
                if event.type == "content.delta":
                    break
    (path,) = recordings_in(workdir)
    assert len(read_json(path)["response"]["body"]) == 32
    fake_openai.stop()
    with api_recorder.recording("replay"):
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, max_tokens=30) as stream:
            final = stream.get_final_completion()
    assert len(final.choices[0].message.content.split()) == 30


def test_replayed_stream_supports_the_stream_protocol(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        list(ask(client, stream=True, max_tokens=5))
    with api_recorder.recording("replay"):
        stream = ask(client, stream=True, max_tokens=5)
        assert isinstance(stream, openai.Stream)
        with stream as entered:
            assert entered is stream
            first = next(stream)
        assert first.choices[0].delta.role == "assistant"
        assert list(stream) == []  # closed by the with block


# -- switching on and off ------------------------------------------------------------------


def test_disable_leaves_the_sdk_behaving_exactly_as_before(workdir, fake_openai):
    client = fake_openai.client()
    create = client.chat.completions.create  # kept by a library, as LangChain keeps it
    wrapper = Completions.__dict__["create"]
    api_recorder.enable("record")
    api_recorder.enable("record")  # idempotent: still one wrapper
    assert Completions.__dict__["create"] is wrapper and wrapper.__wrapped__.__name__ == "create"
    api_recorder.disable()
    answer = create(model="gpt-4o", messages=MESSAGES)  # straight through: live, nothing written
    assert type(answer) is ChatCompletion and not answer.id.startswith("rec-")
    assert recordings_in(workdir) == [] and fake_openai.request_count == 1


def test_uninstall_restores_the_classes_exactly_and_enable_wraps_again(workdir):
    wrapper = Completions.__dict__["create"]
    RECORDER.uninstall()
    assert Completions.__dict__["create"] is wrapper.__wrapped__
    api_recorder.enable("replay")
    assert type(Completions.__dict__["create"]).__name__ == "FunctionWrapper"
    api_recorder.disable()


def test_recording_blocks_nest_and_restore(workdir):
    assert api_recorder.current_mode() is api_recorder.Mode.LIVE
    with api_recorder.recording("record"):
        with api_recorder.recording("replay", recording_dir="inner"):
            assert api_recorder.current_mode() is api_recorder.Mode.REPLAY
            assert RECORDER.store.recording_dir == workdir / "inner"
        assert api_recorder.current_mode() is api_recorder.Mode.RECORD
        assert RECORDER.store.recording_dir == workdir / "recordings"
    assert api_recorder.current_mode() is api_recorder.Mode.LIVE
    assert not RECORDER.enabled


def test_test_context_has_a_process_wide_fallback():
    seen = {}
    ready = threading.Event()

    def session_thread():
        # started before the test context: it does not share the ContextVar
        ready.wait()
        from api_recorder.recorder import RECORDER as recorder

        seen["id"] = recorder.current_test_id()

    thread = threading.Thread(target=session_thread)
    thread.start()
    with api_recorder.test_context("tests/a/test_x.py::test_y"):
        ready.set()
        thread.join()
    assert seen["id"] == "tests/a/test_x.py::test_y"
    assert RECORDER.current_test_id() is None


def test_uncovered_resources_are_left_untouched(workdir, fake_openai):
    from openai.resources.files import Files

    api_recorder.enable("replay")
    assert type(Files.__dict__["list"]).__name__ == "function"


@pytest.mark.parametrize("order", ["enable-then-import", "import-then-enable"])
def test_enable_works_whether_openai_is_imported_before_or_after(order, tmp_path):
    script = f"""
import sys
import api_recorder
if {order == "enable-then-import"!r}:
    api_recorder.enable("replay")
    assert "openai" not in sys.modules, "enable() imported openai"
    import openai
else:
    import openai
    api_recorder.enable("replay")
from openai.resources.chat.completions.completions import Completions
assert hasattr(Completions.__dict__["create"], "__wrapped__")
client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
try:
    client.chat.completions.create(model="m", messages=[])
except api_recorder.RecordingNotFoundError:
    print("replay-intercepted")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "replay-intercepted"
