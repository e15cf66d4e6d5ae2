"""MCP (``mcp``, the Model Context Protocol SDK): what a ``ClientSession`` asks its server.

Covered, on sessions over the SDK's ``stdio_client``, ``streamable_http_client`` and
``sse_client`` transports (``mcp.Client`` and ``ClientSessionGroup`` use them): ``initialize``,
``call_tool``, ``list_tools``, ``read_resource``, ``list_resources``,
``list_resource_templates``, ``get_prompt``, ``list_prompts``, ``complete``, ``send_ping`` and the
``server/discover`` probe of ``mcp.Client``'s ``mode="auto"``. Each is recorded as a tool call:
provider ``mcp``, the method's name as ``tool_name``, and as ``kwargs`` the server and what the
call asks (``{"server", "name", "arguments"}`` for ``call_tool``). Answers are stored as the SDK's
result classes (``CallToolResult``...) and replayed as them; an ``MCPError`` the server answers
with (unknown resource, a tool refusing) is replayed as the same class, code, message and data.

The server is named by what identifies it stably: a stdio server by its command (the
executable's name; any Python is ``python``) and arguments (paths inside the project relative to
it, the values of credential-named flags redacted), an HTTP server by its URL without user-info
or secret query values (a loopback server's port left out: test servers listen on a free port).
The environment given to a stdio server, and the headers or HTTP client given to an HTTP
transport, are never read.

In replay the transport starts nothing and connects nowhere: the session runs over streams that
never carry a message, ``initialize()`` answers from its recording, and a request the recorder
does not cover is refused (``UnsupportedCallError``) instead of waiting for a server that is not
there. ``record-if-missing`` opens the real transport and replays the calls it finds, except
the handshake (``initialize``, ``server/discover``), which a running server must see.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..context import test_id_headers_for
from ..errors import UnsupportedCallError
from ..hashing import legacy_tool_hash, tool_hash
from ..modes import Mode
from ..patching import Patches
from ..recorder import Recorder, RequestKey
from ..redaction import REDACTED, is_credential_name
from ..storage import Recording
from ..tools import arguments_as_json, check_replayable, named_arguments

PROVIDER = "mcp"

Arguments = dict[str, Any]


# -- what a call asks ------------------------------------------------------------------------


def _nothing(arguments: Arguments) -> Arguments:
    return {}


def _page(arguments: Arguments) -> Arguments:
    """A list call: the page asked for (the first one has no cursor)."""
    cursor = getattr(arguments.get("params"), "cursor", None)
    return {"cursor": cursor} if cursor is not None else {}


def _continued(arguments: Arguments) -> Arguments:
    """What a retry after an ``InputRequiredResult`` sends back (absent from a first call)."""
    return {name: arguments[name] for name in ("input_responses", "request_state") if arguments.get(name) is not None}


def _named(arguments: Arguments) -> Arguments:
    """``call_tool`` and ``get_prompt``: the name and its arguments (none given is ``{}``)."""
    return {"name": arguments.get("name"), "arguments": arguments.get("arguments") or {}, **_continued(arguments)}


def _resource(arguments: Arguments) -> Arguments:
    return {"uri": str(arguments.get("uri")), **_continued(arguments)}


def _completion(arguments: Arguments) -> Arguments:
    return {name: arguments.get(name) for name in ("ref", "argument", "context_arguments")}


def _version(arguments: Arguments) -> Arguments:
    return {"version": arguments.get("version")}


@dataclass(frozen=True)
class Method:
    """One covered ``ClientSession`` method: what of its arguments selects the answer."""

    name: str  # the method, and the recording's tool_name
    key: Callable[[Arguments], Arguments]
    label_from: str | None = None  # the argument that names the call in messages (tool, uri)
    handshake: bool = False  # opens the connection: a server that is running must see it


METHODS: tuple[Method, ...] = (
    Method("initialize", _nothing, handshake=True),
    Method("send_discover", _version, handshake=True),
    Method("call_tool", _named, "name"),
    Method("list_tools", _page),
    Method("read_resource", _resource, "uri"),
    Method("list_resources", _page),
    Method("list_resource_templates", _page),
    Method("get_prompt", _named, "name"),
    Method("list_prompts", _page),
    Method("complete", _completion),
    Method("send_ping", _nothing),
)

PATCH_POINTS: list[tuple[str, str, Method]] = [
    ("mcp.client.session", f"ClientSession.{method.name}", method) for method in METHODS
]

RESULT_CLASSES = (
    "InitializeResult",
    "CallToolResult",
    "InputRequiredResult",
    "ListToolsResult",
    "ReadResourceResult",
    "ListResourcesResult",
    "ListResourceTemplatesResult",
    "GetPromptResult",
    "ListPromptsResult",
    "CompleteResult",
    "EmptyResult",
)
"""Classes of ``mcp_types`` (``mcp.types``) that recordings name."""


# -- which server ----------------------------------------------------------------------------


def stdio_server(recorder: Recorder, args: tuple[Any, ...], kwargs: Arguments) -> Arguments:
    """``{"command", "args"}`` of ``stdio_client(StdioServerParameters(...))``; env and cwd unread."""
    parameters = kwargs.get("server", args[0] if args else None)
    command = str(getattr(parameters, "command", ""))
    return {
        "command": command_name(command),
        "args": stable_arguments([str(arg) for arg in getattr(parameters, "args", None) or []], recorder.store.root),
    }


def url_server(recorder: Recorder, args: tuple[Any, ...], kwargs: Arguments) -> Arguments:
    """``{"url"}`` of ``streamable_http_client(url)`` or ``sse_client(url)``; headers unread."""
    return {"url": stable_url(recorder, server_url(args, kwargs))}


def server_url(args: tuple[Any, ...], kwargs: Arguments) -> str:
    return str(kwargs.get("url", args[0] if args else ""))


_PYTHON = re.compile(r"python[0-9.]*", re.IGNORECASE)


def command_name(command: str) -> str:
    """The executable's name without its folder (``/usr/bin/npx`` is ``npx``); any Python is
    ``python``, so that a recording made in one virtual environment replays in another."""
    name = re.split(r"[\\/]", command)[-1]
    if name.lower().endswith(".exe"):
        name = name[:-4]
    if _PYTHON.fullmatch(name) or (command and _same_file(command, sys.executable)):
        return "python"
    return name


def _same_file(one: str, other: str) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def stable_arguments(arguments: list[str], root: Path) -> list[str]:
    """Arguments as stored: paths relative to the project (or ``~``), credentials redacted.

    A flag named like a credential (``--api-key``, ``--password``) loses its value, given as
    ``--api-key=value`` or as the next argument.
    """
    stable: list[str] = []
    hide_next = False
    for argument in arguments:
        if hide_next:
            stable.append(REDACTED)
            hide_next = False
            continue
        name, equals, value = argument.partition("=")
        if name.startswith("-") and is_credential_name(name.lstrip("-")):
            stable.append(f"{name}={REDACTED}" if equals else argument)
            hide_next = not equals
        elif name.startswith("-") and equals:
            stable.append(f"{name}={stable_path(value, root)}")
        else:
            stable.append(stable_path(argument, root))
    return stable


def stable_path(text: str, root: Path) -> str:
    """An absolute path inside ``root`` relative to it, inside the home folder from ``~``."""
    if not os.path.isabs(text):
        return text
    path = Path(text)
    for base, prefix in ((root, ""), (Path.home(), "~/")):
        for inside, folder in ((path, base), (path.resolve(), base.resolve())):  # /tmp may be a link
            try:
                return prefix + inside.relative_to(folder).as_posix()
            except ValueError:
                continue
    return text


def stable_url(recorder: Recorder, url: str) -> str:
    """The URL without user-info, secret query values or fragment; a loopback host is
    ``localhost`` with no port."""
    parts = urlsplit(recorder.redactor.url(url))
    netloc = parts.netloc
    if _is_loopback(parts.hostname):
        netloc = "localhost"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TRANSPORTS: list[tuple[str, str, Callable[[Recorder, tuple[Any, ...], Arguments], Arguments]]] = [
    ("mcp.client.stdio", "stdio_client", stdio_server),
    ("mcp", "stdio_client", stdio_server),
    ("mcp.client.client", "stdio_client", stdio_server),
    ("mcp.client.streamable_http", "streamable_http_client", url_server),
    ("mcp.client.client", "streamable_http_client", url_server),
    ("mcp.client.session_group", "streamable_http_client", url_server),
    ("mcp.client.sse", "sse_client", url_server),
    ("mcp.client.session_group", "sse_client", url_server),
]
"""Each name a transport function is called by: the SDK's modules import them from each other."""


@dataclass(frozen=True)
class Connection:
    """The server at the other end of a transport, as recordings name it."""

    server: Arguments
    replayed: bool  # opened in replay: nothing runs at the other end


class _OpenConnections:
    """Transports open now, by their read stream (which every session over them reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, tuple[Any, Connection]] = {}  # the stream is held: its id stays its own

    def add(self, stream: Any, connection: Connection) -> None:
        with self._lock:
            self._open[id(stream)] = (stream, connection)

    def remove(self, stream: Any) -> None:
        with self._lock:
            entry = self._open.get(id(stream))
            if entry is not None and entry[0] is stream:
                del self._open[id(stream)]

    def of(self, stream: Any) -> Connection | None:
        entry = self._open.get(id(stream))
        return entry[1] if entry is not None and entry[0] is stream else None


CONNECTIONS = _OpenConnections()


def connection_of(session: Any) -> Connection | None:
    """The server a session talks to, None when its transport is not one api-recorder opened."""
    stream = getattr(getattr(session, "_dispatcher", None), "_read_stream", None)
    if isinstance(stream, ReplayReadStream):
        return stream.connection
    return CONNECTIONS.of(stream) if stream is not None else None


class RecordedTransport:
    """What a wrapped transport function returns: its own transport, or in replay a stand-in.

    Decided when entered (``mcp.Client`` builds its transport before entering it): in replay no
    process is started and no connection made; otherwise the SDK's transport is opened as it
    would be, its server remembered for the sessions over it.
    """

    def __init__(
        self,
        recorder: Recorder,
        open_transport: Callable[[], Any],
        identify: Callable[[], Arguments | None],
    ) -> None:
        self._recorder = recorder
        self._open_transport = open_transport
        self._identify = identify
        self._inner: Any = None
        self._stream: Any = None

    async def __aenter__(self) -> Any:
        recorder = self._recorder
        server = self._identify()
        if server is not None and recorder.intercepting and recorder.mode is Mode.REPLAY:
            read_stream = ReplayReadStream(Connection(server, replayed=True))
            self._stream = read_stream
            return read_stream, ReplayWriteStream(read_stream.connection)
        self._inner = self._open_transport()
        streams = await self._inner.__aenter__()
        if server is not None:
            self._stream = streams[0]
            CONNECTIONS.add(self._stream, Connection(server, replayed=False))
        return streams

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stream, self._stream = self._stream, None
        if isinstance(stream, ReplayReadStream):
            stream.close()
            return None
        if stream is not None:
            CONNECTIONS.remove(stream)
        inner, self._inner = self._inner, None
        return await inner.__aexit__(*exc_info) if inner is not None else None


class ReplayReadStream:
    """A replayed transport's read side: no message ever arrives; it ends when the transport does."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._closed: Any = None  # an anyio.Event, made inside the event loop

    def _event(self) -> Any:
        if self._closed is None:
            import anyio

            self._closed = anyio.Event()
        return self._closed

    async def receive(self) -> Any:
        import anyio

        await self._event().wait()
        raise anyio.EndOfStream

    def __aiter__(self) -> ReplayReadStream:
        return self

    async def __anext__(self) -> Any:
        await self._event().wait()
        raise StopAsyncIteration

    def close(self) -> None:
        self._event().set()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> ReplayReadStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()


class ReplayWriteStream:
    """A replayed transport's write side: notifications are dropped, a request is refused."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def send(self, item: Any) -> None:
        message = getattr(item, "message", item)
        method = getattr(message, "method", None)
        if method is not None and getattr(message, "id", None) is not None:
            raise UnsupportedCallError(
                f"MCP request {method!r} to {describe(self.connection.server)}: api-recorder does not record it "
                f"(it covers ClientSession.{', '.join(m.name for m in METHODS)}), and in replay no MCP server "
                "is started. Run this test with LLAMA_STACK_TEST_INFERENCE_MODE=record-if-missing or live, "
                "where the transport opens for real."
            )

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> ReplayWriteStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        return None


def describe(server: Arguments) -> str:
    if "url" in server:
        return str(server["url"])
    return " ".join([str(server.get("command", "")), *map(str, server.get("args", []))])


# -- the calls -------------------------------------------------------------------------------

_INSIDE = contextvars.ContextVar("api_recorder_mcp_inside", default=False)
"""Set while a covered call runs live: the calls it makes itself (``call_tool`` lists the tools to
check a structured result) are part of it, not recorded on their own."""


class McpCall:
    """One intercepted session call: its tool-call key, and its answer as the SDK's class."""

    normalizes_ids = False  # a server's answers are its data

    def __init__(
        self,
        recorder: Recorder,
        method: Method,
        session: Any,
        connection: Connection,
        wrapped: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Arguments,
    ) -> None:
        self.recorder = recorder
        self.method = method
        self.session = session
        self.wrapped = wrapped
        self.args = args
        self.kwargs = kwargs
        self.arguments = named_arguments(wrapped, args, kwargs)
        asked = arguments_as_json({"server": connection.server, **method.key(self.arguments)}, method.name)
        asked = recorder.prepare_body(asked)
        test_id = recorder.current_test_id()
        request_hash = tool_hash(PROVIDER, method.name, asked, test_id)
        named = self.arguments.get(method.label_from) if method.label_from else None
        self.key = RequestKey(
            hash=request_hash,
            request={"test_id": test_id, "provider": PROVIDER, "tool_name": method.name, "kwargs": asked},
            label=f"{PROVIDER}.{method.name}" + (f" {named}" if named is not None else ""),
            test_id=test_id,
            filenames=[f"{request_hash}.json", f"{legacy_tool_hash(PROVIDER, method.name, asked)}.json"],
        )

    async def invoke(self) -> Any:
        token = _INSIDE.set(True)
        try:
            return await self.wrapped(*self.args, **self.kwargs)
        finally:
            _INSIDE.reset(token)

    def replay(self, recording: Recording) -> Any:
        """The recorded answer, and what the session itself does with it when it arrives live."""
        result = recording.response.body
        name = self.method.name
        if name == "initialize":
            self.session.adopt(result)
        elif name == "list_tools":
            absorb = getattr(self.session, "_absorb_tool_listing", None)
            if absorb is not None:
                params = self.arguments.get("params")
                first_page = params is None or getattr(params, "cursor", None) is None
                result = absorb(result, complete=first_page and getattr(result, "next_cursor", None) is None)
        elif name in ("call_tool", "read_resource", "get_prompt"):
            refuse_unasked(name, result, self.arguments)
        return result

    def capture(self, result: Any, save: Callable[..., Any]) -> Any:
        check_replayable(result, self.recorder, f"the answer of {self.key.label}")
        save(result, False)
        return result

    def filename_for(self, body: Any) -> str:
        return self.key.filenames[0]

    def is_recordable_error(self, error: Exception) -> bool:
        """The server's answer as an error, not a connection lost or a request timed out."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        return isinstance(error, MCPError) and error.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT)

    def answer_despite(self, error: Exception) -> Any:
        return None


def error_details(error: Exception) -> tuple[Any, Any] | None:
    """What the recorder keeps of an ``MCPError``: its JSON-RPC code and its ``ErrorData``."""
    data: Any = getattr(error, "error", None)  # mcp's ErrorData
    if not (isinstance(getattr(error, "code", None), int) and hasattr(data, "model_dump")):
        return None
    try:
        return error.code, data.model_dump(mode="json", by_alias=True, exclude_none=True)  # type: ignore[attr-defined]
    except Exception:  # data JSON cannot hold: recorded without it
        return error.code, None  # type: ignore[attr-defined]


def refuse_unasked(method: str, result: Any, arguments: Arguments) -> None:
    """Raise what the SDK raises for a result the caller did not allow (an answer recorded by a
    caller that allowed it), so replay does not hand it back."""
    import mcp_types

    if isinstance(result, mcp_types.InputRequiredResult) and not arguments.get("allow_input_required"):
        raise RuntimeError(
            "Server returned InputRequiredResult; pass allow_input_required=True to receive it "
            f"and retry {method}(..., input_responses=..., request_state=result.request_state)."
        )
    if (
        method == "call_tool"
        and not isinstance(result, (mcp_types.CallToolResult, mcp_types.InputRequiredResult))
        and not arguments.get("allow_claimed")
    ):
        from mcp.client.extension import UnexpectedClaimedResult

        raise UnexpectedClaimedResult(result)


# -- installing ------------------------------------------------------------------------------


def install(recorder: Recorder) -> Patches:
    patches = Patches()
    try:
        import mcp_types  # noqa: F401  (mcp 2's types package; mcp 1 keeps them in mcp.types)
    except ImportError:
        warnings.warn(
            f"api-recorder records mcp 2 (the suite runs against 2.3); mcp {sdk_version()} is not recorded: its "
            "sessions talk to their servers in every mode. Install mcp>=2.3 to record and replay them.",
            RuntimeWarning,
            stacklevel=2,
        )
        return patches
    register_result_classes(recorder)
    for module, name, method in PATCH_POINTS:
        patches.wrap(module, name, session_wrapper(recorder, method), optional=method.name == "send_discover")
    for module, name, identify in TRANSPORTS:
        defined_there = module.rsplit(".", 1)[-1] in ("stdio", "streamable_http")  # elsewhere: re-exports
        patches.wrap(module, name, transport_wrapper(recorder, identify), optional=not defined_there)
    patches.wrap(
        "mcp.client.streamable_http",
        "StreamableHTTPTransport._prepare_headers",
        test_id_headers(recorder),
        optional=True,
    )
    return patches


def sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp")
    except PackageNotFoundError:
        return "(unknown version)"


def register_result_classes(recorder: Recorder) -> None:
    """Allow the result classes in recordings: they live in ``mcp_types``, outside ``mcp.``."""
    import mcp_types

    for name in RESULT_CLASSES:
        cls = getattr(mcp_types, name, None)
        if isinstance(cls, type):
            recorder.registry.register(cls)


def session_wrapper(recorder: Recorder, method: Method) -> Any:
    """The wrapt wrapper of one session method: pass through unless recording a known server."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Arguments) -> Any:
        if not recorder.intercepting or _INSIDE.get():
            return wrapped(*args, **kwargs)
        connection = connection_of(instance)
        if connection is None or (method.name == "initialize" and instance.initialize_result is not None):
            return wrapped(*args, **kwargs)
        call = McpCall(recorder, method, instance, connection, wrapped, args, kwargs)
        if handshake_must_go_live(recorder, method, connection, call):
            return call.invoke()
        return recorder.run_async(call, call.invoke)

    return wrapper


def handshake_must_go_live(recorder: Recorder, method: Method, connection: Connection, call: McpCall) -> bool:
    """A recorded handshake over a live transport in record-if-missing: replaying it would leave
    the running server unopened for the calls that are missing, so it is made again."""
    return (
        method.handshake
        and not connection.replayed
        and recorder.mode is Mode.RECORD_IF_MISSING
        and recorder.find(call.key) is not None
    )


def transport_wrapper(recorder: Recorder, identify: Callable[[Recorder, tuple[Any, ...], Arguments], Arguments]) -> Any:
    """A transport function's wrapper: its context manager, opened for real or replayed."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Arguments) -> Any:
        def server() -> Arguments | None:
            if identify is url_server and recorder.is_passthrough(server_url(args, kwargs)):
                return None  # the server under test: never recorded nor replayed
            return identify(recorder, args, kwargs)

        return RecordedTransport(recorder, lambda: wrapped(*args, **kwargs), server)

    return wrapper


def test_id_headers(recorder: Recorder) -> Any:
    """Every HTTP request of a streamable-HTTP session names the current test (server mode)."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Arguments) -> Any:
        headers = wrapped(*args, **kwargs)
        test_id = recorder.current_test_id() if recorder.enabled else None
        if test_id and isinstance(headers, dict):
            headers.update(test_id_headers_for(test_id, headers))
        return headers

    return wrapper


def rebuild_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    """The recorded ``MCPError`` (or subclass) with its code, message and data."""
    from mcp.shared import exceptions
    from mcp_types import ErrorData

    if isinstance(body, dict) and "code" in body and "message" in body:
        data = ErrorData.model_validate(body)
    else:
        data = ErrorData(code=int(status_code or 0), message=message)
    cls = getattr(exceptions, name, None)
    if not (isinstance(cls, type) and issubclass(cls, exceptions.MCPError)):
        cls = exceptions.MCPError
    rebuild = getattr(cls, "from_error", None) if cls is not exceptions.MCPError else None
    try:
        return rebuild(data) if rebuild is not None else cls.from_error_data(data)
    except (TypeError, ValueError):  # a subclass built otherwise: the base class, with the same data
        return exceptions.MCPError.from_error_data(data)


def render(recording: Recording) -> str | None:
    """A person's view of an MCP answer: a tool's text and structured content, a list's names."""
    request = recording.request
    if request.get("provider") != "mcp":
        return None
    answer = recording.response.body
    head = f"{request.get('tool_name')} on {(request.get('kwargs') or {}).get('server')}\n"
    lines = []
    for block in getattr(answer, "content", None) or []:
        text = getattr(block, "text", None)
        lines.append(text if text is not None else f"[{getattr(block, 'type', type(block).__name__)}]")
    structured = getattr(answer, "structured_content", None)
    if structured is not None:
        lines.append(json.dumps(structured, ensure_ascii=False))
    if getattr(answer, "is_error", False):
        lines.insert(0, "[tool error]")
    for name in ("tools", "resources", "prompts", "resource_templates"):
        for item in getattr(answer, name, None) or []:
            lines.append(f"{name[:-1]} {getattr(item, 'name', item)}")
    for item in getattr(answer, "contents", None) or []:  # read_resource
        lines.append(str(getattr(item, "text", None) or f"[{getattr(item, 'mime_type', 'blob')}]"))
    for message in getattr(answer, "messages", None) or []:  # get_prompt
        lines.append(f"{message.role}: {getattr(message.content, 'text', message.content)}")
    if not lines:
        plain = answer.model_dump(mode="json", exclude_none=True) if hasattr(answer, "model_dump") else answer
        return head + json.dumps(plain, indent=2, default=str)
    return head + "\n".join(lines)
