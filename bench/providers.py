"""Replay speed for Anthropic and Gemini: api-recorder against each SDK's own HTTP parse from memory.

Per SDK, 100 distinct calls through its sync client: half non-streamed answers of 200 words, half
streamed ones of 200 words. They are recorded against the local fake server, while a capturing
transport keeps every response's bytes; then, with the server stopped:

- api-recorder: typed objects from its recordings;
- the HTTP floor: the same bytes served from memory by an httpx2 ``MockTransport``, parsed by the
  SDK itself (what any HTTP-level recorder such as vcrpy costs at best).

Ratios are computed within this run. Best of ``BENCH_REPEATS`` runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import anthropic  # noqa: E402
import httpx2  # noqa: E402
from google import genai  # noqa: E402
from google.genai import types  # noqa: E402
from replay import CapturingTransport, best_of, memory_transport  # noqa: E402  (one floor for every SDK)

import api_recorder  # noqa: E402
from fakes.anthropic_app import FakeAnthropic  # noqa: E402
from fakes.gemini_app import FakeGemini  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
CALLS = 100
WORDS = 200


# -- the two workloads ---------------------------------------------------------------------------


def claude_workload(client: anthropic.Anthropic) -> int:
    total = 0
    for i in range(CALLS):
        kwargs: dict[str, Any] = {
            "model": "claude-haiku-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": f"Question number {i} about recorders"}],
            "extra_body": {"reply_words": WORDS},
        }
        if i % 2:
            total += sum(1 for _ in client.messages.create(stream=True, **kwargs))
        else:
            total += len(client.messages.create(**kwargs).content[0].text)
    return total


def gemini_workload(client: genai.Client) -> int:
    total = 0
    config = types.GenerateContentConfig(max_output_tokens=WORDS)
    for i in range(CALLS):
        contents = f"Question number {i} about recorders"
        if i % 2:
            total += sum(
                1
                for _ in client.models.generate_content_stream(
                    model="gemini-2.0-flash", contents=contents, config=config
                )
            )
        else:
            total += len(
                client.models.generate_content(model="gemini-2.0-flash", contents=contents, config=config).text or ""
            )
    return total


def claude_table(work: Path) -> list[tuple[str, float]]:
    capture = CapturingTransport()
    with FakeAnthropic() as fake:
        url = fake.base_url
        capturing = anthropic.Anthropic(
            base_url=url, api_key="sk-bench", max_retries=0, http_client=httpx2.Client(transport=capture)
        )
        with api_recorder.recording("record", work / "claude"):
            claude_workload(capturing)
    offline = anthropic.Anthropic(base_url=url, api_key="sk-bench", max_retries=0)
    floor_client = anthropic.Anthropic(
        base_url=url,
        api_key="sk-bench",
        max_retries=0,
        http_client=httpx2.Client(transport=memory_transport(capture.answers)),
    )

    def replay() -> int:
        with api_recorder.recording("replay", work / "claude"):
            return claude_workload(offline)

    ours, ours_sum = best_of(replay)
    floor, floor_sum = best_of(lambda: claude_workload(floor_client))
    assert ours_sum == floor_sum, (ours_sum, floor_sum)
    return [("api-recorder replay", ours), ("HTTP floor (SDK parses from memory)", floor)]


def gemini_table(work: Path) -> list[tuple[str, float]]:
    capture = CapturingTransport()
    with FakeGemini() as fake:
        url, key = fake.base_url, fake.api_key
        capturing = genai.Client(
            api_key=key, http_options=types.HttpOptions(base_url=url, httpx_client=httpx2.Client(transport=capture))
        )
        with api_recorder.recording("record", work / "gemini"):
            gemini_workload(capturing)
    offline = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url))
    floor_client = genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=url, httpx_client=httpx2.Client(transport=memory_transport(capture.answers))
        ),
    )

    def replay() -> int:
        with api_recorder.recording("replay", work / "gemini"):
            return gemini_workload(offline)

    ours, ours_sum = best_of(replay)
    floor, floor_sum = best_of(lambda: gemini_workload(floor_client))
    assert ours_sum == floor_sum, (ours_sum, floor_sum)
    return [("api-recorder replay", ours), ("HTTP floor (SDK parses from memory)", floor)]


def main() -> None:
    print(
        f"anthropic {anthropic.__version__}, google-genai {genai.__version__}; {CALLS} calls each "
        f"(half streamed, {WORDS} words); best of {REPEATS}"
    )
    for name, table in (("Anthropic", claude_table), ("Gemini", gemini_table)):
        with tempfile.TemporaryDirectory() as work:
            rows = table(Path(work))
        print(f"\n{name}")
        for label, seconds in rows:
            print(f"  {label:<44} {seconds * 1000:10.1f} ms {CALLS / seconds:10.0f} calls/s")
        print(f"  HTTP floor / api-recorder replay:  {rows[1][1] / rows[0][1]:6.1f}x   (target > 1x)")


if __name__ == "__main__":
    main()
