"""A short chat, a streamed chat and an embedding, replayed offline from ``recordings/``.

Run it as is: replay mode, no network, no API key. The recordings it reads were recorded against
the project's local OpenAI-compatible test server with ``python examples/record_examples.py``;
point ``OPENAI_BASE_URL`` at a real server and set
``LLAMA_STACK_TEST_INFERENCE_MODE=record`` to record your own.
"""

from __future__ import annotations

import os
from pathlib import Path

from openai import OpenAI

import api_recorder

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"
# Replay needs no server: nothing listens on port 9, and nothing is sent there.
OFFLINE_URL = "http://127.0.0.1:9/v1"


def main(base_url: str | None = None) -> None:
    client = OpenAI(
        base_url=base_url or os.environ.get("OPENAI_BASE_URL", OFFLINE_URL),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-not-needed-for-replay"),
        max_retries=0,
    )

    chat = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Name three uses of a recorder in tests"}],
    )
    print(f"{type(chat).__name__}: {chat.choices[0].message.content}")

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Count to ten"}],
        stream=True,
        max_tokens=10,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    print(f"stream of {len(pieces)} chunks: {''.join(pieces)!r}")

    embedding = client.embeddings.create(
        model="text-embedding-3-small", input=["offline", "fast"], dimensions=4
    )
    print(f"{type(embedding).__name__}: {[round(x, 4) for x in embedding.data[0].embedding]}")


if __name__ == "__main__":
    with api_recorder.recording(os.environ.get("LLAMA_STACK_TEST_INFERENCE_MODE", "replay"), RECORDINGS):
        main()
