"""Every covered OpenAI call: record against the local server, stop it, replay the same objects."""

from __future__ import annotations

import asyncio

import pytest

import api_recorder
import scenarios

TEST_ID = "tests/area/test_calls.py::test_one"


def run_scenario(name, is_async, fake):
    if is_async:

        async def scenario():
            async with fake.async_client() as client:
                return await scenarios.ASYNC[name](client)

        return asyncio.run(scenario())
    with fake.client() as client:
        return scenarios.SYNC[name](client)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", sorted(scenarios.SYNC))
def test_record_then_replay_with_the_server_stopped(name, is_async, workdir, fake_openai):
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        live_objects, live_summary = run_scenario(name, is_async, fake_openai)
    calls_made = fake_openai.request_count
    assert calls_made >= 1
    folder = "recordings" if name.startswith("models") else "tests/area/recordings"  # model calls are shared
    written = sorted((workdir / folder).glob("*.json"))
    assert written, "record mode wrote no recording"

    fake_openai.stop()
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        replayed_objects, replayed_summary = run_scenario(name, is_async, fake_openai)

    assert fake_openai.request_count == calls_made, "replay reached the server"
    assert [type(obj) for obj in replayed_objects] == [type(obj) for obj in live_objects]
    assert replayed_summary == live_summary
