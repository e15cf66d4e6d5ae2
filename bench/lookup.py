"""Lookup cost against the number of recordings in a folder: hits, model lists, explained misses.

One recorded chat answer and one recorded model list (against the local fake OpenAI server) are
copied into ``N`` recordings of distinct requests in one folder, 10 per test (as a test file's
folder, or llama-stack's single folder, holds them), for N = 100 and N = 10,000. Then, in replay
mode through a sync ``OpenAI`` client:

- hit: ``chat.completions.create`` of a recorded request (the whole call, answer rebuilt);
- model list: ``models.list()`` (its files are found by a glob, ``models-<hash>-*.json``);
- miss, changed: a recorded test asks something it never recorded; the error names the nearest
  recording of that test and its diff;
- miss, new test: a test with no recording at all asks.

Each is timed per call, best of ``BENCH_REPEATS`` rounds, once the folder has stopped changing
(an index listed while its folder is still changing is not trusted; see ``RACY_NS``). The first
model list and the first miss after the files are written (which build the folder's index)
are shown apart. The target is under 1 ms each at 10,000 files; the ratio to 100 files shows
how each scales. Ratios are computed within this run: these machines are noisy.
"""

from __future__ import annotations

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

import openai  # noqa: E402

import api_recorder  # noqa: E402
from api_recorder import storage  # noqa: E402
from api_recorder.recorder import RECORDER, HttpRequest  # noqa: E402
from fakes.openai_app import FakeOpenAI  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SIZES = (100, 10_000)
PER_TEST = 10  # recordings per test
SAMPLED = 200  # distinct requests timed per round (hits, misses)
ROUND_BUDGET = 2.0  # seconds at most per round: the slowest lookups stop early
TARGET_MS = 1.0
TEST_FILE = "tests/test_bench.py"
FOLDER = Path("tests") / "recordings"  # the test file's folder, also the recording dir here


def test_id(i: int) -> str:
    return f"{TEST_FILE}::test_{i // PER_TEST}"


def question(i: int, changed: bool = False) -> dict[str, Any]:
    content = f"Question number {i} about recorders" + (", asked differently" if changed else "")
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], "max_tokens": 200}


def record_templates(work: Path) -> tuple[dict[str, Any], bytes, str]:
    """One chat recording (as a dict) and one model-list file (its name and bytes)."""
    with FakeOpenAI() as fake, api_recorder.recording("record", FOLDER):
        client = openai.OpenAI(base_url=fake.url, api_key="sk-bench", max_retries=0)
        with api_recorder.test_context(test_id(0)):
            client.chat.completions.create(**question(0))
            list(client.models.list())
        url = fake.url
    (models_file,) = (work / FOLDER).glob("models-*.json")
    (chat_file,) = (path for path in (work / FOLDER).glob("*.json") if not path.name.startswith("models-"))
    chat = json.loads(chat_file.read_bytes())
    models = models_file.read_bytes()
    name = models_file.name
    for path in (work / FOLDER).glob("*.json"):
        path.unlink()
    (work / FOLDER / name).write_bytes(models)
    return chat, models, url


def fill_folder(folder: Path, count: int, chat: dict[str, Any]) -> None:
    """``count`` recordings of distinct chat requests, each named by its own hash."""
    request = chat["request"]
    for path in folder.glob("*.json"):
        if not path.name.startswith("models-"):
            path.unlink()
    for i in range(count):
        with api_recorder.test_context(test_id(i)):
            key = RECORDER.http_key(
                HttpRequest(
                    method=request["method"],
                    url=request["url"],
                    endpoint=request["endpoint"],
                    body=question(i),
                    provider_metadata=request["provider_metadata"],
                )
            )
        document = {"test_id": test_id(i), "request": key.request, "response": chat["response"]}
        document["id_normalization_mapping"] = {}
        (folder / key.filenames[0]).write_bytes(storage.encode_recording(document))


def settle(folder: Path) -> None:
    """Wait until the folder's listing can be trusted (its mtime is older than the racy window)."""
    racy = getattr(storage, "RACY_NS", 0) / 1e9
    age = time.time() - folder.stat().st_mtime
    if age < racy:
        time.sleep(racy - age + 0.05)


def per_call(action: Callable[[int], Any], items: list[int]) -> float:
    """Seconds per call: the best round's mean (a round stops after ROUND_BUDGET seconds)."""
    best = float("inf")
    for _ in range(REPEATS):
        done, start = 0, time.perf_counter()
        for item in items:
            action(item)
            done += 1
            if time.perf_counter() - start > ROUND_BUDGET:
                break
        best = min(best, (time.perf_counter() - start) / done)
    return best


def measure(count: int, chat: dict[str, Any], url: str, work: Path) -> dict[str, float]:
    folder = work / FOLDER
    fill_folder(folder, count, chat)
    settle(folder)
    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    step = max(1, count // SAMPLED)
    recorded = list(range(0, count, step))[:SAMPLED]
    times: dict[str, float] = {}

    def hit(i: int) -> None:
        with api_recorder.test_context(test_id(i)):
            client.chat.completions.create(**question(i))

    def models(_: int) -> None:
        with api_recorder.test_context(test_id(0)):
            assert client.models.list().data

    def miss(i: int, new_test: bool = False) -> str:
        with api_recorder.test_context(f"{TEST_FILE}::test_new_{i}" if new_test else test_id(i)):
            try:
                client.chat.completions.create(**question(i, changed=True))
            except api_recorder.RecordingNotFoundError as error:
                return str(error)
        raise AssertionError("a changed request was served")

    def changed(i: int) -> None:
        assert "The nearest is" in miss(i), miss(i)

    def brand_new(i: int) -> None:
        assert "never recorded" in miss(i, new_test=True)

    with api_recorder.recording("replay", FOLDER):
        start = time.perf_counter()
        models(0)
        times["first model list (lists the folder)"] = time.perf_counter() - start
        start = time.perf_counter()
        changed(recorded[-1])
        times["first miss (reads the test ids once)"] = time.perf_counter() - start
        times["hit"] = per_call(hit, recorded)
        times["model list"] = per_call(models, recorded)
        times["miss, changed request"] = per_call(changed, recorded)
        times["miss, brand-new test"] = per_call(brand_new, recorded)
    return times


def main() -> None:
    print(f"python {sys.version.split()[0]}, openai {openai.__version__}, {os.cpu_count()} cores; best of {REPEATS}")
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        previous = os.getcwd()
        os.chdir(work)
        try:
            chat, _, url = record_templates(work)
            for count in SIZES:
                results[count] = measure(count, chat, url, work)
        finally:
            os.chdir(previous)
    small, large = SIZES
    print(f"\nper call, in one folder of {small:,} and of {large:,} recordings ({PER_TEST} per test)")
    print(f"  {'':<40} {small:>10,} {large:>10,}   {'ratio':>6}   target at {large:,}")
    for name in results[small]:
        a, b = results[small][name] * 1000, results[large][name] * 1000
        once = name.startswith("first")
        verdict = "(once per folder)" if once else ("met" if b < TARGET_MS else "NOT met") + f" (< {TARGET_MS:g} ms)"
        print(f"  {name:<40} {a:8.3f} ms {b:8.3f} ms {b / a:6.1f}x   {verdict}")


if __name__ == "__main__":
    main()
