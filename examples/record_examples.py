"""Re-record the recordings the examples replay, against the project's local test servers.

The servers (``tests/fakes``) answer like OpenAI, Anthropic, Gemini and Tavily with deterministic
content, so
re-recording rewrites the same answers: ids and timestamps are normalized.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "examples")]

import agent_loop  # noqa: E402
import multi_provider  # noqa: E402
import quickstart  # noqa: E402

import api_recorder  # noqa: E402
from fakes.anthropic_app import FakeAnthropic  # noqa: E402
from fakes.gemini_app import FakeGemini  # noqa: E402
from fakes.openai_app import FakeOpenAI  # noqa: E402
from fakes.tavily_app import FakeTavily  # noqa: E402


def main() -> None:
    with FakeOpenAI() as llm, FakeTavily() as search, api_recorder.recording("record", quickstart.RECORDINGS):
        quickstart.main(base_url=llm.url)
        agent_loop.main(openai_url=llm.url, tavily_url=search.base_url)
        with FakeAnthropic() as claude, FakeGemini() as gemini:
            multi_provider.main(openai_url=llm.url, anthropic_url=claude.base_url, gemini_url=gemini.base_url)


if __name__ == "__main__":
    main()
