"""A real MCP server, built with the ``mcp`` package's own ``MCPServer``, for the MCP tests.

Run as a script it serves over stdio (``python mcp_server.py``), as a client's subprocess;
:func:`build_server` gives the same server for an in-process streamable-HTTP app. It has a tool
answering text, one answering structured content, one that crashes (an ``isError`` result), one
that refuses with a protocol error carrying data, a resource, a resource template, a prompt and
completions. It imports nothing from the tests: the script may be copied anywhere. Started with
``MCP_FAKE_SERVER_STARTED`` set to a file, it adds a line to it first thing.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import BaseModel

NAME = "recorder-fake"
INSTRUCTIONS = "A fake server for api-recorder's tests."
REFUSAL_CODE = -32050
STARTED_ENV = "MCP_FAKE_SERVER_STARTED"  # a file the script adds a line to each time it starts


class Forecast(BaseModel):
    city: str
    celsius: float
    conditions: list[str]


def build_server(calls: list[str] | None = None) -> Any:
    """The server; ``calls`` (if given) gets the name of every tool called, in order.

    ``MCPServer()`` configures the root logger when it has no handler (``logging.basicConfig``):
    a placeholder handler keeps it from changing the logging of the process that builds it.
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.shared.exceptions import MCPError
    from mcp_types import Completion, PromptReference

    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server = MCPServer(NAME, instructions=INSTRUCTIONS, version="1.2.3")
    finally:
        root.removeHandler(placeholder)
    called = calls if calls is not None else []

    @server.tool()
    def echo(text: str) -> str:
        """Echo text back."""
        called.append("echo")
        return f"echo: {text}"

    @server.tool()
    def forecast(city: str) -> Forecast:
        """A forecast, as structured content."""
        called.append("forecast")
        return Forecast(city=city, celsius=21.5, conditions=["sunny", "dry"])

    @server.tool()
    def explode(reason: str) -> str:
        """Crash: the client gets a result with isError set."""
        raise ValueError(f"exploded: {reason}")

    @server.tool()
    def refuse(reason: str) -> str:
        """Refuse with a JSON-RPC error that carries data."""
        raise MCPError(REFUSAL_CODE, f"refused: {reason}", {"reason": reason, "retry": False})

    @server.resource("config://settings", mime_type="application/json")
    def settings() -> str:
        return '{"theme": "dark"}'

    @server.resource("notes://{name}")
    def note(name: str) -> str:
        return f"note {name}"

    @server.prompt()
    def review(code: str, language: str = "python") -> str:
        """Review code."""
        return f"Review this {language} code:\n{code}"

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if isinstance(ref, PromptReference) and argument.name == "language":
            values = [language for language in ("python", "perl", "rust") if language.startswith(argument.value)]
            return Completion(values=values, total=len(values), has_more=False)
        return None

    return server


if __name__ == "__main__":
    started = os.environ.get(STARTED_ENV)
    if started:  # the tests check that a replay starts no server
        with open(started, "a", encoding="utf-8") as marker:
            marker.write(f"{os.getpid()}\n")
    logging.basicConfig(level=logging.CRITICAL, handlers=[logging.NullHandler()])  # a crash logs no traceback
    build_server().run()
