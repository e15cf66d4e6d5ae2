"""``api-recorder run``: recording and replay where no ``.pth`` file is read, via sitecustomize.

The real case is built once per session: api-recorder installed with ``pip install --target``, a
fresh venv whose site-packages is empty, and ``PYTHONPATH`` = [a folder with the user's own
``sitecustomize.py``, the target folder, the dev venv's site-packages for openai and the rest].
PYTHONPATH entries are not site dirs, so no ``.pth`` there runs: a control run shows nothing is
recorded without ``api-recorder run``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from api_recorder.errors import ConflictingSettingsError, InvalidModeError
from api_recorder.launcher import LaunchError, bootstrap_dir, launch_environment, prepend_path, run
from api_recorder.modes import MODE_ENV, RECORDING_DIR_ENV
from helpers import REPO, read_json, recordings_in

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the isolated interpreter is laid out for POSIX")

openai = pytest.importorskip("openai")
pytest.importorskip("typer")

USER_SITECUSTOMIZE = """\
import sys
MARKER = "user sitecustomize ran"
sys.stderr.write(MARKER + "\\n")
"""

CALL = """\
import json, os, sys
activated = "api_recorder" in sys.modules  # before openai: nothing imported it yet
import openai
activated_on_import = "api_recorder" in sys.modules
client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-launcher", max_retries=0)
reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi from run"}])
import api_recorder, sitecustomize
print(json.dumps({
    "before_openai": activated,
    "after_openai": activated_on_import,
    "api_recorder": api_recorder.__file__,
    "type": type(reply).__module__ + "." + type(reply).__name__,
    "content": reply.choices[0].message.content,
    "sitecustomize": sitecustomize.__file__,
    "marker": getattr(sitecustomize, "MARKER", None),
    "path": sys.path,
}))
"""


@dataclass
class Isolated:
    """An interpreter that reads no .pth file of api-recorder's, and the folders on its PYTHONPATH."""

    python: str
    target: Path
    usersite: Path
    devsite: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLAMA_STACK_TEST_", "OGX_TEST_", "API_RECORDER_", "PYTHON", "VIRTUAL_ENV"))
        }
        env["PYTHONPATH"] = os.pathsep.join(map(str, [self.usersite, self.target, self.devsite]))
        env.update(extra)
        return env

    def python_c(self, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return self.call([self.python, "-c", code], cwd, **env)

    def launch(self, options: list[str], command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        """``python -m api_recorder run OPTIONS -- COMMAND``, the launcher itself run the isolated way."""
        return self.call([self.python, "-m", "api_recorder", "run", *options, "--", *command], cwd, **env)

    def call(self, argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=cwd, env=self.env(**env), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def isolated(tmp_path_factory) -> Isolated:
    root = tmp_path_factory.mktemp("launcher")
    target = root / "target"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(target)]
    if importlib.util.find_spec("hatchling") is not None:
        install.append("--no-build-isolation")  # else pip fetches hatchling into an isolated build env
    built = subprocess.run([*install, str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"pip install --target failed:\n{built.stdout}\n{built.stderr}"
    created = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "env")], capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    usersite = root / "usersite"
    usersite.mkdir()
    (usersite / "sitecustomize.py").write_text(USER_SITECUSTOMIZE)
    return Isolated(
        python=str(root / "env" / "bin" / "python"),
        target=target,
        usersite=usersite,
        devsite=Path(sysconfig.get_paths()["purelib"]),
    )


def output_of(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def bootstrap_of(isolated: Isolated) -> str:
    return str(isolated.target / "api_recorder" / "bootstrap")


# -- for real: record, then replay with the server gone --------------------------------------


def test_without_run_the_isolated_interpreter_records_nothing(isolated, fake_openai, tmp_path):
    """The control: the mode variable alone does nothing here, so what follows proves the launcher."""
    result = isolated.python_c(
        CALL,
        tmp_path,
        FAKE_OPENAI_URL=fake_openai.url,
        LLAMA_STACK_TEST_INFERENCE_MODE="record",
        LLAMA_STACK_TEST_RECORDING_DIR=str(tmp_path / "recs"),
    )
    out = output_of(result)
    assert (out["before_openai"], out["after_openai"]) == (False, False)
    assert out["api_recorder"].startswith(str(isolated.target))
    assert out["marker"] == "user sitecustomize ran"  # Python's own sitecustomize handling, untouched
    assert fake_openai.request_count == 1
    assert recordings_in(tmp_path) == []


def test_run_records_then_replays_without_the_network_and_chains_the_users_sitecustomize(
    isolated, fake_openai, tmp_path
):
    recs = tmp_path / "recs"
    command = [isolated.python, "-c", CALL]
    recorded = isolated.launch(
        ["--mode", "record", "--recording-dir", str(recs)], command, tmp_path, FAKE_OPENAI_URL=fake_openai.url
    )
    live = output_of(recorded)
    assert (live["before_openai"], live["after_openai"]) == (False, True)  # activated on openai's import
    assert live["api_recorder"].startswith(str(isolated.target) + os.sep)
    assert live["type"] == "openai.types.chat.chat_completion.ChatCompletion"
    assert fake_openai.request_count == 1
    (path,) = recordings_in(recs)
    document = read_json(path)
    assert document["request"]["body"]["messages"] == [{"role": "user", "content": "hi from run"}]
    assert live["content"] in json.dumps(document["response"])

    # the user's sitecustomize ran in the command (its module is `sitecustomize`), after ours
    assert live["marker"] == "user sitecustomize ran"
    assert live["sitecustomize"] == str(isolated.usersite / "sitecustomize.py")
    assert recorded.stderr.count("user sitecustomize ran") == 2  # the launcher's interpreter, then the command's
    # and the PYTHONPATH it had is kept, after the bootstrap folder
    order = [bootstrap_of(isolated), str(isolated.usersite), str(isolated.target), str(isolated.devsite)]
    assert [entry for entry in live["path"] if entry in order] == order

    fake_openai.stop()
    replayed = output_of(
        isolated.launch(
            ["--mode", "replay"],
            command,
            tmp_path,
            FAKE_OPENAI_URL=fake_openai.url,
            LLAMA_STACK_TEST_RECORDING_DIR=str(recs),
        )
    )
    assert replayed["type"] == live["type"]
    assert replayed["content"] == live["content"]
    assert replayed["marker"] == "user sitecustomize ran"
    assert fake_openai.request_count == 1  # nothing reached the (stopped) server
    assert recordings_in(recs) == [path]


def test_the_bootstrap_costs_no_sdk_import_and_adds_one_finder(isolated, tmp_path):
    probe = (
        "import sys, _api_recorder_boot as boot\n"
        "print('openai' in sys.modules, 'api_recorder' in sys.modules, sys.meta_path.count(boot.FINDER))"
    )
    result = isolated.launch(["--mode", "replay"], [isolated.python, "-c", probe], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "1"]


def test_with_the_pth_hook_too_activation_happens_once(tmp_path):
    """The dev venv reads api_recorder.pth: the hook and the bootstrap both call install()."""
    probe = (
        "import sys, _api_recorder_boot as boot\n"
        "assert sys.modules['sitecustomize'].__file__.endswith('bootstrap/sitecustomize.py')\n"
        "print(sys.meta_path.count(boot.FINDER))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_STACK_TEST_", "API_RECORDER_"))}
    result = subprocess.run(
        [sys.executable, "-m", "api_recorder", "run", "--mode", "replay", "--", sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]


def test_an_error_in_the_users_sitecustomize_is_reported_as_python_does_and_recording_goes_on(isolated, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text("raise RuntimeError('boom from the user')\n")
    probe = "import sys, openai; print('api_recorder' in sys.modules)"
    pythonpath = os.pathsep.join(map(str, [broken, isolated.target, isolated.devsite]))
    result = isolated.launch(["--mode", "replay"], [isolated.python, "-c", probe], tmp_path, PYTHONPATH=pythonpath)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]
    message = "Error in sitecustomize; set PYTHONVERBOSE for traceback:\nRuntimeError: boom from the user"
    assert result.stderr.count(message) == 2  # the launcher's interpreter, then the command's


def test_the_boot_module_is_loaded_from_beside_the_bootstrap_when_not_importable(isolated, tmp_path):
    """Only the bootstrap folder on the path (the application's packages come later, a zipapp say)."""
    probe = (
        "import sys; boot = sys.modules['_api_recorder_boot']\n"
        "print(boot.__file__, sys.meta_path.count(boot.FINDER), 'api_recorder' in sys.modules)"
    )
    result = isolated.python_c(probe, tmp_path, PYTHONPATH=bootstrap_of(isolated), **{MODE_ENV: "replay"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(isolated.target / "_api_recorder_boot.py"), "1", "False"]
    assert result.stderr == ""


def test_without_any_boot_module_it_warns_once_and_python_goes_on(isolated, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "sitecustomize.py").write_bytes((bootstrap_dir() / "sitecustomize.py").read_bytes())
    result = isolated.python_c("print('still here')", tmp_path, PYTHONPATH=str(lone), **{MODE_ENV: "replay"})
    assert result.returncode == 0
    assert result.stdout.strip() == "still here"
    assert result.stderr.count("api-recorder:") == 1 and "runs unrecorded" in result.stderr
    quiet = isolated.python_c("pass", tmp_path, PYTHONPATH=str(lone), API_RECORDER_AUTO="0", **{MODE_ENV: "replay"})
    assert quiet.stderr == ""


def test_a_missing_command_exits_127_naming_it(isolated, tmp_path):
    result = isolated.launch(["--mode", "replay"], ["api-recorder-no-such-command", "--flag"], tmp_path)
    assert result.returncode == 127
    assert "Command not found: 'api-recorder-no-such-command'" in result.stderr


def test_without_a_mode_the_command_does_not_run(isolated, tmp_path):
    result = isolated.launch([], [isolated.python, "-c", "print('ran')"], tmp_path)
    assert result.returncode == 2
    assert "ran" not in result.stdout
    assert "--mode" in result.stderr and MODE_ENV in result.stderr


def test_the_commands_exit_code_is_the_launchers(isolated, tmp_path):
    result = isolated.launch(["--mode", "replay"], [isolated.python, "-c", "raise SystemExit(7)"], tmp_path)
    assert result.returncode == 7


# -- the environment the launcher builds ----------------------------------------------------


def test_the_bootstrap_folder_holds_only_sitecustomize_and_is_not_a_package():
    folder = bootstrap_dir()
    assert (folder / "sitecustomize.py").is_file()
    assert not (folder / "__init__.py").exists()


def test_the_mode_and_folder_flags_set_the_variables_and_the_bootstrap_goes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    given = {"PATH": "/bin", "PYTHONPATH": os.pathsep.join(["/a", "/b"])}
    env = launch_environment(given, "record_if_missing", "recs")
    assert env[MODE_ENV] == "record-if-missing"
    assert env[RECORDING_DIR_ENV] == str(tmp_path / "recs")  # absolute: the launcher's folder, not the command's
    assert env["PYTHONPATH"].split(os.pathsep) == [str(bootstrap_dir()), "/a", "/b"]
    assert env["PATH"] == "/bin"
    assert given == {"PATH": "/bin", "PYTHONPATH": os.pathsep.join(["/a", "/b"])}  # not changed in place


def test_without_flags_the_inherited_environment_is_used_as_is():
    env = launch_environment({MODE_ENV: "replay", RECORDING_DIR_ENV: "rel/recs"})
    assert env[MODE_ENV] == "replay" and env[RECORDING_DIR_ENV] == "rel/recs"
    assert env["PYTHONPATH"] == str(bootstrap_dir())


def test_the_ogx_names_count_and_the_flags_override_them_too():
    assert launch_environment({"OGX_TEST_INFERENCE_MODE": "replay"})["OGX_TEST_INFERENCE_MODE"] == "replay"
    inherited = {"OGX_TEST_INFERENCE_MODE": "replay", "OGX_TEST_RECORDING_DIR": "/old"}
    env = launch_environment(inherited, "record", "/new")
    assert env[MODE_ENV] == env["OGX_TEST_INFERENCE_MODE"] == "record"
    assert env[RECORDING_DIR_ENV] == env["OGX_TEST_RECORDING_DIR"] == os.path.abspath("/new")


def test_disagreeing_names_are_refused_unless_a_flag_settles_them():
    inherited = {MODE_ENV: "record", "OGX_TEST_INFERENCE_MODE": "replay"}
    with pytest.raises(ConflictingSettingsError, match="OGX_TEST_INFERENCE_MODE"):
        launch_environment(inherited)
    assert launch_environment(inherited, "replay")[MODE_ENV] == "replay"


def test_a_nested_run_does_not_repeat_the_bootstrap_folder():
    once = launch_environment({MODE_ENV: "replay", "PYTHONPATH": "/a"})
    twice = launch_environment(once)
    assert twice["PYTHONPATH"] == once["PYTHONPATH"] == os.pathsep.join([str(bootstrap_dir()), "/a"])
    assert prepend_path("/x", os.pathsep.join(["", "/x", "/y", ""])) == os.pathsep.join(["/x", "/y"])


def test_no_mode_anywhere_is_refused_naming_the_flag_and_the_variable():
    with pytest.raises(LaunchError, match=f"--mode.*{MODE_ENV}"):
        launch_environment({"PATH": "/bin"})
    with pytest.raises(LaunchError):
        launch_environment({MODE_ENV: "  "})


def test_an_unknown_mode_is_refused_before_anything_runs():
    with pytest.raises(InvalidModeError, match="sideways"):
        launch_environment({}, "sideways")
    with pytest.raises(InvalidModeError, match="sideways"):
        launch_environment({MODE_ENV: "sideways"})


def test_commands_that_cannot_start_get_a_shells_exit_codes(tmp_path):
    """Only commands that cannot be executed: a successful exec would replace the test process."""
    env = {MODE_ENV: "replay", "PATH": str(tmp_path)}
    with pytest.raises(LaunchError, match="api-recorder-no-such-command") as missing:
        run(["api-recorder-no-such-command"], env=env)
    assert missing.value.exit_code == 127
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    with pytest.raises(LaunchError, match="not executable") as denied:
        run([str(tmp_path / "not-executable")], env=env)
    assert denied.value.exit_code == 126
    with pytest.raises(LaunchError, match="No command"):
        run([], env=env)
