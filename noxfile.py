"""The supported-versions matrix: ``nox`` (``pip install nox``), or ``nox -s <session>``.

- ``tests``: the whole suite, once, on the main combination (Python 3.11, the newest SDKs);
- ``compat``: the OpenAI record/replay tests and the files-compatibility tests on every other
  combination: Python 3.10, 3.12 and 3.13 with the newest openai, and on 3.11 the newest release
  of each openai major the package claims (1.x, 2.x) and the lowest claimed version;
- ``typecheck``: ``mypy --strict`` on ``src/``;
- ``package``: builds the wheel and the sdist, installs the wheel (not editable) into a fresh
  environment, and runs the quickstart and the auto-activation test from it.

Interpreters are found on ``PATH`` or under pyenv's ``~/.pyenv/versions``: nothing is downloaded
but packages. ``.ci/run`` runs the matrix (two sessions at a time on two cores).
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
MAIN_PYTHON = "3.11"
TEST_TOOLS = ["pytest>=8", "pytest-xdist>=3.5", "uvicorn>=0.30", "hypothesis>=6.100", "typer>=0.12", "rich>=13"]

# The newest release of each openai major the package claims, and the lowest claimed version.
OPENAI_VERSIONS = {
    "1.x": "openai==1.109.1",
    "2.x": "openai==2.54.0",
    "3.x": "openai==3.57.0",
    "lowest": "openai==1.92.0",
}

# What every other combination runs: the OpenAI calls (sync, async, streams, helpers, errors,
# raw responses), auto-activation, and the llama-stack files' compatibility.
COMPAT_TESTS = [
    "tests/test_openai_record_replay.py",
    "tests/test_recorder_behaviour.py",
    "tests/test_edge_cases.py",
    "tests/test_raw_responses.py",
    "tests/test_hardening.py",
    "tests/test_import_hooks.py",
    "tests/test_processes.py",
    "tests/test_llama_stack_files.py",
    "tests/test_llama_stack_newest.py",
    "tests/test_examples.py::test_quickstart_replays_offline",
]

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "compat", "typecheck", "package"]


def _pyenv_on_path() -> None:
    """Let nox find pyenv's interpreters (``python3.12``...) without shims or downloads."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin")))
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_pyenv_on_path()


@nox.session(python=MAIN_PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite on the main combination, as the README's test command runs it."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-n", "2", "-q", *session.posargs)


COMBINATIONS = [
    *[(python, "3.x") for python in ("3.10", "3.12", "3.13")],
    *[(MAIN_PYTHON, major) for major in ("1.x", "2.x", "lowest")],
]


@nox.session
@nox.parametrize(("python", "openai"), COMBINATIONS, ids=[f"{p}-openai-{o}" for p, o in COMBINATIONS])
def compat(session: nox.Session, openai: str) -> None:
    """The OpenAI record/replay and files-compatibility tests on another Python or SDK major."""
    session.install("-e", ".[tavily,http]", OPENAI_VERSIONS[openai], "requests", *TEST_TOOLS)
    session.run("python", "-c", "import openai, sys; print('openai', openai.__version__, 'python', sys.version)")
    session.run("python", "-m", "pytest", "-q", "-p", "no:randomly", *COMPAT_TESTS, *session.posargs)


@nox.session(python=MAIN_PYTHON)
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` on the package, with the SDKs installed (their types are checked against)."""
    session.install("-e", ".[openai,anthropic,genai,ollama,mcp,http,tavily,cli]", "mypy>=1.10", "pytest>=8")
    session.run("mypy", "--strict", "src/api_recorder", "src/_api_recorder_boot.py")


@nox.session(python=MAIN_PYTHON)
def package(session: nox.Session) -> None:
    """Build the wheel and the sdist; run the quickstart and auto-activation from the wheel."""
    work = Path(session.create_tmp()).resolve()
    dist = work / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build>=1", "twine>=5")
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    session.run("python", "-m", "twine", "check", "--strict", *map(str, dist.iterdir()))
    (wheel,) = dist.glob("*.whl")
    session.run("python", str(ROOT / "tests" / "package_check.py"), str(wheel), str(work / "wheel-env"))
