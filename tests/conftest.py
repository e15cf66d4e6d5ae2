"""Fixtures shared by the suite: a fresh working folder and a local fake OpenAI server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["pytester"]

import api_recorder  # noqa: E402
from api_recorder.recorder import RECORDER  # noqa: E402

# llama-stack's variable names, old and new (OGX): a test sets the ones it means.
ENV_NAMES = (
    "LLAMA_STACK_TEST_INFERENCE_MODE",
    "LLAMA_STACK_TEST_RECORDING_DIR",
    "OGX_TEST_INFERENCE_MODE",
    "OGX_TEST_RECORDING_DIR",
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh cwd (recordings are written relative to it); the recorder is off again after."""
    monkeypatch.chdir(tmp_path)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    was_enabled = RECORDER.enabled
    yield tmp_path
    if not was_enabled:
        api_recorder.disable()


@pytest.fixture
def fake_openai():
    from fakes.openai_app import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_tavily():
    from fakes.tavily_app import FakeTavily

    with FakeTavily() as fake:
        yield fake


@pytest.fixture
def fake_anthropic():
    from fakes.anthropic_app import FakeAnthropic

    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_gemini():
    from fakes.gemini_app import FakeGemini

    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def fake_ollama():
    from fakes.ollama_app import FakeOllama

    with FakeOllama() as fake:
        yield fake
