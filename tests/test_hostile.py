"""Hostile input: replay that must stay offline, and recording files built to break the reader.

Issue 12, items 9 to 11: the Realtime API (a websocket) in replay, name lookups and datagrams under
``--block-network``, files nested too deeply, id mappings that multiply the text, ``__type__``
names that walk to base classes, and ``api-recorder verify`` going on past every bad file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import resource
import shutil
import socket
import sys
import threading
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import api_recorder
from api_recorder.network import NetworkBlockedError, network_blocked
from helpers import SEED, recordings_in

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


# -- 9a. the Realtime API never connects in replay ------------------------------------------


class CountingListener(socket.socket):
    """A listening socket that counts the TCP connections it accepts (before any handshake)."""

    accepted = 0

    def accept(self):
        connection = super().accept()
        self.accepted += 1
        return connection


@pytest.fixture
def websocket_server():
    """A local websocket server on 127.0.0.1 that accepts anything and counts TCP connections."""
    pytest.importorskip("websockets")
    from websockets.sync.server import serve

    listener = CountingListener(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def handler(connection):
        for _ in connection:  # keep the connection until the client closes it
            pass

    server = serve(handler, sock=listener)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    server.http_url = f"http://127.0.0.1:{port}/v1"
    server.listener = listener
    yield server
    server.shutdown()
    thread.join(5)


def realtime_client(server, *, is_async=False):
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(base_url=server.http_url, api_key="sk-test", max_retries=0)


def connect_and_close(server, *, is_async=False, beta=False):
    """Open a realtime connection the way an application does, and close it again."""

    def resource_of(client):
        return client.beta.realtime if beta else client.realtime

    if not is_async:
        with resource_of(realtime_client(server)).connect(model="gpt-realtime"):
            pass
        return

    async def main():
        async with resource_of(realtime_client(server, is_async=True)).connect(model="gpt-realtime"):
            pass

    asyncio.run(main())


@pytest.mark.parametrize(
    ("is_async", "beta"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["sync", "async", "beta", "beta-async"],
)
def test_realtime_connect_is_refused_in_replay_and_nothing_connects(workdir, websocket_server, is_async, beta):
    call = "client.beta.realtime.connect()" if beta else "client.realtime.connect()"
    with api_recorder.recording("replay"), pytest.raises(api_recorder.UnsupportedCallError) as refused:
        connect_and_close(websocket_server, is_async=is_async, beta=beta)
    message = str(refused.value)
    assert call in message and "Realtime API" in message
    assert "LLAMA_STACK_TEST_INFERENCE_MODE=live" in message and "passthrough" in message
    time.sleep(0.05)
    assert websocket_server.listener.accepted == 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_realtime_goes_live_unrecorded_while_recording_with_a_warning(workdir, websocket_server, is_async):
    with api_recorder.recording("record"), pytest.warns(RuntimeWarning, match=r"realtime\.connect\(\).*unrecorded"):
        connect_and_close(websocket_server, is_async=is_async)
    assert websocket_server.listener.accepted == 1
    assert recordings_in(workdir) == []


def test_realtime_still_connects_live_and_for_passthrough_servers(workdir, websocket_server):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect_and_close(websocket_server)  # wrappers installed, recorder off
        with api_recorder.recording("live"):
            connect_and_close(websocket_server, is_async=True)
        with api_recorder.recording("replay", passthrough=[websocket_server.http_url]):
            connect_and_close(websocket_server)  # the server under test
    assert websocket_server.listener.accepted == 3


# -- 9b. --block-network: name lookups and datagrams too -----------------------------------


LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


@pytest.fixture
def resolver_spy(monkeypatch):
    """The real resolver functions, counted: a refused lookup must not even reach them."""
    asked = []
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        real = getattr(socket, name)

        def spy(host, *args, _real=real, _name=name, **kwargs):
            asked.append((_name, host))
            return _real(host, *args, **kwargs)

        monkeypatch.setattr(socket, name, spy)
    return asked


def test_name_lookups_are_refused_without_asking_the_resolver(resolver_spy):
    with network_blocked():
        for lookup, arguments in [
            (socket.getaddrinfo, ("example.com", 80)),
            (socket.gethostbyname, ("example.com",)),
            (socket.gethostbyname_ex, (b"api.openai.com",)),
            (socket.gethostbyaddr, ("192.0.2.1",)),
            (socket.getnameinfo, (("192.0.2.1", 80), 0)),
            (socket.getnameinfo, (("example.com", 80), socket.NI_NUMERICHOST)),
        ]:
            with pytest.raises(NetworkBlockedError) as refused:
                lookup(*arguments)
            assert isinstance(refused.value, OSError)  # what callers of getaddrinfo already handle
            assert "name lookup" in str(refused.value) and "--block-network" in str(refused.value)
        with pytest.raises(NetworkBlockedError, match=r"'example\.com'"):
            socket.create_connection(("example.com", 443), timeout=1)  # refused at the lookup
    assert resolver_spy == []


def test_local_names_and_numeric_addresses_resolve_inside_the_block(resolver_spy):
    with network_blocked():
        assert socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)[0][4][1] == 80
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
        assert socket.gethostbyname("localhost").startswith("127.")
        assert socket.getaddrinfo("192.0.2.1", 80)[0][4][0] == "192.0.2.1"  # numeric: nothing is asked
        socket.getaddrinfo(None, 0, flags=socket.AI_PASSIVE)  # a server binding its wildcard address
        with contextlib.suppress(OSError):  # the own name may not resolve everywhere: the spy shows it was let through
            socket.gethostbyname(socket.gethostname())
    assert ("gethostbyname", socket.gethostname()) in resolver_spy


def test_datagrams_to_remote_addresses_are_refused_and_loopback_ones_arrive():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with network_blocked():
            with pytest.raises(NetworkBlockedError, match=r"datagram to \('192\.0\.2\.1', 53\)"):
                sender.sendto(b"query", ("192.0.2.1", 53))  # TEST-NET-1: never routed
            with pytest.raises(NetworkBlockedError):
                sender.sendto(b"query", 0, ("192.0.2.1", 53))
            with pytest.raises(NetworkBlockedError):
                sender.sendmsg([b"query"], [], 0, ("192.0.2.1", 53))
            with pytest.raises(NetworkBlockedError):
                sender.connect(("192.0.2.1", 53))  # a connected UDP socket: refused at connect
            assert sender.sendto(b"one", receiver.getsockname()) == 3
            assert receiver.recv(16) == b"one"
            assert sender.sendmsg([b"two"], [], 0, receiver.getsockname()) == 3
            assert receiver.recv(16) == b"two"
    finally:
        sender.close()
        receiver.close()


def test_everything_is_put_back_exactly_after_the_block():
    functions = {name: getattr(socket, name) for name in LOOKUPS}
    methods = {name: getattr(socket.socket, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}
    own = dict(socket.socket.__dict__)
    with network_blocked(), network_blocked():  # nested blocks too
        assert socket.getaddrinfo is not functions["getaddrinfo"]
        assert socket.socket.sendto is not methods["sendto"]
    assert {name: getattr(socket, name) for name in LOOKUPS} == functions
    assert all(getattr(socket, name) is function for name, function in functions.items())
    assert all(getattr(socket.socket, name) is method for name, method in methods.items())
    assert dict(socket.socket.__dict__) == own  # inherited methods are inherited again, not copied


# -- 10. hostile files -----------------------------------------------------------------------


def nested_list(depth, inner="1"):
    return "[" * depth + inner + "]" * depth


def nested_dict(depth, inner="1"):
    return '{"a":' * depth + inner + "}" * depth


def recording_text(body, *, is_streaming=False, request="{}", extra=""):
    streaming = "true" if is_streaming else "false"
    return f'{{"request": {request}, "response": {{"body": {body}, "is_streaming": {streaming}{extra}}}}}'


def chat_envelope(data):
    return f'{{"__type__": "openai.types.chat.chat_completion.ChatCompletion", "__data__": {data}}}'


def load_fully(path):
    """Everything replay does with a file: parse it, rebuild each answer, stream or not, and its error."""
    recording = api_recorder.load_recording(path)
    for answer in recording.responses:
        if answer.is_streaming:
            list(answer.iter_body())
        answer.body  # noqa: B018
        answer.error()
    return recording


def deep_files():
    files = {}
    for depth in (600, 100_000):
        files[f"body-list-{depth}"] = recording_text(nested_list(depth))
        files[f"data-{depth}"] = recording_text(chat_envelope(f'{{"id": "x", "choices": {nested_list(depth)}}}'))
        files[f"chunk-{depth}"] = recording_text(f"[{chat_envelope(nested_dict(depth))}]", is_streaming=True)
    files["body-dict-100000"] = recording_text(nested_dict(100_000))
    files["request-100000"] = recording_text("1", request=nested_dict(100_000))
    files["inner-envelope-100000"] = recording_text(
        f'{{"rows": [{{"__type__": "x.Y", "__data__": {nested_list(100_000)}}}]}}'
    )
    files["error-body-100000"] = recording_text(
        "null", extra=f', "is_exception": true, "exception_data": {{"type": "E", "body": {nested_list(100_000)}}}'
    )
    files["more-responses-100000"] = recording_text(
        "1", extra=f'}}, "more_responses": [{{"body": {nested_list(100_000)}, "is_streaming": false}}], "x": {{"y": 1'
    )
    return files


DEEP = deep_files()


@pytest.mark.parametrize("name", sorted(DEEP))
def test_deeply_nested_files_raise_the_library_error_naming_the_file(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_text(DEEP[name])
    json_ok = True
    try:
        json.loads(DEEP[name])
    except RecursionError:
        json_ok = False
    if name.endswith("100000"):
        assert not json_ok  # the point: these are deeper than any reader goes
        with pytest.raises(api_recorder.RecordingFileError) as caught:
            load_fully(path)
        assert str(path) in str(caught.value)
        assert "nested too deeply" in str(caught.value) and "record it again" in str(caught.value)
    else:  # 600 deep: read if the readers manage, else the same error
        try:
            load_fully(path)
        except api_recorder.RecordingFileError as error:
            assert str(path) in str(error)


def test_a_deeply_nested_recording_fails_replay_with_the_library_error(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (path,) = recordings_in(workdir)
    document = json.loads(path.read_text())
    document["response"]["body"] = "DEEP"
    path.write_text(json.dumps(document).replace('"DEEP"', nested_list(100_000)))
    fake_openai.stop()
    with api_recorder.recording("replay"), pytest.raises(api_recorder.RecordingFileError, match="nested too deeply"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def mapping_bomb(entries=4, width=200):
    """About 1 KB: each entry turns every "a" (its own keys' included) into ``width`` of them."""
    mapping = {"a" * width + str(index): "a" for index in range(entries)}
    return json.dumps(
        {"request": {}, "response": {"body": "a" * 100, "is_streaming": False}, "id_normalization_mapping": mapping}
    )


def test_an_id_mapping_that_multiplies_the_file_is_refused_before_it_grows(tmp_path):
    path = tmp_path / "bomb.json"
    path.write_text(mapping_bomb())
    assert path.stat().st_size < 1100  # applied as written, it would need 10**12 bytes
    started = time.perf_counter()
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        load_fully(path)
    assert time.perf_counter() - started < 1
    message = str(caught.value)
    assert str(path) in message and "id_normalization_mapping" in message and "grow" in message
    assert "record it again" in message


def test_an_id_mapping_with_too_many_entries_is_refused_quickly(tmp_path):
    path = tmp_path / "many.json"
    mapping = {f"rec-{index}": f"chatcmpl-{index:08d}" for index in range(60_000)}
    document = {"request": {}, "response": {"body": "x" * 4000, "is_streaming": False}}
    path.write_text(json.dumps({**document, "id_normalization_mapping": mapping}))
    started = time.perf_counter()
    with pytest.raises(api_recorder.RecordingFileError, match="60000 entries, too many"):
        load_fully(path)
    assert time.perf_counter() - started < 5


def test_an_ordinary_id_mapping_still_renames_ids(tmp_path):
    path = tmp_path / "mapped.json"
    body = {"__type__": "openai.types.model.Model", "__data__": {"id": "m-live-123", "object": "model", "created": 1}}
    mapping = {"m-rec-000000000": "m-live-123"}  # normalized ids may be longer than the originals
    path.write_text(
        json.dumps(
            {"request": {}, "response": {"body": body, "is_streaming": False}, "id_normalization_mapping": mapping}
        )
    )
    assert load_fully(path).response.body.id == "m-rec-000000000"


WALKS_TO_BASES = [
    "openai.BaseModel",
    "openai._models.BaseModel",
    "openai.types.chat.chat_completion.BaseModel",
    "openai._models.GenericModel",
    "openai._models.pydantic.BaseModel",
    "openai.types.chat.ChatCompletion.__base__",
    "openai.types.chat.ChatCompletion.__class__",
    "openai.pagination.SyncPage",
    "openai.types.chat.parsed_chat_completion.ParsedChatCompletion",
    "openai.lib._webhooks.Webhooks",
    "openai.helpers.microphone.Microphone",
    "openai.types.chat.chat_completion.ChatCompletion.model_fields",
    "openai.types..chat.ChatCompletion",
    "openai.types.chat.ChatCompletion[int]",
    "tavily.BaseModel",
]


@pytest.mark.parametrize("type_name", WALKS_TO_BASES)
def test_types_that_walk_to_base_classes_are_refused(tmp_path, type_name):
    private_module = "openai.lib._webhooks"
    already_imported = private_module in sys.modules
    path = tmp_path / "walk.json"
    path.write_text(recording_text(json.dumps({"__type__": type_name, "__data__": {"id": "x", "a": 1}})))
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        load_fully(path)
    assert str(path) in str(caught.value) and repr(type_name) in str(caught.value)
    assert already_imported or private_module not in sys.modules  # a private name is refused before any import


def test_concrete_sdk_models_are_still_rebuilt_by_any_public_name(tmp_path):
    data = {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
    for type_name in ("openai.types.chat.ChatCompletion", "openai.types.chat.chat_completion.ChatCompletion"):
        path = tmp_path / "ok.json"
        path.write_text(recording_text(json.dumps({"__type__": type_name, "__data__": data})))
        assert type(load_fully(path).response.body).__name__ == "ChatCompletion"


@dataclasses.dataclass
class Point:
    x: int
    y: int


api_recorder.register_type(Point)
POINT = f"{Point.__module__}.{Point.__qualname__}"


@pytest.mark.parametrize("data", [{"x": 1}, {"x": 1, "y": 2, "z": 3}, [1, 2], "text"])
def test_a_registered_class_that_refuses_its_data_gives_the_library_error(tmp_path, data):
    path = tmp_path / "point.json"
    path.write_text(recording_text(json.dumps({"__type__": POINT, "__data__": data})))
    with pytest.raises(api_recorder.RecordingFileError) as caught:
        load_fully(path)
    assert str(path) in str(caught.value) and "cannot be rebuilt" in str(caught.value)


# -- 10. fuzzing with hostile shapes -------------------------------------------------------

ODD_SEGMENTS = [
    "openai", "types", "chat", "ChatCompletion", "chat_completion", "BaseModel", "_models", "__base__",
    "__class__", "__subclasses__", "__mro__", "pagination", "SyncPage", "tavily", "os", "system", "", "[int]",
    "__main__", "GenericModel", "pydantic", "model_fields", "lib", "_webhooks", "helpers", "microphone",
]  # fmt: skip
odd_type_names = st.one_of(
    st.lists(st.sampled_from(ODD_SEGMENTS), min_size=1, max_size=6).map(".".join),
    st.text(max_size=30),
    st.sampled_from(WALKS_TO_BASES),
)
DEPTHS = st.sampled_from([1, 30, 200, 600, 2_000, 100_000])


@st.composite
def hostile_recordings(draw):
    """A file text, of one of the shapes that broke the reader, with drawn sizes and places."""
    kind = draw(st.sampled_from(["nesting", "huge string", "mapping bomb", "odd type", "odd error"]))
    if kind == "nesting":
        depth = draw(DEPTHS)
        deep = draw(st.sampled_from([nested_list, nested_dict]))(depth)
        place = draw(st.sampled_from(["body", "data", "chunk", "request", "envelope in list"]))
        if place == "body":
            return recording_text(deep)
        if place == "data":
            return recording_text(chat_envelope(f'{{"id": "x", "choices": {deep}}}'))
        if place == "chunk":
            return recording_text(f"[{chat_envelope(deep)}]", is_streaming=True)
        if place == "request":
            return recording_text("1", request=deep)
        return recording_text(f'[{{"__type__": "openai.types.model.Model", "__data__": {deep}}}]')
    if kind == "huge string":
        text = draw(st.sampled_from(["a", "\\u00e9", "\\\\", '\\"'])) * draw(st.integers(0, 2_000_000))
        place = draw(st.sampled_from(["body", "type", "data", "request"]))
        if place == "body":
            return recording_text(f'"{text}"')
        if place == "type":
            return recording_text(f'{{"__type__": "openai.{text}", "__data__": {{}}}}')
        if place == "data":
            return recording_text(chat_envelope(f'{{"id": "{text}"}}'))
        return recording_text("1", request=f'{{"body": "{text}"}}')
    if kind == "mapping bomb":
        entries, width = draw(st.integers(1, 8)), draw(st.integers(1, 5_000))
        return mapping_bomb(entries, width)
    if kind == "odd type":
        envelope = {"__type__": draw(odd_type_names), "__data__": draw(st.sampled_from([{}, {"id": "x"}, [], 1]))}
        if draw(st.booleans()):
            return recording_text(json.dumps([envelope]), is_streaming=True)
        return recording_text(json.dumps({"rows": [envelope]} if draw(st.booleans()) else envelope))
    junk = st.one_of(
        st.none(), st.integers(-(10**30), 10**30), st.text(max_size=10), st.lists(st.integers(), max_size=3)
    )
    data = draw(
        st.fixed_dictionaries(
            {"type": junk, "status_code": junk, "message": junk},
            optional={"module": junk, "provider": junk, "category": junk, "body": junk},
        )
    )
    return recording_text("null", extra=f', "is_exception": true, "exception_data": {json.dumps(data)}')


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=hostile_recordings())
def test_hostile_files_load_or_raise_the_library_error_in_bounded_time_and_memory(tmp_path, text):
    path = tmp_path / "hostile.json"
    path.write_text(text)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    try:
        load_fully(path)
    except api_recorder.RecordingFileError as error:  # TypeNotInstalledError is one
        assert str(path) in str(error)
    assert time.perf_counter() - started < 3
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 512 * 1024


# -- 11. verify lists every bad file and goes on --------------------------------------------

typer_testing = pytest.importorskip("typer.testing")
runner = typer_testing.CliRunner(env={"COLUMNS": "1000", "NO_COLOR": "1"})


def hostile_folder(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(SEED, folder / "good.json")
    (folder / "deep.json").write_text(recording_text(nested_list(100_000)))
    (folder / "bomb.json").write_text(mapping_bomb())
    (folder / "odd.json").write_text(recording_text(json.dumps({"__type__": "openai.BaseModel", "__data__": {}})))
    (folder / "markup.json").write_text(recording_text(json.dumps({"__type__": "[/bold]", "__data__": {}})))
    return folder


def test_verify_lists_every_bad_file_with_its_reason_and_goes_on(tmp_path):
    from api_recorder.cli import app

    hostile_folder(tmp_path)
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    output = result.output
    assert "Traceback" not in output
    assert "1 ok, 0 skipped (types not installed), 4 failed" in output
    assert "good.json" not in output
    for name, reason in [
        ("deep.json", "nested too deeply"),
        ("bomb.json", "id_normalization_mapping"),
        ("odd.json", "'openai.BaseModel' is not allowed"),
        ("markup.json", "'[/bold]' is not allowed"),
    ]:
        line = next((line for line in output.splitlines() if name in line), "")
        assert reason in line, (name, output)


def test_verify_reports_any_other_error_by_its_type_and_goes_on(tmp_path, monkeypatch):
    from api_recorder import cli

    folder = hostile_folder(tmp_path)
    shutil.copy(SEED, folder / "boom.json")
    real = cli.read_recording

    def read_recording(path, rehydrator):
        if path.name == "boom.json":
            raise MemoryError("the machine ran out")
        return real(path, rehydrator)

    monkeypatch.setattr(cli, "read_recording", read_recording)
    result = runner.invoke(cli.app, ["verify", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "1 ok, 0 skipped (types not installed), 5 failed" in result.output
    line = next(line for line in result.output.splitlines() if "boom.json" in line)
    assert "MemoryError: the machine ran out" in line


def test_verify_lets_an_interrupt_stop_it(tmp_path, monkeypatch):
    from api_recorder import cli

    shutil.copy(SEED, tmp_path / "a.json")

    def interrupted(path, rehydrator):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "read_recording", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.verify(tmp_path / "a.json")


@pytest.mark.parametrize(
    ("name", "connect"),
    [
        ("client.responses.connect()", lambda client: client.responses.connect()),
        ("client.realtime.translations.connect()", lambda client: client.realtime.translations.connect()),
        ("client.live.connect()", lambda client: client.live.connect(model="gpt-realtime")),
        ("client.live.forks.connect()", lambda client: client.live.forks.connect("call_1")),
        ("client.live.sideband.connect()", lambda client: client.live.sideband.connect("call_1")),
    ],
)
def test_every_other_websocket_of_the_sdk_is_refused_in_replay(workdir, fake_openai, name, connect):
    client = fake_openai.client()
    with api_recorder.recording("replay"), pytest.raises(api_recorder.UnsupportedCallError, match=re.escape(name)):
        with connect(client):
            pass
    assert fake_openai.request_count == 0
