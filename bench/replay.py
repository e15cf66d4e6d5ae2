"""Replay speed: api-recorder against vcrpy and against the HTTP floor, on the same 200 calls.

Workload: 200 distinct calls through a sync ``OpenAI`` client, a quarter each of chat (200
tokens), streamed chat (200 chunks), embeddings (two inputs of 1,536 floats, float encoding) and
chat with a tool call. Everything is recorded against the local fake OpenAI server, then replayed
with the server stopped:

- api-recorder: typed objects from its recordings;
- vcrpy (JSON serializer): the same HTTP bytes from a cassette, parsed again by the SDK;
- the HTTP floor: the same bytes served from memory by an httpx2 ``MockTransport``, parsed by the
  SDK (what any HTTP-level recorder costs at best).

Also: loading and rehydrating every file of llama-stack's sample against the seed's way
(``json.load``, import the class, ``model_validate`` each envelope), record mode against live,
and the time to the first chunk of the largest sample recording against rehydrating it whole.
Ratios are computed within this run: these machines are noisy. Best of ``BENCH_REPEATS`` runs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import httpx2  # noqa: E402
import openai  # noqa: E402
import vcr  # noqa: E402
from fakes.openai_app import FakeOpenAI  # noqa: E402

import api_recorder  # noqa: E402
from api_recorder.recorder import RECORDER  # noqa: E402
from api_recorder.storage import read_recording  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SAMPLE = ROOT / "tests" / "data" / "llama-stack"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "web_search",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
]


def workload() -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(50):
        question = [{"role": "user", "content": f"Question number {i} about recorders"}]
        calls.append(("chat", {"model": "gpt-4o", "messages": question, "max_tokens": 200}))
        calls.append(
            ("chat", {"model": "gpt-4o", "messages": question, "max_tokens": 200, "stream": True, "temperature": 0.5})
        )
        calls.append(
            (
                "embed",
                {"model": "text-embedding-3-small", "input": [f"first {i}", f"second {i}"], "encoding_format": "float"},
            )
        )
        calls.append(("chat", {"model": "gpt-4o", "messages": question, "tools": TOOLS}))
    return calls


CALLS = workload()


def run_workload(client: openai.OpenAI) -> int:
    """Make every call; streams are read to the end. Returns a checksum of what came back."""
    total = 0
    for kind, kwargs in CALLS:
        if kind == "embed":
            total += len(client.embeddings.create(**kwargs).data[0].embedding)
        elif kwargs.get("stream"):
            total += sum(1 for _ in client.chat.completions.create(**kwargs))
        else:
            total += len(client.chat.completions.create(**kwargs).choices)
    return total


def best_of(action: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


class CapturingTransport(httpx2.BaseTransport):
    """Keeps every response's bytes, for the floor: replaying HTTP from memory."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.answers: dict[tuple[str, str, bytes], tuple[int, list[tuple[bytes, bytes]], bytes]] = {}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        key = (request.method, str(request.url), request.content)
        self.answers[key] = (response.status_code, list(response.headers.raw), body)
        return httpx2.Response(response.status_code, headers=response.headers.raw, content=body)


def memory_transport(answers: dict) -> httpx2.MockTransport:
    """Serves the captured bytes from memory: the HTTP floor, for any SDK built on httpx2."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        status, headers, body = answers[(request.method, str(request.url), request.content)]
        return httpx2.Response(status, headers=headers, content=body)

    return httpx2.MockTransport(handler)


def memory_client(url: str, answers: dict) -> openai.OpenAI:
    transport = memory_transport(answers)
    return openai.OpenAI(
        base_url=url, api_key="sk-bench", max_retries=0, http_client=httpx2.Client(transport=transport)
    )


def workload_table(work: Path) -> list[tuple[str, float]]:
    recordings = work / "recordings"
    cassette = str(work / "cassette.json")
    capture = CapturingTransport()
    with FakeOpenAI() as fake:
        url = fake.url
        live_client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
        capture_client = openai.OpenAI(
            base_url=url, api_key="sk-bench", max_retries=0, http_client=httpx2.Client(transport=capture)
        )
        run_workload(capture_client)
        live, _ = best_of(lambda: run_workload(live_client))

        def record() -> int:
            with api_recorder.recording("record", recordings):
                return run_workload(live_client)

        recorded, _ = best_of(record)
        with vcr.use_cassette(cassette, serializer="json", record_mode="all"):
            run_workload(live_client)
    # The server is stopped from here on: replay must not need it.
    offline = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)

    def replay() -> int:
        with api_recorder.recording("replay", recordings):
            return run_workload(offline)

    def vcr_replay() -> int:
        with vcr.use_cassette(cassette, serializer="json", record_mode="none"):
            return run_workload(offline)

    floor_client = memory_client(url, capture.answers)
    validation, _ = best_of(validation_alone(recordings))
    ours, ours_sum = best_of(replay)
    vcrpy, vcr_sum = best_of(vcr_replay)
    floor, floor_sum = best_of(lambda: run_workload(floor_client))
    assert ours_sum == vcr_sum == floor_sum, (ours_sum, vcr_sum, floor_sum)
    return [
        ("live (local server)", live),
        ("api-recorder record", recorded),
        ("api-recorder replay", ours),
        ("vcrpy replay", vcrpy),
        ("HTTP floor (MockTransport)", floor),
        (VALIDATION, validation),
    ]


VALIDATION = "pydantic validation of the answers alone"


def validation_alone(recordings: Path) -> Callable[[], int]:
    """pydantic-core validating each recorded answer's JSON as its class (a list of chunks for a
    stream), and nothing else: the part of a faithful replay no recorder can skip but by not
    validating. Returns the action to time."""
    from pydantic import TypeAdapter

    payloads = []
    for path in sorted(recordings.rglob("*.json")):
        body = json.loads(path.read_bytes())["response"]["body"]
        envelopes = body if isinstance(body, list) else [body]
        if not envelopes or not all(isinstance(item, dict) and "__type__" in item for item in envelopes):
            continue  # the model list: not an answer of the workload
        module, _, name = envelopes[0]["__type__"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        data = [item["__data__"] for item in envelopes]
        adapter, payload = (TypeAdapter(list[cls]), data) if isinstance(body, list) else (TypeAdapter(cls), data[0])
        payloads.append((adapter, json.dumps(payload).encode()))

    def validate() -> int:
        return sum(1 for adapter, payload in payloads if adapter.validate_json(payload) is not None)

    return validate


def seed_way(path: Path) -> list[Any]:
    """How llama-stack's recorder reads a file: json.load, import the class, model_validate."""
    with open(path) as stream:
        document = json.load(stream)
    body = document["response"]["body"]
    objects = []
    for envelope in body if isinstance(body, list) else [body]:
        if isinstance(envelope, dict) and "__type__" in envelope:
            module_name, class_name = envelope["__type__"].rsplit(".", 1)
            cls = getattr(importlib.import_module(module_name), class_name)
            try:
                objects.append(cls.model_validate(envelope["__data__"]))
            except Exception:
                objects.append(cls.model_construct(**envelope["__data__"]))
        else:
            objects.append(envelope)
    return objects


def our_way(path: Path) -> list[Any]:
    response = read_recording(path, RECORDER.rehydrator).response
    body = response.body
    return body if isinstance(body, list) else [body]


def installed_sample() -> list[Path]:
    usable = []
    for path in sorted(SAMPLE.glob("*/recordings/*.json")):
        try:
            our_way(path)
            usable.append(path)
        except api_recorder.TypeNotInstalledError:
            continue
    return usable


def sample_table() -> list[tuple[str, float]]:
    files = installed_sample()
    baseline, theirs = best_of(lambda: [seed_way(path) for path in files])
    ours_time, ours = best_of(lambda: [our_way(path) for path in files])
    same = sum(1 for mine, reference in zip(ours, theirs) for a, b in zip(mine, reference) if type(a) is type(b))
    total = sum(len(reference) for reference in theirs)
    assert same == total, f"only {same} of {total} objects have the same class"
    return [(f"load {len(files)} sample files, seed's way", baseline), ("load them with api-recorder", ours_time)]


def first_chunk_table() -> list[tuple[str, float]]:
    largest = max(SAMPLE.glob("*/recordings/*.json"), key=lambda p: p.stat().st_size)

    def first() -> Any:
        return next(read_recording(largest, RECORDER.rehydrator).response.iter_body())

    def whole() -> int:
        return len(read_recording(largest, RECORDER.rehydrator).response.body)

    first_time, _ = best_of(first)
    whole_time, count = best_of(whole)
    return [(f"first chunk of {largest.name[:12]}... ({count} chunks)", first_time), ("all its chunks", whole_time)]


def memory_table(work: Path, copies: int = 40) -> dict[str, float]:
    """Peak memory (tracemalloc) of a huge stream: as ``.body``, as a replayed stream, and the
    objects alone. The file is the largest sample recording with its chunks repeated ``copies`` times."""
    import gc
    import tracemalloc

    largest = max(SAMPLE.glob("*/recordings/*.json"), key=lambda p: p.stat().st_size)
    document = json.loads(largest.read_bytes())
    document["response"]["body"] = document["response"]["body"] * copies
    huge = work / "huge.json"
    huge.write_text(json.dumps(document, indent=2))
    del document

    def peak_of(action: Callable[[], Any]) -> tuple[float, Any]:
        gc.collect()
        tracemalloc.start()
        kept = action()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, kept

    gc.collect()
    tracemalloc.start()
    chunks = read_recording(huge, RECORDER.rehydrator).response.body
    body_peak, with_objects = tracemalloc.get_traced_memory()[1], tracemalloc.get_traced_memory()[0]
    del chunks
    gc.collect()
    objects_size = with_objects - tracemalloc.get_traced_memory()[0]  # what letting them go gives back
    tracemalloc.stop()
    stream_peak, _ = peak_of(lambda: sum(1 for _ in read_recording(huge, RECORDER.rehydrator).response.iter_body()))
    return {"file": huge.stat().st_size, "body": body_peak, "objects": objects_size, "stream": stream_peak}


def print_table(title: str, rows: list[tuple[str, float]], calls: int | None = None) -> None:
    print(f"\n{title}")
    for name, seconds in rows:
        rate = f"{calls / seconds:10.0f} calls/s" if calls else ""
        print(f"  {name:<44} {seconds * 1000:10.1f} ms {rate}")


def main() -> None:
    print(
        f"python {sys.version.split()[0]}, openai {openai.__version__}, vcrpy {vcr.__version__}, "
        f"{os.cpu_count()} cores; best of {REPEATS}"
    )
    with tempfile.TemporaryDirectory() as work:
        rows = workload_table(Path(work))
    times = dict(rows)
    print_table(f"workload: {len(CALLS)} calls", rows, calls=len(CALLS))
    ours = times["api-recorder replay"]
    print(f"  vcrpy / api-recorder replay:       {times['vcrpy replay'] / ours:6.1f}x   (target >= 10x)")
    print(f"  HTTP floor / api-recorder replay:  {times['HTTP floor (MockTransport)'] / ours:6.1f}x   (target > 1x)")
    print(
        f"  HTTP floor / validation alone:     {times['HTTP floor (MockTransport)'] / times[VALIDATION]:6.1f}x"
        "   (the most any faithful replay reaches: it validates at least this)"
    )
    print(
        f"  record / live:                     {times['api-recorder record'] / times['live (local server)']:6.2f}x"
        "   (target <= 1.2x)"
    )

    rows = sample_table()
    print_table("llama-stack sample", rows)
    print(f"  seed's way / api-recorder:         {rows[0][1] / rows[1][1]:6.1f}x   (target >= 3x)")

    rows = first_chunk_table()
    print_table("largest sample recording", rows)
    print(f"  first chunk / whole:               {rows[0][1] / rows[1][1]:6.2f}    (target <= 0.20)")

    with tempfile.TemporaryDirectory() as work:
        memory = memory_table(Path(work))
    mb = 1e6
    print(f"\nmemory, a {memory['file'] / mb:.0f} MB streamed recording (the largest sample's chunks x 40)")
    print(f"  the rebuilt objects alone            {memory['objects'] / mb:8.0f} MB")
    print(
        f"  peak, read as .response.body         {memory['body'] / mb:8.0f} MB   "
        f"({memory['body'] / memory['objects']:.2f}x the objects; target: about 1x)"
    )
    print(
        f"  peak, replayed as a stream           {memory['stream'] / mb:8.0f} MB   "
        f"({memory['stream'] / memory['file']:.2f}x the file)"
    )


if __name__ == "__main__":
    main()
