"""An agent loop (the model asks for a web search, Tavily answers, the model answers), replayed
offline from ``recordings/``: both the inference and the tool call come from recordings.

Run it as is: replay mode, no network, no API keys. Recorded against the project's local test
servers with ``python examples/record_examples.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from openai import OpenAI
from tavily import TavilyClient

import api_recorder

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"
OFFLINE_OPENAI = "http://127.0.0.1:9/v1"  # nothing listens there, and replay sends nothing
OFFLINE_TAVILY = "http://127.0.0.1:9"

WEB_SEARCH = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web for current information.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}


def run_agent(llm: OpenAI, search: TavilyClient, question: str) -> str:
    """Ask, run every tool call the model makes, and return the model's final answer."""
    messages: list = [{"role": "user", "content": question}]
    for _ in range(4):
        reply = llm.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEB_SEARCH])
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message)
        for call in message.tool_calls:
            query = json.loads(call.function.arguments)["query"]
            results = search.search(query, max_results=2)
            print(f"tool web_search({query!r}) -> {len(results['results'])} results")
            content = json.dumps(results["results"])
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    raise RuntimeError("the agent did not finish in 4 turns")


def main(openai_url: str | None = None, tavily_url: str | None = None) -> None:
    llm = OpenAI(
        base_url=openai_url or os.environ.get("OPENAI_BASE_URL", OFFLINE_OPENAI),
        api_key=os.environ.get("OPENAI_API_KEY", "sk-not-needed-for-replay"),
        max_retries=0,
    )
    search = TavilyClient(
        api_key=os.environ.get("TAVILY_API_KEY", "tvly-not-needed-for-replay"),
        api_base_url=tavily_url or OFFLINE_TAVILY,
    )
    answer = run_agent(llm, search, "How many experts does Llama 4 Maverick have?")
    print(f"answer: {answer}")


if __name__ == "__main__":
    with api_recorder.recording(os.environ.get("LLAMA_STACK_TEST_INFERENCE_MODE", "replay"), RECORDINGS):
        main()
