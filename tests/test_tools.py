"""Tool calls: Tavily's clients, @api_recorder.tool and wrap_tool, recorded then replayed offline."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import textwrap

import pytest
from pydantic import BaseModel

import api_recorder
import scenarios
from helpers import read_json, recordings_in

pytest.importorskip("tavily")

TEST_ID = "tests/agents/test_search.py::test_search"

SYNC_CALLS = {
    "search": lambda c: c.search("llama 4 experts", include_answer=True, max_results=3),
    "extract": lambda c: c.extract(urls=["https://example.com/a", "https://example.com/b"]),
    "crawl": lambda c: c.crawl("https://example.com", max_depth=1),
    "map": lambda c: c.map("https://example.com"),
    "qna_search": lambda c: c.qna_search("who makes llama?"),
}


def volatile_free(result):
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k not in ("request_id", "response_time")}
    return result


@pytest.mark.parametrize("method", sorted(SYNC_CALLS))
def test_tavily_sync_record_then_replay(method, workdir, fake_tavily):
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live = SYNC_CALLS[method](fake_tavily.client())
    calls = fake_tavily.request_count
    assert calls == 1
    (path,) = recordings_in(workdir / "tests" / "agents" / "recordings")
    request = read_json(path)["request"]
    assert request["provider"] == "tavily" and request["tool_name"] == method
    assert request["test_id"] == TEST_ID

    fake_tavily.stop()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = SYNC_CALLS[method](fake_tavily.client())
    assert fake_tavily.request_count == calls
    assert type(replayed) is type(live)
    assert volatile_free(replayed) == volatile_free(live)


@pytest.mark.parametrize("method", sorted(SYNC_CALLS))
def test_tavily_async_record_then_replay(method, workdir, fake_tavily):
    async def call():
        client = fake_tavily.async_client()
        try:
            return await SYNC_CALLS[method](client)
        finally:
            await client.close()

    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live = asyncio.run(call())
    fake_tavily.stop()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = asyncio.run(call())
    assert fake_tavily.request_count == 1
    assert volatile_free(replayed) == volatile_free(live)


def test_tavily_file_holds_named_arguments_and_constant_volatile_fields(workdir, fake_tavily):
    with api_recorder.recording("record"):
        live = fake_tavily.client().search("llama", max_results=2)
    (path,) = recordings_in(workdir)
    document = read_json(path)
    assert document["request"] == {
        "test_id": None,
        "provider": "tavily",
        "tool_name": "search",
        "kwargs": {"query": "llama", "max_results": 2},
    }
    body = document["response"]["body"]
    assert body["request_id"] == f"rec-{path.stem[:12]}"
    assert body["response_time"] == 0
    assert live["request_id"] != body["request_id"]  # the caller saw the live one
    assert body["results"] == live["results"]


def test_tavily_api_key_never_reaches_a_file(workdir, fake_tavily, monkeypatch):
    secret = "tvly-DISTINCTIVEFAKEKEY0123456789"
    env_secret = "tvly-ENVIRONMENTFAKEKEY987654321"
    monkeypatch.setenv("TAVILY_API_KEY", env_secret)
    from tavily import TavilyClient

    with api_recorder.recording("record"):
        TavilyClient(api_key=secret, api_base_url=fake_tavily.base_url).search("keys")
        TavilyClient(api_base_url=fake_tavily.base_url).extract(urls=["https://example.com"])
    assert fake_tavily.requests[0].headers["authorization"] == f"Bearer {secret}"
    written = b"".join(p.read_bytes() for p in recordings_in(workdir))
    assert len(recordings_in(workdir)) == 2
    assert secret.encode() not in written and env_secret.encode() not in written
    assert b"DISTINCTIVE" not in written and b"ENVIRONMENT" not in written


def test_agent_loop_replays_whole(workdir, fake_openai, fake_tavily):
    """A chat asks for a search, Tavily answers, a second chat uses the answer."""

    def agent(openai_client, tavily_client):
        tools = scenarios.TOOLS
        messages = [{"role": "user", "content": "How many experts does Llama 4 Maverick have?"}]
        first = openai_client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
        call = first.choices[0].message.tool_calls[0]
        query = json.loads(call.function.arguments)["query"]
        results = tavily_client.search(query, max_results=2)
        messages += [
            first.choices[0].message,
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(results["results"])},
        ]
        final = openai_client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
        return query, results["results"], final.choices[0].message.content

    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live = agent(fake_openai.client(), fake_tavily.client())
    assert len(recordings_in(workdir)) == 3
    fake_openai.stop()
    fake_tavily.stop()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed = agent(fake_openai.client(), fake_tavily.client())
    assert replayed == live
    assert fake_openai.request_count == 2 and fake_tavily.request_count == 1


# -- any tool ------------------------------------------------------------------------------

CALLS: list[str] = []


@api_recorder.tool(provider="weather")
def forecast(city: str, days: int = 1) -> dict:
    CALLS.append(city)
    return {"city": city, "days": days, "sky": f"clear over {city}"}


@api_recorder.tool(provider="weather", name="async_forecast")
async def forecast_async(city: str) -> dict:
    CALLS.append(city)
    return {"city": city, "sky": "rain"}


@api_recorder.register_type
class Row(BaseModel):
    key: str
    value: float


class Database:
    def __init__(self, name):
        self.name = name

    @api_recorder.tool(provider="db")
    def lookup(self, key: str) -> Row:
        CALLS.append(key)
        return Row(key=key, value=1.5)


class Unregistered(BaseModel):
    x: int


@api_recorder.tool(provider="db")
def bad_result() -> Unregistered:
    return Unregistered(x=1)


@api_recorder.tool(provider="db")
def takes_anything(conn, key):
    return key


def test_tool_decorator_records_and_replays_sync_async_and_methods(workdir):
    CALLS.clear()
    with api_recorder.recording("record"):
        live = (forecast("Paris", days=2), asyncio.run(forecast_async("Oslo")), Database("x").lookup("k1"))
    assert CALLS == ["Paris", "Oslo", "k1"]
    files = {read_json(p)["request"]["tool_name"]: read_json(p) for p in recordings_in(workdir)}
    assert files["forecast"]["request"]["kwargs"] == {"city": "Paris", "days": 2}
    assert files["Database.lookup"]["response"]["body"]["__type__"].endswith("test_tools.Row")
    with api_recorder.recording("replay"):
        replayed = (
            forecast("Paris", days=2),
            asyncio.run(forecast_async("Oslo")),
            Database("y").lookup("k1"),
        )
    assert CALLS == ["Paris", "Oslo", "k1"]  # nothing ran again
    assert replayed == live
    assert type(replayed[2]) is Row
    with (
        api_recorder.recording("replay"),
        pytest.raises(api_recorder.RecordingNotFoundError, match=r"weather\.forecast"),
    ):
        forecast("Rome")


def test_tools_run_normally_when_not_recording(workdir):
    CALLS.clear()
    assert forecast("Lima") == {"city": "Lima", "days": 1, "sky": "clear over Lima"}
    assert CALLS == ["Lima"]
    assert recordings_in(workdir) == []


def test_unrecordable_arguments_and_results_fail_at_record_time(workdir):
    with api_recorder.recording("record"):
        with pytest.raises(api_recorder.UnrecordableValueError, match="argument 'conn' of takes_anything"):
            takes_anything(object(), "k")
        with pytest.raises(api_recorder.UnrecordableValueError, match="register_type"):
            bad_result()
    assert recordings_in(workdir) == []


def test_wrap_tool_instruments_a_module_it_does_not_own(workdir, monkeypatch):
    package = workdir / "vendorlib"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "search.py").write_text(
        textwrap.dedent("""
        CALLS = []

        class Scraper:
            def fetch(self, url, *, timeout=3):
                CALLS.append(url)
                return {"url": url, "html": "<p>hi</p>"}

        async def lookup(term):
            CALLS.append(term)
            return [term, term.upper()]
    """)
    )
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.delitem(sys.modules, "vendorlib.search", raising=False)

    with api_recorder.recording("record"):
        api_recorder.wrap_tool("vendorlib.search:Scraper.fetch", provider="scraper")
        api_recorder.wrap_tool("vendorlib.search:lookup", provider="scraper")
        module = importlib.import_module("vendorlib.search")  # imported after: the hook installs
        live = (module.Scraper().fetch("https://a.example"), asyncio.run(module.lookup("llama")))
    assert module.CALLS == ["https://a.example", "llama"]
    assert hasattr(vars(module.Scraper)["fetch"], "__wrapped__")  # disable() leaves it, inert

    with api_recorder.recording("replay"):
        replayed = (module.Scraper().fetch("https://a.example"), asyncio.run(module.lookup("llama")))
    assert replayed == live
    assert module.CALLS == ["https://a.example", "llama"]
    names = sorted(read_json(p)["request"]["tool_name"] for p in recordings_in(workdir / "recordings"))
    assert names == ["Scraper.fetch", "lookup"]
