"""``import api_recorder`` and ``enable()`` load the engine only once an SDK is imported (issue 15).

Each case runs in a fresh interpreter, as a user's process (a server started by a test, a worker)
would: the engine's modules must be absent until then, the settings of ``enable()`` applied when
they load, and every check ``enable()`` makes still raised at once.
"""

from __future__ import annotations

import json

import pytest

from helpers import read_json, recordings_in, run_python

pytest.importorskip("openai")

ENGINE_MODULES = ("api_recorder.recorder", "api_recorder.storage", "api_recorder.envelopes", "msgspec", "wrapt")

DEFERRED = """
import json, os, sys
import api_recorder
api_recorder.enable({mode!r}, "recs")
loaded_before = [name for name in {engine!r} if name in sys.modules]
import openai
client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-deferred", max_retries=0)
answer = client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "deferred"}}])
print(json.dumps({{"before": loaded_before, "mode": str(api_recorder.current_mode()),
                   "answer": answer.choices[0].message.content, "class": type(answer).__name__}}))
"""


def run(code, cwd, **env):
    result = run_python(code, cwd, **env)
    assert result.returncode == 0, result.stderr
    return result


def test_enable_before_the_sdk_loads_no_engine_and_records_then_replays(tmp_path, fake_openai):
    env = {"FAKE_OPENAI_URL": fake_openai.url}
    live = json.loads(run(DEFERRED.format(mode="record", engine=ENGINE_MODULES), tmp_path, **env).stdout)
    assert live["before"] == [] and live["mode"] == "record" and live["class"] == "ChatCompletion"
    (path,) = recordings_in(tmp_path / "recs")
    assert read_json(path)["request"]["body"]["messages"][0]["content"] == "deferred"

    fake_openai.stop()  # replay: no server
    replayed = json.loads(run(DEFERRED.format(mode="replay", engine=ENGINE_MODULES), tmp_path, **env).stdout)
    assert replayed == {**live, "mode": "replay"}


@pytest.mark.parametrize(
    ("call", "env", "error"),
    [
        ("api_recorder.enable('replya')", {}, "InvalidModeError"),
        ("api_recorder.enable()", {"LLAMA_STACK_TEST_INFERENCE_MODE": "recrod"}, "InvalidModeError"),
        (
            "api_recorder.enable()",
            {"LLAMA_STACK_TEST_INFERENCE_MODE": "replay", "OGX_TEST_INFERENCE_MODE": "record"},
            "ConflictingSettingsError",
        ),
        ("api_recorder.enable(redact=['(unclosed'])", {}, "error"),
    ],
)
def test_enable_still_refuses_bad_settings_at_once(tmp_path, call, env, error):
    code = (
        "import sys, api_recorder\n"
        f"try:\n    {call}\nexcept Exception as exc:\n    print(type(exc).__name__)\nelse:\n    print('accepted')\n"
    )
    result = run(code, tmp_path, API_RECORDER_AUTO="0", **env)
    assert result.stdout.strip() == error, result.stdout + result.stderr


def test_deferred_calls_apply_in_order_with_the_directory_and_folder_of_their_time(tmp_path, fake_openai):
    """Two enable() calls before the SDK: the last wins, and a relative recording dir is resolved
    against the working directory at the time of the call, as when the engine was loaded."""
    (tmp_path / "elsewhere").mkdir()
    code = f"""
import os, sys
import api_recorder
api_recorder.enable("replay", "first")
os.environ["LLAMA_STACK_TEST_RECORDING_DIR"] = "second"
api_recorder.enable("record")
os.chdir("elsewhere")
assert "api_recorder.recorder" not in sys.modules
import openai
client = openai.OpenAI(base_url={fake_openai.url!r}, api_key="sk-deferred", max_retries=0)
client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "where"}}])
print(api_recorder.current_mode())
"""
    assert run(code, tmp_path).stdout.strip() == "record"
    assert len(recordings_in(tmp_path / "second")) == 1
    assert not (tmp_path / "first").exists() and not (tmp_path / "elsewhere" / "second").exists()


def test_importing_api_recorder_after_the_sdk_arms_at_once(tmp_path, fake_openai):
    """An SDK imported first: the engine loads with api_recorder, and wraps it, as before."""
    code = """
import sys
import openai, api_recorder
from openai.resources.chat.completions.completions import Completions
print("api_recorder.recorder" in sys.modules, type(Completions.__dict__["create"]).__name__)
"""
    assert run(code, tmp_path).stdout.split() == ["True", "FunctionWrapper"]


def test_a_find_spec_probe_does_not_load_the_engine(tmp_path):
    code = """
import importlib.util, sys
import api_recorder
api_recorder.enable("replay")
importlib.util.find_spec("openai")
print("api_recorder.recorder" in sys.modules)
"""
    assert run(code, tmp_path).stdout.strip() == "False"
