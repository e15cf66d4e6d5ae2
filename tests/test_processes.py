"""Every process, every worker: auto-activation, a server in a subprocess, pytest-xdist, threads."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest

import api_recorder
from api_recorder.context import TEST_ID_HEADER
from helpers import REPO, clean_env, read_json, recordings_in, run_python

openai = pytest.importorskip("openai")


# -- auto-activation ------------------------------------------------------------------------

PROBE = """
import sys
before = "api_recorder" in sys.modules
import openai
from openai.resources.chat.completions.completions import Completions
print(before, "api_recorder" in sys.modules, type(Completions.__dict__["create"]).__name__ == "FunctionWrapper")
"""


def test_without_the_variable_nothing_is_imported_or_wrapped(tmp_path):
    result = run_python(PROBE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]
    assert result.stderr == ""


def test_with_the_variable_openai_is_wrapped_on_import_and_not_before(tmp_path):
    result = run_python(PROBE, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="replay")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]


def test_auto_activation_can_be_switched_off(tmp_path):
    result = run_python(PROBE, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="replay", API_RECORDER_AUTO="0")
    assert result.stdout.split() == ["False", "False", "False"]


def test_a_failing_activation_warns_once_and_the_process_goes_on(tmp_path):
    result = run_python(
        PROBE + "import api_recorder; print(api_recorder.current_mode())\n",
        tmp_path,
        LLAMA_STACK_TEST_INFERENCE_MODE="sideways",
    )
    assert result.returncode == 0
    # api-recorder was imported, so the SDK is wrapped, but nothing is recorded or replayed
    assert result.stdout.split() == ["False", "True", "True", "live"]
    assert result.stderr.count("api-recorder:") == 1
    assert "sideways" in result.stderr and "API_RECORDER_AUTO=0" in result.stderr


def test_a_subprocess_records_into_the_test_that_started_it(tmp_path, fake_openai):
    code = (
        "import openai, os\n"
        "client = openai.OpenAI(base_url=os.environ['FAKE_OPENAI_URL'], api_key='sk-sub', max_retries=0)\n"
        "print(client.chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'hi'}]).id)\n"
    )
    test_id = "tests/sub/test_spawn.py::test_child"
    env = {"FAKE_OPENAI_URL": fake_openai.url, "API_RECORDER_TEST_ID": test_id}
    recorded = run_python(code, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="record", **env)
    assert recorded.returncode == 0, recorded.stderr
    (path,) = recordings_in(tmp_path / "tests" / "sub" / "recordings")
    assert read_json(path)["test_id"] == test_id
    fake_openai.stop()
    replayed = run_python(code, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="replay", **env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"rec-{path.stem[:12]}"


# -- server mode ----------------------------------------------------------------------------


@contextmanager
def app_server(cwd, mode, fake_url):
    """The app under test, served by a real uvicorn in a subprocess started with only the env var.

    The listening socket is made here and handed over (``--fd``): requests queue in it until
    uvicorn accepts them, so nothing waits or polls for start-up.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    env = clean_env(
        LLAMA_STACK_TEST_INFERENCE_MODE=mode,
        FAKE_OPENAI_URL=fake_url,
        PYTHONPATH=os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fakes.app_under_test:app",
            "--fd",
            str(listener.fileno()),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ],
        cwd=cwd,
        env=env,
        pass_fds=[listener.fileno()],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        listener.close()
        assert "Traceback" not in stderr, stderr


TESTS = {
    "tests/alpha/test_a.py::test_capital": "What is the capital of France?",
    "tests/beta/test_b.py::test_river": "Which river runs through Paris?",
}


def ask_app(app_url):
    answers = {}
    client = openai.OpenAI(base_url=app_url, api_key="sk-test", max_retries=0)
    with api_recorder.recording("record", passthrough=[app_url.rsplit("/v1", 1)[0]]):
        for test_id, question in TESTS.items():
            with api_recorder.test_context(test_id):
                reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
            answers[test_id] = reply.choices[0].message.content
    return answers


def test_a_server_in_another_process_records_into_each_calling_test(workdir, fake_openai):
    with app_server(workdir, "record", fake_openai.url) as app_url:
        live = ask_app(app_url)
    assert fake_openai.request_count == 2
    assert [r.headers.get("x-api-recorder-test-id") for r in fake_openai.requests] == list(TESTS)
    for test_id in TESTS:
        folder = workdir / test_id.split("::")[0].rsplit("/", 1)[0] / "recordings"
        (path,) = recordings_in(folder)
        assert read_json(path)["test_id"] == test_id
    assert len(recordings_in(workdir)) == 2  # the passthrough client itself recorded nothing

    fake_openai.stop()
    with app_server(workdir, "replay", fake_openai.url) as app_url:
        replayed = ask_app(app_url)
    assert replayed == live
    assert fake_openai.request_count == 2


def test_llama_stack_provider_data_header_is_honoured():
    from api_recorder.context import test_id_from_headers

    assert test_id_from_headers({"x-llamastack-provider-data": '{"__test_id": "t::1", "k": 1}'}) == "t::1"
    assert test_id_from_headers({"x-api-recorder-test-id": "t::2"}) == "t::2"
    assert test_id_from_headers({"x-llamastack-provider-data": "not json"}) is None
    assert test_id_from_headers({}) is None


def test_wsgi_middleware_sets_the_test_id_per_request():
    from api_recorder.recorder import RECORDER

    seen = []

    def app(environ, start_response):
        seen.append(RECORDER.current_test_id())
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = api_recorder.WSGITestIdMiddleware(app)
    assert list(wrapped({"HTTP_X_API_RECORDER_TEST_ID": "tests/w.py::test_w"}, lambda *a: None)) == [b"ok"]
    wrapped({}, lambda *a: None)
    assert seen == ["tests/w.py::test_w", None]


def test_openai_requests_carry_the_test_id_header_only_in_a_test(workdir, fake_openai):
    client = fake_openai.client()
    test_id = "tests/h/test_h.py::test_h"
    with api_recorder.recording("record"):
        client.models.retrieve("gpt-4o")
        with api_recorder.test_context(test_id):
            client.models.retrieve("gpt-4o-mini")
            assert api_recorder.test_id_headers() == {
                TEST_ID_HEADER: test_id,
                "X-OGX-Provider-Data": json.dumps({"__test_id": test_id}),
                "X-LlamaStack-Provider-Data": json.dumps({"__test_id": test_id}),
            }
    headers = [r.headers.get("x-api-recorder-test-id") for r in fake_openai.requests]
    assert headers == [None, test_id]
    for name in ("x-ogx-provider-data", "x-llamastack-provider-data"):
        assert [r.headers.get(name) for r in fake_openai.requests] == [None, json.dumps({"__test_id": test_id})]


# -- many writers ---------------------------------------------------------------------------

XDIST_SUITE = """
import os, openai, pytest

def client():
    return openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)

@pytest.mark.parametrize("n", range(8))
def test_many(n):
    ids = [m.id for m in client().models.list()]          # the same shared request in every worker
    assert "gpt-4o" in ids
    same = client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "same"}])
    own = client().embeddings.create(model="text-embedding-3-small", input=f"text {n}", dimensions=4)
    assert same.choices[0].message.content.startswith("echo: same")
    assert len(own.data[0].embedding) == 4
"""


def test_xdist_workers_record_the_same_and_different_requests_then_replay(pytester, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    for name in ("LLAMA_STACK_TEST_INFERENCE_MODE", "LLAMA_STACK_TEST_RECORDING_DIR", "API_RECORDER_TEST_ID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_many=XDIST_SUITE)
    result = pytester.runpytest_subprocess("-n", "4", "--inference-mode=record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    files = recordings_in(pytester.path / "recordings")
    models = [p for p in files if p.name.startswith("models-")]
    assert len(models) == 1  # written by up to four workers at once: one whole file
    assert len(files) == 1 + 8 + 8
    for path in files:
        read_json(path)  # every file whole
    assert not [p for p in (pytester.path / "recordings").iterdir() if p.name.startswith(".")]

    fake_openai.stop()
    result = pytester.runpytest_subprocess("-n", "4", "--inference-mode=replay", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_threads_writing_one_file_while_others_read_it(workdir, fake_openai):
    """Writers of the same recording leave one whole file; a reader never sees half of one."""
    client = fake_openai.client()
    with api_recorder.recording("record"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=300)
        (path,) = recordings_in(workdir)
        errors = []
        done = threading.Event()

        def write():
            try:
                for _ in range(5):
                    client.chat.completions.create(
                        model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=300
                    )
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def read():
            reads = 0
            while not done.is_set() or reads < 20:
                try:
                    recording = api_recorder.load_recording(path)
                    assert len(recording.response.body.choices[0].message.content.split()) == 300
                except Exception as exc:
                    errors.append(exc)
                    return
                reads += 1

        writers = [threading.Thread(target=write) for _ in range(4)]
        readers = [threading.Thread(target=read) for _ in range(2)]
        for thread in writers + readers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert recordings_in(workdir) == [path]


@pytest.mark.parametrize("kind", ["httpx2", "httpx", "httpx-async", "requests"])
def test_opted_in_http_clients_send_the_test_id(kind, fake_openai):
    pytest.importorskip(kind.split("-")[0])  # httpx2 comes with openai 3, not with older majors
    url = fake_openai.url + "/models"
    with api_recorder.test_context("tests/h/test_http.py::test_x"):
        if kind == "httpx-async":
            import httpx

            async def call():
                async with api_recorder.propagate_test_id(httpx.AsyncClient()) as client:
                    await client.get(url)

            asyncio.run(call())
        elif kind == "requests":
            import requests

            api_recorder.propagate_test_id(requests.Session()).get(url, timeout=10)
        else:
            module = __import__(kind)
            with api_recorder.propagate_test_id(module.Client()) as client:
                client.get(url)
    assert fake_openai.last_request.headers["x-api-recorder-test-id"] == "tests/h/test_http.py::test_x"


def test_auto_activation_leaves_the_pytest_plugins_settings_alone(pytester, fake_openai, monkeypatch):
    """The env var says record, the flag says replay: the flag wins even if openai is imported late."""
    monkeypatch.setenv("LLAMA_STACK_TEST_INFERENCE_MODE", "record")
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    pytester.makepyfile(
        test_late="""
def test_late_import():
    import os, openai, pytest, api_recorder
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)
    with pytest.raises(api_recorder.RecordingNotFoundError):
        client.models.retrieve("gpt-4o")
"""
    )
    result = pytester.runpytest_subprocess("--inference-mode=replay", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert fake_openai.request_count == 0
