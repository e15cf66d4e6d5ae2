"""Wrapped whenever the SDK is really imported, and methods kept from before enable() recorded too.

Libraries probe for the SDK before importing it (``find_spec``), import it lazily, or keep
``client.chat.completions.create`` from import time; test harnesses re-import modules. Each case
runs in a fresh interpreter, as a user's process would.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ENV_NAMES
from helpers import read_json, recordings_in

pytest.importorskip("openai")

WRAPPED = """
from openai.resources.chat.completions.completions import Completions
print("wrapped" if type(Completions.__dict__["create"]).__name__ == "FunctionWrapper" else "bare")
"""


def run_python(code, cwd, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("API_RECORDER_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


PROBING_LIBRARY = """
import importlib.util, os, sys

HAS_OPENAI = importlib.util.find_spec("openai") is not None   # the probe, before any import
assert "api_recorder" not in sys.modules

def ask():
    import openai
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-probe", max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "probe"}])

print(HAS_OPENAI, ask().choices[0].message.content)
"""


def test_a_find_spec_probe_before_the_import_does_not_defeat_auto_activation(tmp_path, fake_openai):
    env = {"FAKE_OPENAI_URL": fake_openai.url, "LLAMA_STACK_TEST_RECORDING_DIR": str(tmp_path / "recs")}
    live = run_python(PROBING_LIBRARY, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="record", **env)
    (path,) = recordings_in(tmp_path / "recs")
    assert read_json(path)["request"]["body"]["messages"][0]["content"] == "probe"
    fake_openai.stop()
    replayed = run_python(PROBING_LIBRARY, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="replay", **env)
    assert replayed.stdout == live.stdout and live.stdout.startswith("True ")


@pytest.mark.parametrize(
    "importing",
    [
        "import importlib; importlib.import_module('openai')",
        "import importlib.util; importlib.util.find_spec('openai'); importlib.util.find_spec('openai'); import openai",
        # the lazy-import recipe of importlib's documentation: the module runs on first attribute access
        "import importlib.util, sys\n"
        "spec = importlib.util.find_spec('openai')\n"
        "spec.loader = importlib.util.LazyLoader(spec.loader)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['openai'] = module\n"
        "spec.loader.exec_module(module)\n"
        "module.OpenAI",
    ],
    ids=["import_module", "probes", "lazy-loader"],
)
def test_auto_activation_wraps_however_the_sdk_is_imported(tmp_path, importing):
    result = run_python(importing + "\n" + WRAPPED, tmp_path, LLAMA_STACK_TEST_INFERENCE_MODE="replay")
    assert result.stdout.split() == ["wrapped"]


REIMPORT = """
import sys
import api_recorder
api_recorder.enable("replay")
import openai
from openai.resources.chat.completions.completions import Completions as First
for name in [name for name in sys.modules if name == "openai" or name.startswith("openai.")]:
    del sys.modules[name]   # as a harness that restores sys.modules does
import openai
from openai.resources.chat.completions.completions import Completions as Second
kinds = {type(cls.__dict__["create"]).__name__ for cls in (First, Second)}
print(First is not Second, kinds == {"FunctionWrapper"})
"""


def test_an_sdk_imported_anew_is_wrapped_anew(tmp_path):
    assert run_python(REIMPORT, tmp_path).stdout.split() == ["True", "True"]


KEPT_METHOD = """
import os, sys, warnings
{first}
import openai
client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-kept", max_retries=0)
create = client.chat.completions.create      # what a library keeps at import time
{then}
with api_recorder.recording(sys.argv[1], "recs"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            answer = create(model="gpt-4o", messages=[{{"role": "user", "content": "kept"}}])
            print("answer", answer.choices[0].message.content)
        except api_recorder.ApiRecorderError as error:
            print("error", error)
    for warning in caught:
        print("warning", warning.message)
"""


def kept_method(tmp_path, mode, *, import_first):
    code = KEPT_METHOD.format(
        first="import api_recorder" if import_first else "",
        then="" if import_first else "import api_recorder",
    )
    return subprocess.run(
        [sys.executable, "-c", code, mode],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("API_RECORDER_")}
        | {"FAKE_OPENAI_URL": os.environ["FAKE_OPENAI_URL"]},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_method_kept_from_before_recording_started_is_recorded_and_replayed(tmp_path, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    recorded = kept_method(tmp_path, "record", import_first=True)
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("answer ") and "warning" not in recorded.stdout
    assert len(recordings_in(tmp_path / "recs")) == 1
    fake_openai.stop()
    replayed = kept_method(tmp_path, "replay", import_first=True)
    assert replayed.stdout == recorded.stdout


def test_a_method_kept_from_before_api_recorder_was_imported_names_the_cause(tmp_path, fake_openai, monkeypatch):
    """The one case that cannot be covered: the method was looked up before the wrappers existed."""
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    recorded = kept_method(tmp_path, "record", import_first=False)
    assert recorded.stdout.startswith("answer ")
    assert "warning POST /chat/completions is a call api-recorder records" in recorded.stdout
    assert "looked up" in recorded.stdout and "This call was not recorded." in recorded.stdout
    assert recordings_in(tmp_path / "recs") == []
    requests = fake_openai.request_count
    replayed = kept_method(tmp_path, "replay", import_first=False)
    assert replayed.stdout.startswith("error POST /chat/completions is a call api-recorder records")
    assert "import api_recorder" in replayed.stdout
    assert fake_openai.request_count == requests


def test_the_boot_hook_watches_every_integrated_sdk():
    """Auto-activation starts on the import of any SDK the catalog integrates, not only openai."""
    import _api_recorder_boot
    from api_recorder.integrations import BUILTINS

    assert set(_api_recorder_boot.WATCHED) == {builtin.package for builtin in BUILTINS}
