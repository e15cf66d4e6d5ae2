"""Hardening: secrets, safe rehydration, recorded errors, bad files, repeated calls, no network."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import api_recorder
from api_recorder.recorder import RECORDER
from helpers import SEED, read_json, recordings_in

openai = pytest.importorskip("openai")
from openai.types.chat import ChatCompletion  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def ask(client, **extra):
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **extra)


# -- secrets -------------------------------------------------------------------------------

KEY = "sk-proj-DISTINCTIVEFAKEKEY1234567890"
ENV_KEY = "sk-ENVIRONMENTFAKEKEY0987654321abc"
HEADER_KEY = "sk-HEADERFAKEKEY5555555555555555"
BODY_KEY = "tvly-BODYFAKEKEY77777777777"
QUERY_KEY = "QUERYFAKEKEY424242424242"
CUSTOM = "ACME-99887766"


def test_no_credential_reaches_a_file(workdir, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    keyed = openai.OpenAI(
        base_url=fake_openai.url, api_key=KEY, max_retries=0, default_headers={"X-Custom-Auth": HEADER_KEY}
    )
    from_env = openai.OpenAI(base_url=fake_openai.url, max_retries=0)
    redact = [r"ACME-\d+", lambda data: data]
    with api_recorder.recording("record", redact=redact):
        ask(
            keyed,
            extra_headers={"api-key": HEADER_KEY, "Authorization": f"Bearer {HEADER_KEY}"},
            extra_body={"api_key": BODY_KEY, "metadata": {"ticket": CUSTOM}},
            extra_query={"key": QUERY_KEY},
        )
        from_env.embeddings.create(model="text-embedding-3-small", input=f"my key is {KEY}", dimensions=4)
        fake_openai.fail_next(401, message=f"Incorrect API key provided: {KEY}")
        with pytest.raises(openai.AuthenticationError):
            ask(keyed, temperature=0.9)
    sent = fake_openai.requests
    assert sent[0].headers["authorization"] == f"Bearer {HEADER_KEY}" and sent[0].query["key"] == QUERY_KEY
    assert sent[0].headers["x-custom-auth"] == HEADER_KEY and sent[0].headers["api-key"] == HEADER_KEY
    assert sent[1].headers["authorization"] == f"Bearer {ENV_KEY}"
    files = recordings_in(workdir)
    assert len(files) == 3
    written = b"".join(path.read_bytes() for path in files)
    for secret in (KEY, ENV_KEY, HEADER_KEY, BODY_KEY, QUERY_KEY, CUSTOM, "DISTINCTIVE", "FAKEKEY"):
        assert secret.encode() not in written, secret
    assert b"<redacted>" in written

    # Scrubbed before hashing: the same calls made with other keys replay.
    fake_openai.stop()
    other = openai.OpenAI(base_url=fake_openai.url, api_key="sk-another-key-000000000000000", max_retries=0)
    with api_recorder.recording("replay", redact=redact):
        replayed = ask(
            other,
            extra_body={"api_key": "tvly-other-key-1111111111", "metadata": {"ticket": "ACME-1"}},
            extra_query={"key": "other"},
        )
        vector = other.embeddings.create(
            model="text-embedding-3-small", input="my key is sk-xxxxxxxxxxxxxxxxxxxx1", dimensions=4
        )
    assert type(replayed) is ChatCompletion
    assert len(vector.data[0].embedding) == 4


# -- safe rehydration ----------------------------------------------------------------------


def write_recording(path, body, *, is_streaming=False, request=None, **response):
    document = {
        "test_id": None,
        "request": request or {"method": "POST", "url": "http://x/v1/v1/chat/completions", "body": {}},
        "response": {"body": body, "is_streaming": is_streaming, **response},
    }
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    "type_name", ["os.system", "subprocess.Popen", "builtins.eval", "evil_package_xyz.Payload", "openai.OpenAI"]
)
def test_types_outside_the_allow_list_are_refused_and_nothing_is_imported(tmp_path, type_name):
    path = write_recording(tmp_path / "evil.json", {"__type__": type_name, "__data__": {"args": ["echo pwned"]}})
    before = set(sys.modules)
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        api_recorder.load_recording(path).response.body  # noqa: B018
    assert str(path) in str(caught.value)
    assert repr(type_name) in str(caught.value)
    assert "evil_package_xyz" not in sys.modules
    assert set(sys.modules) - before <= {"openai"}


def test_a_type_missing_from_the_installed_sdk_names_both_versions(tmp_path):
    request = {"method": "POST", "url": "u", "body": {}, "provider_metadata": {"openai_sdk_version": "0.9.9"}}
    path = write_recording(
        tmp_path / "old.json", {"__type__": "openai.types.chat.GoneCompletion", "__data__": {}}, request=request
    )
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        api_recorder.load_recording(path).response.body  # noqa: B018
    message = str(caught.value)
    assert "openai.types.chat.GoneCompletion" in message and str(path) in message
    assert "recorded with openai 0.9.9" in message and f"openai {openai.__version__} is installed" in message
    assert "re-record" in message.lower()


def test_a_registered_class_whose_fields_changed_names_the_field(tmp_path):
    from pydantic import BaseModel

    class Invoice(BaseModel):
        total: float

    api_recorder.register_type(Invoice)
    name = f"{Invoice.__module__}.{Invoice.__qualname__}"
    good = write_recording(tmp_path / "good.json", {"__type__": name, "__data__": {"total": 3.5}})
    assert api_recorder.load_recording(good).response.body == Invoice(total=3.5)
    bad = write_recording(tmp_path / "bad.json", {"__type__": name, "__data__": {"amount": 3.5}})
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        api_recorder.load_recording(bad).response.body  # noqa: B018
    assert "'total'" in str(caught.value) and str(bad) in str(caught.value) and "re-record" in str(caught.value)


# -- recorded errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, "BadRequestError"), (429, "RateLimitError"), (500, "InternalServerError")],
)
def test_api_errors_replay_as_the_same_exception(status, error_class, workdir, fake_openai):
    client = fake_openai.client()
    fake_openai.fail_next(status, message=f"injected {status}")
    with api_recorder.recording("record"), pytest.raises(getattr(openai, error_class)) as live:
        ask(client)
    (path,) = recordings_in(workdir)
    response = read_json(path)["response"]
    assert response["is_exception"] is True
    assert response["exception_data"]["type"] == error_class
    assert response["exception_data"]["status_code"] == status
    assert response["exception_message"] == str(live.value)
    fake_openai.stop()
    with api_recorder.recording("replay"), pytest.raises(getattr(openai, error_class)) as replayed:
        ask(client)
    assert type(replayed.value) is type(live.value)
    assert replayed.value.status_code == status
    assert str(replayed.value) == str(live.value)
    assert replayed.value.body == live.value.body


def test_a_retried_call_that_succeeds_replays_as_the_success(workdir, fake_openai):
    client = fake_openai.client(max_retries=2)
    fake_openai.fail_next(500, count=1)
    with api_recorder.recording("record"):
        live = ask(client)
    assert fake_openai.request_count == 2
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed = ask(client)
    assert replayed.choices[0].message.content == live.choices[0].message.content


def test_a_call_failing_after_retries_replays_the_error(workdir, fake_openai):
    client = fake_openai.client(max_retries=2)
    fake_openai.fail_next(429, count=3)
    with api_recorder.recording("record"), pytest.raises(openai.RateLimitError):
        ask(client)
    assert fake_openai.request_count == 3
    fake_openai.stop()
    with api_recorder.recording("replay"), pytest.raises(openai.RateLimitError):
        ask(client)


def test_connection_errors_replay(workdir):
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with api_recorder.recording("record"), pytest.raises(openai.APIConnectionError):
        ask(client)
    with api_recorder.recording("replay"), pytest.raises(openai.APIConnectionError):
        ask(client)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_error_mid_stream_replays_after_the_same_chunks(is_async, workdir, fake_openai):
    async def consume_async(client):
        seen = []
        try:
            async for chunk in await ask(client, stream=True, max_tokens=10):
                seen.append(chunk.choices[0].delta.content)
        except openai.APIError as error:
            return seen, type(error), str(error)
        return seen, None, None

    def consume(client):
        if is_async:
            return asyncio.run(consume_async(fake_openai.async_client()))
        seen = []
        try:
            for chunk in ask(client, stream=True, max_tokens=10):
                seen.append(chunk.choices[0].delta.content)
        except openai.APIError as error:
            return seen, type(error), str(error)
        return seen, None, None

    fake_openai.fail_mid_stream(after_chunks=3)
    with api_recorder.recording("record"):
        live = consume(fake_openai.client())
    assert len(live[0]) == 3 and live[1] is openai.APIError
    (path,) = recordings_in(workdir)
    response = read_json(path)["response"]
    assert len(response["body"]) == 3 and response["is_exception"] is True
    fake_openai.stop()
    with api_recorder.recording("replay"):
        assert consume(fake_openai.client()) == live


def test_tool_errors_replay(workdir, fake_tavily):
    from tavily.errors import UsageLimitExceededError

    fake_tavily.fail_next(429, message="slow down")
    with api_recorder.recording("record"), pytest.raises(UsageLimitExceededError, match="slow down"):
        fake_tavily.client().search("anything")
    fake_tavily.stop()
    with api_recorder.recording("replay"), pytest.raises(UsageLimitExceededError, match="slow down"):
        fake_tavily.client().search("anything")


def answered_with(response, folder, client):
    """Record one chat, then make its recording hold ``response``, as another recorder wrote it."""
    with api_recorder.recording("record", recording_dir=folder):
        ask(client)
    (path,) = recordings_in(folder)
    document = read_json(path)
    document["response"] = response
    path.write_text(json.dumps(document))


def test_llama_stack_recorded_errors_replay(tmp_path, fake_openai):
    client = fake_openai.client()
    response = {
        "body": None,
        "is_streaming": False,
        "is_exception": True,
        "exception_data": {
            "category": "provider_sdk",
            "provider": "openai",
            "type": "RateLimitError",
            "message": "Error code: 429 - quota",
            "status_code": 429,
            "body": {"error": {"message": "quota"}},
        },
        "exception_message": "Error code: 429 - quota",
    }
    answered_with(response, tmp_path, client)
    with api_recorder.recording("replay", recording_dir=tmp_path), pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    assert caught.value.status_code == 429 and caught.value.body == {"error": {"message": "quota"}}


@api_recorder.register_type
class QuotaExceeded(Exception):
    """A library's error that takes a message only, and carries a status and a body as attributes."""

    def __init__(self, message):
        super().__init__(message)
        self.status_code = None
        self.body = None


@api_recorder.tool(provider="billing")
def charge(amount: int) -> dict:
    error = QuotaExceeded(f"cannot charge {amount}")
    error.status_code, error.body = 402, {"error": {"code": "quota", "limit": 100}}
    raise error


def test_registered_errors_keep_their_status_and_body(workdir):
    with api_recorder.recording("record"), pytest.raises(QuotaExceeded) as live:
        charge(500)
    with api_recorder.recording("replay"), pytest.raises(QuotaExceeded) as replayed:
        charge(500)
    assert type(replayed.value) is QuotaExceeded
    assert str(replayed.value) == str(live.value) == "cannot charge 500"
    assert replayed.value.status_code == 402
    assert replayed.value.body == {"error": {"code": "quota", "limit": 100}}


def test_llama_stacks_legacy_errors_replay_with_its_message(tmp_path, fake_openai):
    """The legacy format has only ``exception_message``; llama-stack raises Exception(message)."""
    client = fake_openai.client()
    legacy = {
        "body": None,
        "is_streaming": False,
        "is_exception": True,
        "exception_message": "Connection error: upstream closed",
    }
    answered_with(legacy, tmp_path, client)
    with api_recorder.recording("replay", recording_dir=tmp_path), pytest.raises(Exception) as caught:
        ask(client)
    assert str(caught.value) == "Connection error: upstream closed"
    assert isinstance(caught.value, RuntimeError) and "Exception" in repr(caught.value)


# -- bad files and missing recordings ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"", "truncated"),
        (b'{"test_id": "t", "request": {"body": {}}, "response": {"body": [1, 2', "truncated"),
        (b"not json at all", "not JSON"),
        (b'["a", "list"]', "not a recording file"),
        (b'{"request": {}, "response": {"body": {}, "is_streaming": "yes"}}', "not a recording file"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, what):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        api_recorder.load_recording(path).response.body  # noqa: B018
    assert str(path) in str(caught.value)
    assert what.split()[0] in str(caught.value) or "not a readable recording" in str(caught.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_recordings_load_or_raise_the_library_error(tmp_path, data):
    original = SEED.read_bytes()
    mutation = data.draw(st.sampled_from(["truncate", "flip", "splice", "retype"]))
    if mutation == "truncate":
        mutated = original[: data.draw(st.integers(0, len(original)))]
    elif mutation == "flip":
        position = data.draw(st.integers(0, len(original) - 1))
        mutated = original[:position] + bytes([data.draw(st.integers(0, 255))]) + original[position + 1 :]
    elif mutation == "splice":
        start = data.draw(st.integers(0, len(original)))
        mutated = original[:start] + data.draw(st.binary(max_size=40)) + original[start:]
    else:
        document = json.loads(original)
        junk = data.draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=10),
                st.lists(st.integers(), max_size=3),
                st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
            )
        )
        target = data.draw(st.sampled_from(["request", "response", "body", "chunk", "type", "data", "streaming"]))
        if target == "request":
            document["request"] = junk
        elif target == "response":
            document["response"] = junk
        elif target == "body":
            document["response"]["body"] = junk
        elif target == "chunk":
            document["response"]["body"][0] = junk
        elif target == "type":
            document["response"]["body"][0]["__type__"] = junk
        elif target == "data":
            document["response"]["body"][0]["__data__"] = junk
        else:
            document["response"]["is_streaming"] = junk
        mutated = json.dumps(document).encode()
    path = tmp_path / "fuzzed.json"
    path.write_bytes(mutated)
    try:
        recording = api_recorder.load_recording(path)
        recording.response.body  # noqa: B018
        recording.response.error()
    except api_recorder.ApiRecorderError:
        pass


def test_not_found_shows_the_nearest_recording_and_what_changed(workdir, fake_openai):
    client = fake_openai.client()
    test_id = "tests/n/test_near.py::test_near"
    with api_recorder.recording("record"), api_recorder.test_context(test_id):
        ask(client, temperature=0.2)
        client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=4)
    with api_recorder.recording("replay"), api_recorder.test_context(test_id):
        with pytest.raises(api_recorder.RecordingNotFoundError) as changed:
            ask(client, temperature=0.3)
    message = str(changed.value)
    assert "1 recording(s) of this endpoint, but none matches" in message
    assert '-  "temperature": 0.2' in message and '+  "temperature": 0.3' in message
    with api_recorder.recording("replay"), api_recorder.test_context("tests/n/test_near.py::test_new"):
        with pytest.raises(api_recorder.RecordingNotFoundError) as new:
            ask(client, temperature=0.3)
    assert "no recording for this test at all" in str(new.value)


# -- repeated calls ------------------------------------------------------------------------

JOB_STATES = iter([])


@api_recorder.tool(provider="jobs")
def job_status(job_id: str) -> dict:
    return {"job": job_id, "state": next(JOB_STATES)}


def poll(job_id):
    states = []
    while True:
        states.append(job_status(job_id)["state"])
        if states[-1] == "done":
            return states


def test_polling_replays_the_answers_in_recorded_order(workdir):
    global JOB_STATES
    JOB_STATES = iter(["queued", "running", "running", "done"])
    with api_recorder.recording("record"):
        live = poll("j1")
    (path,) = recordings_in(workdir)
    document = read_json(path)
    assert document["response"]["body"]["state"] == "queued"
    assert [r["body"]["state"] for r in document["more_responses"]] == ["running", "running", "done"]
    JOB_STATES = iter([])  # nothing runs on replay
    with api_recorder.recording("replay"):
        assert poll("j1") == live == ["queued", "running", "running", "done"]


@pytest.mark.parametrize(
    "states",
    [
        ["pending", "pending", "done"],
        ["pending", "pending", "pending", "running", "running", "done"],
        ["queued", "done"],
    ],
)
def test_repeated_equal_answers_are_kept_before_a_different_one(workdir, states):
    global JOB_STATES
    JOB_STATES = iter(states)
    with api_recorder.recording("record"):
        assert poll("j2") == states
    (path,) = recordings_in(workdir)
    document = read_json(path)
    stored = [document["response"], *document["more_responses"]]
    assert [answer["body"]["state"] for answer in stored] == states
    JOB_STATES = iter([])
    with api_recorder.recording("replay"):
        assert poll("j2") == states


def test_errors_then_an_answer_replay_in_order_through_the_sdk(workdir, fake_openai):
    """Retried by hand: 429, 429, then the answer. Replay gives the same three outcomes."""
    client = fake_openai.client()

    def three_tries():
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(type(ask(client)).__name__)
            except openai.RateLimitError as error:
                outcomes.append(f"{type(error).__name__} {error.status_code}")
        return outcomes

    fake_openai.fail_next(429, count=2, message="slow down")
    with api_recorder.recording("record"):
        live = three_tries()
    assert live == ["RateLimitError 429", "RateLimitError 429", "ChatCompletion"]
    fake_openai.stop()
    with api_recorder.recording("replay"):
        assert three_tries() == live


def test_equal_answers_keep_the_single_answer_layout(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        first, second = ask(client), ask(client)
    assert first.id != second.id  # live ids differ, stored ones do not
    (path,) = recordings_in(workdir)
    assert "more_responses" not in read_json(path)


# -- no network in replay ------------------------------------------------------------------


def test_uncovered_calls_fail_fast_in_replay(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("replay"):
        with pytest.raises(api_recorder.UnsupportedCallError, match="GET /files"):
            client.files.list()
        with pytest.raises(api_recorder.UnsupportedCallError):
            asyncio.run(fake_openai.async_client().batches.retrieve("batch_1"))
    with api_recorder.recording("replay", passthrough=[fake_openai.base_url]):
        client.models.list()  # the server under test: passed through
    assert [r.path for r in fake_openai.requests] == ["/v1/models"]


BLOCKED_SUITE = """
import socket
import pytest
from api_recorder.network import NetworkBlockedError

def test_remote_refused():
    with pytest.raises(NetworkBlockedError, match="--block-network"):
        socket.create_connection(("0.0.0.0", 9), timeout=1)
    with pytest.raises(NetworkBlockedError):
        socket.socket().connect_ex(("example.invalid", 80))

def test_loopback_allowed():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    socket.create_connection(listener.getsockname(), timeout=1).close()
    listener.close()
"""


def test_block_network_flag_refuses_non_loopback_sockets(pytester):
    pytester.makepyfile(test_blocked=BLOCKED_SUITE)
    pytester.runpytest("--block-network", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    unblocked = pytester.runpytest("-p", "no:cacheprovider", "-k", "remote")
    unblocked.assert_outcomes(failed=1)
    assert RECORDER.enabled is False


def test_a_failed_model_list_replays_its_error(workdir, fake_openai):
    client = fake_openai.client()
    fake_openai.fail_next(500, message="models are down")
    with api_recorder.recording("record"), pytest.raises(openai.InternalServerError):
        client.models.list()
    fake_openai.stop()
    with api_recorder.recording("replay"), pytest.raises(openai.InternalServerError, match="models are down"):
        client.models.list()
