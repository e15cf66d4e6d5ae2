"""The examples the README points to run offline from the committed recordings."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO


def run_example(name: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLAMA_STACK_TEST_", "OGX_TEST_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
    }
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


def test_multi_provider_example_replays_gemini_claude_and_openai_offline():
    result = run_example("multi_provider.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "GenerateContentResponse: echo: Plan a day trip to Lisbon lima fjord"
    assert lines[1].startswith("ParsedMessage streamed: echo: echo: Plan a day trip to Lisbon")
    assert lines[2].startswith("tool get_weather({'city': ") and " id toolu_" in lines[2]
    assert lines[3].startswith("CreateEmbeddingResponse: [")
