"""Peak memory of recording a long stream, against reading the same stream live.

A streamed chat completion of ``BENCH_CHUNKS`` chunks (10,000 by default: the fake server answers
``max_tokens`` words, one chunk a word) is read to its end through a sync ``OpenAI`` client, once
live and once recorded (the recording file written). Each is measured in a fresh process with
``tracemalloc`` (peak of Python allocations during the call, after a short warm-up call so that
imports and first-call caches count for neither); the fake server runs in a process of its own,
so only the client's memory is traced. Target: recording peaks under 15 MiB above live.

Each file written is checked to be byte for byte what formatting it in one pass gives (its long
stream is formatted chunk by chunk). The growth of the process's peak RSS (``ru_maxrss``) is
printed too, for information: it counts what the allocator keeps as well, and is coarser.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from api_recorder.storage import encode_recording

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = int(os.environ.get("BENCH_CHUNKS", "10000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
MIB = 1 << 20


def serve() -> None:
    """Run the fake OpenAI server until stdin closes (in its own process)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fakes.openai_app import FakeOpenAI

    with FakeOpenAI() as fake:
        print(fake.url, flush=True)
        sys.stdin.read()


def measure(mode: str, url: str, folder: str) -> None:
    """One measurement in this fresh process: prints a JSON line (peak bytes, RSS growth, chunks)."""
    import gc
    import tracemalloc

    import openai

    import api_recorder

    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)

    def read(words: int, question: str) -> int:
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": question}], max_tokens=words, stream=True
        )
        return sum(1 for _ in stream)

    def run(words: int, question: str) -> int:
        if mode == "live":
            return read(words, question)
        with api_recorder.recording("record", folder):
            return read(words, question)

    run(50, "warm-up")
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    count = run(CHUNKS, "a long answer, please")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    print(json.dumps({"peak": peak, "rss": rss_growth, "chunks": count}))


def fresh_measurement(mode: str, url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, __file__, "--measure", mode, url, folder], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        files = list(Path(folder).rglob("*.json"))
        result["file"] = sum(path.stat().st_size for path in files)
        for path in files:  # written chunk by chunk, yet byte for byte what one formatting pass gives
            data = path.read_bytes()
            assert encode_recording(msgspec.json.decode(data)) == data, f"{path.name} is not formatted as one pass"
    return result


def main() -> None:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        results: dict[str, list[dict[str, float]]] = {"live": [], "record": []}
        start = time.perf_counter()
        for _ in range(REPEATS):  # interleaved; the smallest peak of each kind is kept
            for mode in results:
                results[mode].append(fresh_measurement(mode, url))
        elapsed = time.perf_counter() - start
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    live = min(results["live"], key=lambda r: r["peak"])
    record = min(results["record"], key=lambda r: r["peak"])
    print(
        f"python {sys.version.split()[0]}; a streamed chat completion of {live['chunks']:,} chunks, "
        f"sync OpenAI client; fresh process each, best of {REPEATS} ({elapsed:.0f} s)"
    )
    print(f"  recording file written                  {record['file'] / MIB:7.1f} MiB")
    print(f"  peak (tracemalloc), live                {live['peak'] / MIB:7.1f} MiB")
    print(f"  peak (tracemalloc), record              {record['peak'] / MIB:7.1f} MiB")
    print(
        f"  record above live                       {(record['peak'] - live['peak']) / MIB:7.1f} MiB   "
        "(target < 15 MiB)"
    )
    print(f"  peak RSS growth, live / record          {live['rss'] / MIB:7.1f} / {record['rss'] / MIB:.1f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--measure"]:
        measure(*sys.argv[2:5])
    else:
        main()
