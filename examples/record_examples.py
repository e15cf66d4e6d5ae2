"""Re-record the recordings the examples replay, against the local OpenAI-compatible test server.

The server (``tests/fakes``) answers like OpenAI with deterministic content, so re-recording gives
identical files: ids and timestamps are normalized.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "examples")]

import quickstart  # noqa: E402

import api_recorder  # noqa: E402
from fakes.openai_app import FakeOpenAI  # noqa: E402


def main() -> None:
    with FakeOpenAI() as fake, api_recorder.recording("record", quickstart.RECORDINGS):
        quickstart.main(base_url=fake.url)


if __name__ == "__main__":
    main()
