"""MCP: a ClientSession's calls to a real MCP server, recorded, then replayed with no server at all.

The server is ``tests/fakes/mcp_server.py``, built with the mcp package's own ``MCPServer``: started
by the SDK as a subprocess over stdio (from a copy of the script, which notes each start in a file),
or served in-process over streamable HTTP (stopped before replay). Replays run with the network
blocked, start no process, and must give every answer back object for object: the same class, the
same fields, the same errors. A request they do not cover is refused by the replayed transport,
which shows that nothing could have reached a server.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import pytest

import api_recorder
from api_recorder.errors import RecordingNotFoundError, UnsupportedCallError
from api_recorder.network import network_blocked
from api_recorder.recorder import Recorder
from helpers import REPO, read_json, recordings_in

pytest.importorskip("mcp")
import httpx2
import mcp.types as types
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api_recorder.integrations import mcp as integration
from fakes.mcp_server import INSTRUCTIONS, NAME, REFUSAL_CODE, STARTED_ENV
from mcp_helpers import McpHttpServer, same_answers

TEST_ID = "tests/tools/test_mcp_agent.py::test_agent"
ENV_SECRET = "env-secret-4f1c9a7e"
HEADER_SECRET = "header-secret-0b7d55e2"
URL_SECRET = "url-secret-93ac1e6f"
EVERY_METHOD = {
    "initialize",
    "list_tools",
    "call_tool",
    "read_resource",
    "list_resources",
    "list_resource_templates",
    "get_prompt",
    "list_prompts",
    "complete",
    "send_ping",
}


@pytest.fixture
def server_script(workdir):
    """A copy of the fake server's script inside the project folder (the recordings' root)."""
    script = workdir / "servers" / "mcp_server.py"
    script.parent.mkdir()
    shutil.copy(REPO / "tests" / "fakes" / "mcp_server.py", script)
    return script


def stdio_parameters(script: Path) -> StdioServerParameters:
    """The server's command; its environment (a secret, where it notes its starts) is never stored."""
    env = {"FAKE_SERVER_TOKEN": ENV_SECRET, STARTED_ENV: str(started_file(script))}
    return StdioServerParameters(command=sys.executable, args=[str(script)], env=env)


def started_file(script: Path) -> Path:
    return script.parent / "started.txt"


def starts(script: Path) -> int:
    """How many times the server process was started."""
    marker = started_file(script)
    return len(marker.read_text().splitlines()) if marker.exists() else 0


async def every_call(session: ClientSession) -> list:
    """Each covered call, answers and errors in order, then what the session learnt from initialize."""
    answers: list = [await session.initialize()]
    answers.append(await session.list_tools())
    answers.append(await session.call_tool("echo", {"text": "hi"}))
    answers.append(await session.call_tool("forecast", {"city": "Paris"}))
    answers.append(await session.call_tool("explode", {"reason": "boom"}))
    answers.append(await session.read_resource("config://settings"))
    answers.append(await session.list_resources())
    answers.append(await session.list_resource_templates())
    answers.append(await session.get_prompt("review", {"code": "x = 1"}))
    answers.append(await session.list_prompts())
    reference = types.PromptReference(type="ref/prompt", name="review")
    answers.append(await session.complete(reference, {"name": "language", "value": "p"}))
    answers.append(await session.send_ping())
    refusals = (
        lambda: session.call_tool("refuse", {"reason": "policy"}),
        lambda: session.read_resource("notes-missing://nowhere"),
        lambda: session.get_prompt("no-such-prompt"),
    )
    for refused in refusals:
        with pytest.raises(MCPError) as caught:
            await refused()
        answers.append((type(caught.value), caught.value.error, str(caught.value)))
    answers.append((session.server_info, session.protocol_version, session.instructions, session.server_capabilities))
    return answers


async def every_call_offline(session: ClientSession) -> list:
    """The same calls in replay; then a request no recording covers, refused: nothing is sent."""
    answers = await every_call(session)
    await refused_uncovered(session)
    return answers


async def refused_uncovered(session: ClientSession) -> None:
    with anyio.fail_after(5), pytest.raises(UnsupportedCallError, match=r"'ping'.*no MCP server is started"):
        await session.send_request(types.PingRequest(), types.EmptyResult)  # not through a covered method


async def over_stdio(parameters: StdioServerParameters, calls=every_call) -> list:
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        return await calls(session)


async def over_http(url: str, calls=every_call) -> list:
    headers = {"Authorization": f"Bearer {HEADER_SECRET}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        return await calls(session)


def check_live_answers(answers: list) -> None:
    """What the real server said: each kind of answer, isError results and protocol errors."""
    initialized, tools, echo, forecast, explode = answers[:5]
    assert isinstance(initialized, types.InitializeResult) and initialized.server_info.name == NAME
    assert {tool.name for tool in tools.tools} == {"echo", "forecast", "explode", "refuse"}
    assert echo.content[0].text == "echo: hi" and not echo.is_error
    assert forecast.structured_content == {"city": "Paris", "celsius": 21.5, "conditions": ["sunny", "dry"]}
    assert explode.is_error and isinstance(explode, types.CallToolResult)
    refused, unknown_resource, unknown_prompt, learnt = answers[-4:]
    assert refused[0] is MCPError and refused[1].code == REFUSAL_CODE
    assert refused[1].data == {"reason": "policy", "retry": False}
    assert unknown_resource[1].data == {"uri": "notes-missing://nowhere"}
    assert "no-such-prompt" in unknown_prompt[2]
    assert learnt[0].name == NAME and learnt[2] == INSTRUCTIONS


def recorded(workdir: Path) -> list[dict]:
    return [read_json(path) for path in recordings_in(workdir / "tests" / "tools" / "recordings")]


def test_stdio_session_replays_without_starting_its_server(workdir, server_script):
    parameters = stdio_parameters(server_script)
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live = anyio.run(over_stdio, parameters)
    check_live_answers(live)
    assert starts(server_script) == 1

    files = recorded(workdir)
    assert len(files) == 15  # one per call: four tools, two resources and two prompts named
    assert {file["request"]["tool_name"] for file in files} == EVERY_METHOD
    for file in files:
        request = file["request"]
        assert request["provider"] == "mcp" and request["test_id"] == file["test_id"] == TEST_ID
        assert request["kwargs"]["server"] == {"command": "python", "args": ["servers/mcp_server.py"]}
    call = next(f for f in files if f["request"]["kwargs"].get("name") == "forecast")["request"]
    assert call["kwargs"] == {**call["kwargs"], "name": "forecast", "arguments": {"city": "Paris"}}
    text = "".join(path.read_text() for path in recordings_in(workdir))
    assert ENV_SECRET not in text and "FAKE_SERVER_TOKEN" not in text

    with network_blocked(), api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = anyio.run(over_stdio, parameters, every_call_offline)
    same_answers(live, replayed)
    assert starts(server_script) == 1  # the replay started no process


def test_streamable_http_session_replays_with_the_server_stopped(workdir):
    with McpHttpServer() as server:
        url = server.url.replace("http://", "http://agent:hunter2@") + f"?api_key={URL_SECRET}"
        with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
            live = anyio.run(over_http, url)
        sent = list(server.log.headers)
    check_live_answers(live)
    assert sent and all(headers.get("x-api-recorder-test-id") == TEST_ID for headers in sent)

    files = recorded(workdir)
    assert {file["request"]["tool_name"] for file in files} == EVERY_METHOD
    servers = {repr(file["request"]["kwargs"]["server"]) for file in files}
    assert servers == {repr({"url": "http://localhost/mcp?api_key=%3Credacted%3E"})}  # no port, no secrets
    text = "".join(path.read_text() for path in recordings_in(workdir))
    for secret in (URL_SECRET, HEADER_SECRET, "hunter2", "agent:"):
        assert secret not in text

    with network_blocked(), api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = anyio.run(over_http, url, every_call_offline)
    same_answers(live, replayed)


def test_sse_session_replays_with_the_server_stopped(workdir):
    async def calls(url, offline=False):
        async with sse_client(url, headers={"Authorization": f"Bearer {HEADER_SECRET}"}) as (read, write):
            async with ClientSession(read, write) as session:
                answers = [await session.initialize(), await session.call_tool("echo", {"text": "sse"})]
                if offline:
                    await refused_uncovered(session)
                return answers

    with McpHttpServer(sse=True) as server:
        with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
            live = anyio.run(calls, server.url)
        assert server.tool_calls == ["echo"]
    assert {repr(file["request"]["kwargs"]["server"]) for file in recorded(workdir)} == {
        repr({"url": "http://localhost/sse"})
    }
    assert HEADER_SECRET not in "".join(path.read_text() for path in recordings_in(workdir))

    with network_blocked(), api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = anyio.run(calls, server.url, True)
    same_answers(live, replayed)


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_mcp_client_connects_and_calls_in_replay_as_it_did_live(transport, workdir, server_script):
    """``mcp.Client`` negotiates (``server/discover``, else initialize) and validates structured
    results against a tool listing it fetches itself: part of the call, not recorded apart."""

    async def session(target, offline=False):
        async with Client(target) as client:
            forecast = await client.call_tool("forecast", {"city": "Oslo"})
            answers = [client.protocol_version, client.server_info, forecast, await client.list_prompts()]
            if offline:
                await refused_uncovered(client.session)
            return answers

    with McpHttpServer() as server:
        target = stdio_parameters(server_script) if transport == "stdio" else server.url
        with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
            live = anyio.run(session, target)
    assert live[2].structured_content["city"] == "Oslo"
    assert "list_tools" not in {file["request"]["tool_name"] for file in recorded(workdir)}

    with network_blocked(), api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = anyio.run(session, target, True)
    same_answers(live, replayed)
    assert starts(server_script) == (1 if transport == "stdio" else 0)


def test_replay_refuses_what_was_not_recorded_at_once(workdir, server_script):
    parameters = stdio_parameters(server_script)

    async def calls(session):
        with anyio.fail_after(5):  # refused, never waiting for a server that is not there
            with pytest.raises(RecordingNotFoundError, match=r"mcp\.initialize"):
                await session.initialize()
            with pytest.raises(RecordingNotFoundError, match=r"mcp\.call_tool echo"):
                await session.call_tool("echo", {"text": "never recorded"})
            with pytest.raises(UnsupportedCallError, match=r"'ping' to python servers/mcp_server\.py"):
                await session.send_request(types.PingRequest(), types.EmptyResult)
        return []

    with network_blocked(), api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        anyio.run(over_stdio, parameters, calls)
    assert recordings_in(workdir) == [] and starts(server_script) == 0


def test_record_if_missing_talks_to_the_server_only_for_what_is_missing(workdir):
    async def first(session):
        return [await session.initialize(), await session.call_tool("echo", {"text": "a"})]

    async def second(session):
        return [*await first(session), await session.call_tool("forecast", {"city": "Rome"})]

    with McpHttpServer() as server:
        with api_recorder.recording("record-if-missing"), api_recorder.test_context(TEST_ID):
            earlier = anyio.run(over_http, server.url, first)
            assert server.tool_calls == ["echo"]
            later = anyio.run(over_http, server.url, second)  # a live handshake, echo replayed
            assert server.tool_calls == ["echo", "forecast"]
    same_answers(earlier, later[:2])
    names = sorted(file["request"]["tool_name"] for file in recorded(workdir))
    assert names == ["call_tool", "call_tool", "initialize"]


def test_live_mode_and_passthrough_servers_are_left_alone(workdir):
    async def echo(session):
        await session.initialize()
        return [await session.call_tool("echo", {"text": "x"})]

    with McpHttpServer() as server:
        with api_recorder.recording("live"):
            anyio.run(over_http, server.url, echo)
        with api_recorder.recording("replay", passthrough=[server.base_url]):
            anyio.run(over_http, server.url, echo)  # the server under test: neither recorded nor replayed
        assert server.tool_calls == ["echo", "echo"]
    assert recordings_in(workdir) == []


def test_servers_are_named_stably_and_without_secrets(tmp_path):
    recorder = Recorder()
    root = recorder.store.root
    assert integration.command_name(sys.executable) == "python"
    assert integration.command_name("/usr/local/bin/python3.12") == "python"
    assert integration.command_name(r"C:\Tools\npx.exe") == "npx"
    assert integration.command_name("uvx") == "uvx"
    arguments = [str(root / "srv" / "main.py"), "--api-key", "k-123", "--token=abc", "--password=pw", "-v"]
    assert integration.stable_arguments(arguments, root) == [
        "srv/main.py",
        "--api-key",
        "<redacted>",
        "--token=abc",
        "--password=<redacted>",
        "-v",
    ]
    assert integration.stable_arguments([f"--config={Path.home() / 'a.toml'}"], tmp_path) == ["--config=~/a.toml"]
    assert integration.stable_url(recorder, "http://127.0.0.1:49152/mcp") == "http://localhost/mcp"
    assert integration.stable_url(recorder, "http://[::1]:8000/mcp#x") == "http://localhost/mcp"
    assert integration.stable_url(recorder, "https://u:p@tools.example.com:8443/mcp?key=s") == (
        "https://tools.example.com:8443/mcp?key=%3Credacted%3E"
    )


def test_show_renders_mcp_answers(workdir, server_script):
    from typer.testing import CliRunner

    from api_recorder.cli import app

    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        anyio.run(over_stdio, stdio_parameters(server_script))
    paths = {
        read_json(path)["request"]["tool_name"] + read_json(path)["request"]["kwargs"].get("name", ""): path
        for path in recordings_in(workdir)
    }
    runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})
    shown = runner.invoke(app, ["show", str(paths["call_toolecho"])])
    assert shown.exit_code == 0, shown.output
    assert "call_tool on {'command': 'python', 'args': ['servers/mcp_server.py']}" in shown.output
    tools = runner.invoke(app, ["show", str(paths["list_tools"])]).output
    assert "tool echo" in tools and "tool forecast" in tools
    failed = runner.invoke(app, ["show", str(paths["call_toolexplode"])]).output
    assert "[tool error]" in failed
