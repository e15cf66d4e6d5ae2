"""The examples the README points to run offline from the committed recordings."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO


def run_example(name: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_STACK_TEST_", "OGX_TEST_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name)], capture_output=True, text=True, env=env, timeout=120
    )


def test_quickstart_replays_offline():
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ChatCompletion: echo: Name three uses of a recorder in tests")
    assert lines[1].startswith("stream of 12 chunks: 'echo: Count to ten")
    assert lines[2].startswith("CreateEmbeddingResponse: [")


def test_agent_loop_replays_inference_and_tool_calls_offline():
    result = run_example("agent_loop.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tool web_search('How many experts does Llama 4 Maverick have?') -> 2 results"
    assert lines[1].startswith("answer: Based on the tool result: [{")
