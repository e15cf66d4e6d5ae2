"""Start-up cost of the auto-activation hook (``api_recorder.pth``).

Prints, measured in this run on this machine:
- the cost of the .pth line itself with the variable unset (it runs in every Python process),
- interpreter start-up (``python -c pass``) with the variable unset and set (``replay``): setting
  it must cost at most 5 ms before ``openai`` is imported,
- for information, ``import openai`` with and without activation (the wrapping happens then).

Runs are interleaved and the fastest of each kind is kept: noise only ever adds time.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "25"))
MODE_ENV = "LLAMA_STACK_TEST_INFERENCE_MODE"


def pth_line() -> str:
    path = Path(sysconfig.get_paths()["purelib"]) / "api_recorder.pth"
    if not path.exists():
        sys.exit(f"{path} is missing: install the package first (pip install -e .)")
    return path.read_text().strip()


def line_cost_microseconds(line: str, loops: int = 200_000) -> float:
    env_value = os.environ.pop(MODE_ENV, None)
    code = compile(line, "api_recorder.pth", "exec")
    try:
        start = time.perf_counter()
        for _ in range(loops):
            exec(code, {})
        return (time.perf_counter() - start) / loops * 1e6
    finally:
        if env_value is not None:
            os.environ[MODE_ENV] = env_value


def hook_cost_in_fresh_process_ms(line: str) -> float:
    """The .pth line with the variable set, timed inside a new interpreter that never ran it."""
    code = (
        "import os, sys, time\n"
        f"line = {line!r}\n"
        "start = time.perf_counter(); exec(line); elapsed = time.perf_counter() - start\n"
        "print(elapsed * 1000)\n"
    )
    env = {**os.environ, MODE_ENV: "replay", "API_RECORDER_AUTO": "0"}  # the real hook stays out
    env.pop(MODE_ENV, None)
    env[MODE_ENV] = "replay"
    results = []
    for _ in range(RUNS):
        # API_RECORDER_AUTO=0 keeps site's copy of the hook quiet; the timed line ignores it
        out = subprocess.run(
            [sys.executable, "-c", code.replace('os.environ.get("API_RECORDER_AUTO", "1") != "0"', "True")],
            env=env, check=True, capture_output=True, text=True,
        )
        results.append(float(out.stdout))
    return statistics.median(results)


def timed_run(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return (time.perf_counter() - start) * 1000


def medians(code: str) -> tuple[float, float]:
    base = {k: v for k, v in os.environ.items() if k not in (MODE_ENV, "API_RECORDER_AUTO")}
    unset, activated = [], []
    for _ in range(RUNS):
        unset.append(timed_run(code, base))
        activated.append(timed_run(code, {**base, MODE_ENV: "replay"}))
    return min(unset), min(activated)  # noise only ever adds time: the fastest run is the truest


def main() -> None:
    line = pth_line()
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores, {RUNS} interleaved runs each\n")
    print(f".pth line with the variable unset: {line_cost_microseconds(line):.2f} us per process (budget 1 ms)")
    print(f".pth line with the variable set:   {hook_cost_in_fresh_process_ms(line):.2f} ms in a fresh process "
          "(budget 5 ms)")
    unset, activated = medians("pass")
    print(f"python -c pass, variable unset:     {unset:7.1f} ms")
    print(f"python -c pass, variable set:       {activated:7.1f} ms   (+{activated - unset:.1f} ms, budget 5 ms)")
    unset, activated = medians("import openai")
    print(f"import openai, variable unset:      {unset:7.1f} ms")
    print(f"import openai, variable set:        {activated:7.1f} ms   (+{activated - unset:.1f} ms: api-recorder "
          "imported and the SDK wrapped)")


if __name__ == "__main__":
    main()
