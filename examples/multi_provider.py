"""Three providers in one flow, replayed offline from ``recordings/``: a test replays only if every
call in it does.

Gemini drafts a plan, Claude streams an answer and then calls a tool, OpenAI embeds the answer.
Run it as is: replay mode, no network, no API keys. The recordings were made against the
project's local test servers with ``python examples/record_examples.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import anthropic
from google import genai
from google.genai import types
from openai import OpenAI

import api_recorder

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"
# Replay needs no server: nothing listens on port 9, and nothing is sent there.
OFFLINE = "http://127.0.0.1:9"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def main(openai_url: str | None = None, anthropic_url: str | None = None, gemini_url: str | None = None) -> None:
    gemini = genai.Client(
        api_key=os.environ.get("GEMINI_API_KEY", "not-needed-for-replay"),
        http_options=types.HttpOptions(base_url=gemini_url or OFFLINE),
    )
    claude = anthropic.Anthropic(
        base_url=anthropic_url or OFFLINE, api_key=os.environ.get("ANTHROPIC_API_KEY", "not-needed"), max_retries=0
    )
    gpt = OpenAI(base_url=openai_url or f"{OFFLINE}/v1", api_key="not-needed-for-replay", max_retries=0)

    plan = gemini.models.generate_content(
        model="gemini-2.0-flash",
        contents="Plan a day trip to Lisbon",
        config=types.GenerateContentConfig(system_instruction="Answer in one line."),
    )
    print(f"{type(plan).__name__}: {plan.text}")

    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": plan.text}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    print(f"{type(final).__name__} streamed: {text}")

    tool_turn = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Lisbon?"}],
    )
    tool_use = next(block for block in tool_turn.content if block.type == "tool_use")
    print(f"tool {tool_use.name}({tool_use.input}) requested, id {tool_use.id}")

    embedding = gpt.embeddings.create(model="text-embedding-3-small", input=[text], dimensions=4)
    print(f"{type(embedding).__name__}: {[round(x, 4) for x in embedding.data[0].embedding]}")


if __name__ == "__main__":
    with api_recorder.recording(os.environ.get("LLAMA_STACK_TEST_INFERENCE_MODE", "replay"), RECORDINGS):
        main()
