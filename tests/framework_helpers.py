"""Shared by the framework tests: record a scenario, stop the server, replay it twice, compare.

A framework (LangChain, the OpenAI Agents SDK) is driven for real against the local fake
OpenAI server while recording; the server is then stopped and the same scenario replayed, twice.
What the caller sees while recording carries the live ids and timestamps, while a replay carries
the recorded (normalized) ones, so:

- live vs replay is compared with answer ids and timestamps masked (everything else exact:
  classes, content, tool call names and arguments, token usage, order);
- replay vs a second replay is compared exactly, ids included (only the ids a framework makes
  up locally on every run, such as LangChain's ``lc_run--...``, are masked).

Timestamps are always masked: replay answers `0` for the server's, and frameworks stamp some
objects themselves (the Agents SDK builds the `Response` events of a streamed Chat Completions
run with `created_at=time.time()`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

import api_recorder
from helpers import recordings_in

T = TypeVar("T")

# Ids an answer carries: fresh from the server while recording, normalized (`rec-...`) on replay.
ANSWER_ID = re.compile(r"^(chatcmpl-|resp_|rec-|call_|msg_|fc_|req_)[A-Za-z0-9_-]+$")
# Ids a framework makes up itself on every run, recorded or not.
LOCAL_ID = re.compile(r"^(lc_run--|run-)[0-9a-f-]+")
TIMESTAMP_KEYS = frozenset({"created", "created_at", "completed_at"})
# Raw HTTP headers (LangChain's include_response_headers): compared by the tests that ask for them.
HEADER_KEYS = frozenset({"headers"})


def comparable(value: Any, *, mask_answer_ids: bool = True) -> Any:
    """Plain data that keeps every class name, field and order of `value`, minus volatile values."""

    def walk(item: Any) -> Any:
        if isinstance(item, BaseModel):
            fields = {name: getattr(item, name) for name in type(item).model_fields}
            fields.update(item.model_extra or {})
            return {"__class__": type(item).__qualname__, **walk_mapping(fields)}
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            fields = {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}
            return {"__class__": type(item).__qualname__, **walk_mapping(fields)}
        if isinstance(item, dict):
            return walk_mapping(item)
        if isinstance(item, (list, tuple)):
            return [walk(element) for element in item]
        if isinstance(item, str):
            if LOCAL_ID.match(item):
                return "<local id>"
            if mask_answer_ids and ANSWER_ID.match(item):
                return "<answer id>"
        return item

    def walk_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, item in mapping.items():
            if key in TIMESTAMP_KEYS and isinstance(item, (int, float)):
                out[key] = "<timestamp>"
            elif mask_answer_ids and key in HEADER_KEYS:
                out[key] = "<headers>"
            else:
                out[key] = walk(item)
        return out

    return walk(value)


def record_then_replay(
    fake: Any, workdir: Path, test_id: str, scenario: Callable[[str], T], *, expected_requests: int | None = None
) -> tuple[T, T, T]:
    """Run `scenario(base_url)` recording, stop `fake`, then replay it twice; return the three results.

    Asserts that recording reached the server (`expected_requests` times, if given) and wrote one
    file per request (every scenario here sends distinct requests) next to the test, and that
    neither replay sent a single request.
    """
    folder = workdir / "recordings"  # for calls outside a test: none here
    with api_recorder.recording("record", folder), api_recorder.test_context(test_id):
        live = scenario(fake.url)
    sent = fake.request_count
    assert sent >= 1, "the scenario reached no server while recording"
    if expected_requests is not None:
        assert sent == expected_requests, [f"{r.method} {r.path}" for r in fake.requests]
    test_folder = workdir / Path(test_id.split("::")[0]).parent / "recordings"
    assert len(recordings_in(test_folder)) == sent, recordings_in(workdir)
    assert not folder.exists()

    fake.stop()
    replays = []
    for _ in range(2):
        with api_recorder.recording("replay", folder), api_recorder.test_context(test_id):
            replays.append(scenario(fake.url))
    assert fake.request_count == sent, "replay reached the server"
    return live, replays[0], replays[1]


def assert_same_answers(live: Any, replayed: Any, replayed_again: Any) -> None:
    """Live and replay agree but for answer ids and timestamps; two replays agree exactly."""
    assert comparable(replayed) == comparable(live)
    assert comparable(replayed_again, mask_answer_ids=False) == comparable(replayed, mask_answer_ids=False)
