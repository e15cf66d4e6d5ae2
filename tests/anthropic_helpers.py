"""Shared by the Anthropic tests: drive a real client (sync or async), record, stop the server, replay.

A scenario is one ``async def scenario(side)`` written once for both clients: ``await side(x)``
awaits ``x`` when the async client returned an awaitable and passes the sync client's answer
through, ``side.items`` / ``side.helper`` iterate or enter in the right way.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pydantic

import api_recorder
from api_recorder.network import network_blocked
from helpers import read_json, recordings_in

TEST_ID = "tests/anthropic_app/test_app.py::test_call"
TEST_FOLDER = Path("tests/anthropic_app/recordings")
MODEL = "claude-haiku-4-5"
# Shaped like a real key, so that a leak would be found, and one the scrubber recognizes.
API_KEY = "sk-ant-api03-Xk29dPq7Lm4Rt8Vb2Nc6Hj1Wz5Qy3Fs0Gd9Ka7Ue4Ti8Op2Bv6Cx1Mn5Lq3Zr-Ab12Cd34AA"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FLAVORS = ("sync", "async")


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@dataclass
class Side:
    """One client, sync or async, and how to call it from an async scenario."""

    client: Any
    is_async: bool

    async def __call__(self, value: Any) -> Any:
        return await value if inspect.isawaitable(value) else value

    async def items(self, iterable: Any) -> list[Any]:
        if self.is_async:
            return [item async for item in iterable]
        return list(iterable)

    async def helper(self, resource: Any = None, **kwargs: Any) -> tuple[str, Any, Any]:
        """``messages.stream(**kwargs)``: the joined ``text_stream``, the final message, the request id."""
        messages = resource if resource is not None else self.client.messages
        if self.is_async:
            async with messages.stream(**kwargs) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                return text, await stream.get_final_message(), stream.request_id
        with messages.stream(**kwargs) as stream:
            text = "".join(stream.text_stream)
            return text, stream.get_final_message(), stream.request_id


Scenario = Callable[[Side], Awaitable[Any]]


def client_for(url: str, flavor: str, **kwargs: Any) -> Any:
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("max_retries", 0)
    cls = anthropic.AsyncAnthropic if flavor == "async" else anthropic.Anthropic
    return cls(base_url=url, **kwargs)


def drive(url: str, flavor: str, scenario: Scenario, **client_kwargs: Any) -> Any:
    """Run ``scenario`` with a fresh client of ``flavor`` pointed at ``url``."""

    async def go() -> Any:
        side = Side(client_for(url, flavor, **client_kwargs), flavor == "async")
        try:
            return await scenario(side)
        finally:
            await side(side.client.close())

    return asyncio.run(go())


def record_then_replay(
    fake: Any,
    workdir: Path,
    flavor: str,
    scenario: Scenario,
    *,
    replay_scenario: Scenario | None = None,
    test_id: str = TEST_ID,
    **client_kwargs: Any,
) -> tuple[Any, Any]:
    """Record ``scenario`` against ``fake``, stop it, replay (``replay_scenario``, if given) offline.

    Asserts that recording reached the server, that replay did not (the server is stopped, the
    network blocked and its request count unchanged), and that the files are clean.
    """
    url = fake.base_url
    with api_recorder.recording("record", "recs"), api_recorder.test_context(test_id):
        live = drive(url, flavor, scenario, **client_kwargs)
    sent = fake.request_count
    assert sent >= 1, "recording reached no server"
    assert recordings_in(workdir), "recording wrote no file"
    fake.stop()
    with network_blocked(), api_recorder.recording("replay", "recs"), api_recorder.test_context(test_id):
        replayed = drive(url, flavor, replay_scenario or scenario, **client_kwargs)
    assert fake.request_count == sent, "replay reached the server"
    assert_clean_files(workdir)
    return live, replayed


def assert_clean_files(workdir: Path) -> None:
    """No key, no header, no live message id in any recording."""
    for path in recordings_in(workdir):
        data = path.read_bytes()
        assert API_KEY.encode() not in data, path
        assert b"msg_" not in data, path
        assert read_json(path)["request"]["headers"] == {}, path


def recording_where(workdir: Path, predicate: Callable[[dict[str, Any]], bool]) -> Path:
    """The one recording whose request body satisfies ``predicate``."""
    matches = [path for path in recordings_in(workdir) if predicate(read_json(path)["request"]["body"])]
    assert len(matches) == 1, [path.name for path in recordings_in(workdir)]
    return matches[0]


def recording_of(workdir: Path, prompt: str, *, stream: bool = False, turns: int = 1) -> Path:
    """The recording of the request whose first user message is ``prompt``."""

    def matches(body: dict[str, Any]) -> bool:
        messages = body.get("messages") or []
        return (
            len(messages) == turns
            and messages[0].get("content") == prompt
            and bool(body.get("stream")) is stream
            and "output_format" not in body
        )

    return recording_where(workdir, matches)


def rec_id(path: Path) -> str:
    """The id a replayed answer carries: ``rec-`` and the first 12 characters of its hash."""
    return f"rec-{path.stem[:12]}"


def shape(value: Any) -> Any:
    """Plain data keeping every class (module and name), field and order of ``value``."""
    if isinstance(value, pydantic.BaseModel):
        fields = {name: shape(getattr(value, name)) for name in type(value).model_fields}
        fields.update({name: shape(item) for name, item in (value.model_extra or {}).items()})
        return {"__class__": f"{type(value).__module__}.{type(value).__qualname__}", **fields}
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [shape(item) for item in value]
    return value


def _swapped(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {key: _swapped(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_swapped(item, ids) for item in value]
    return value


def assert_same(live: Any, replayed: Any, ids: dict[str, str] | None = None) -> None:
    """Same class, same fields, same order; only the live ids in ``ids`` become their stored form."""
    assert type(replayed) is type(live)
    assert shape(replayed) == _swapped(shape(live), ids or {})


def assert_message_replayed(live: Any, replayed: Any, path: Path, *, request_id: bool = True) -> None:
    """A replayed message equals the live one but for its id, normalized after its file's hash;
    like the SDK's, it carries the request id (``_request_id``), normalized the same way."""
    expected = rec_id(path)
    assert live.id.startswith("msg_")
    assert replayed.id == expected
    if request_id:
        assert live._request_id.startswith("req_")
        assert replayed._request_id == expected
    assert read_json(path)["response"]["body"]["__data__"]["id"] == expected
    assert_same(live, replayed, {live.id: expected})
