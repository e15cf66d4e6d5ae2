"""Start-up cost of the auto-activation hook (``api_recorder.pth``).

Prints, measured in this run on this machine:
- the cost of the .pth line itself with the variable unset (it runs in every Python process),
- interpreter start-up (``python -c pass``) with the variable unset and set (``replay``): setting
  it must cost at most 5 ms before ``openai`` is imported,
- for information, ``import openai`` with and without activation (the wrapping happens then),
- ``import api_recorder; api_recorder.enable("replay", ...)`` against ``python -c pass``, with
  api_recorder's bytecode cached (budget 8 ms) and compiled from source (a copy of the package
  outside the source tree, with and without ``__pycache__``; ``PYTHONDONTWRITEBYTECODE`` keeps the
  second one uncached), and what it imports: which modules, and whether the rarely needed ones
  (wrapt, asyncio, pydantic, difflib, shlex, typer, rich, openai) stay out;
  ``BENCH_STARTUP_BASELINE=<git revision>`` measures that revision's package alongside.

Runs are interleaved and the fastest of each kind is kept: noise only ever adds time.
"""

from __future__ import annotations

import compileall
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "25"))
BASELINE = os.environ.get("BENCH_STARTUP_BASELINE")  # a git revision to compare import + enable() with
ROOT = Path(__file__).resolve().parent.parent
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
            env=env,
            check=True,
            capture_output=True,
            text=True,
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


ENABLE = "import api_recorder; api_recorder.enable('replay', {folder!r})"
RARELY_NEEDED = ("wrapt", "asyncio", "pydantic", "difflib", "shlex", "typer", "rich", "openai", "importlib.metadata")


def package_copies(work: Path) -> dict[str, Path]:
    """api_recorder copied outside the source tree twice: bytecode compiled, and none at all."""
    spec = importlib.util.find_spec("api_recorder")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("api_recorder is not installed: pip install -e .")
    package = Path(next(iter(spec.submodule_search_locations)))
    copies = {}
    for kind in ("cached", "source"):
        shutil.copytree(package, work / kind / "api_recorder", ignore=shutil.ignore_patterns("__pycache__"))
        copies[kind] = work / kind
    compileall.compile_dir(copies["cached"], quiet=1)
    if BASELINE:  # the package as a git revision has it, bytecode compiled: before/after in one run
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE, "src/api_recorder"], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and the 3.8-3.11 security releases
                tar.extractall(work / "baseline", filter="data")
            else:
                tar.extractall(work / "baseline")  # our own repository's archive
        copies["baseline"] = work / "baseline" / "src"
        compileall.compile_dir(copies["baseline"], quiet=1)
    return copies


def import_costs(work: Path) -> dict[str, float]:
    """Fastest of RUNS interleaved runs: ``python -c pass``, then import + enable from each copy."""
    copies = package_copies(work)
    code = ENABLE.format(folder=str(work / "recordings"))
    base = {k: v for k, v in os.environ.items() if k not in (MODE_ENV, "OGX_TEST_INFERENCE_MODE", "PYTHONPATH")}
    base["PYTHONDONTWRITEBYTECODE"] = "1"  # the "source" copy must stay uncompiled
    best = {"pass": float("inf"), **{kind: float("inf") for kind in copies}}
    for _ in range(RUNS):
        best["pass"] = min(best["pass"], timed_run("pass", base))
        for kind, root in copies.items():
            best[kind] = min(best[kind], timed_run(code, {**base, "PYTHONPATH": str(root)}))
    return best


def imported_modules(work: Path) -> list[str]:
    """The modules that ``import api_recorder`` and ``enable()`` add to a fresh interpreter."""
    code = (
        "import sys, json; before = set(sys.modules); "
        + ENABLE.format(folder=str(work / "recordings"))
        + "; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    env = {k: v for k, v in os.environ.items() if k not in (MODE_ENV, "OGX_TEST_INFERENCE_MODE")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    line = pth_line()
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores, {RUNS} interleaved runs each\n")
    print(f".pth line with the variable unset: {line_cost_microseconds(line):.2f} us per process (budget 1 ms)")
    print(
        f".pth line with the variable set:   {hook_cost_in_fresh_process_ms(line):.2f} ms in a fresh process "
        "(budget 5 ms)"
    )
    unset, activated = medians("pass")
    print(f"python -c pass, variable unset:     {unset:7.1f} ms")
    print(f"python -c pass, variable set:       {activated:7.1f} ms   (+{activated - unset:.1f} ms, budget 5 ms)")
    unset, activated = medians("import openai")
    print(f"import openai, variable unset:      {unset:7.1f} ms")
    print(
        f"import openai, variable set:        {activated:7.1f} ms   (+{activated - unset:.1f} ms: api-recorder "
        "imported and the SDK wrapped)"
    )

    with tempfile.TemporaryDirectory() as work:
        costs = import_costs(Path(work))
        modules = imported_modules(Path(work))
    print(f"\npython -c pass:                     {costs['pass']:7.1f} ms")
    print(
        f"import api_recorder + enable():     {costs['cached']:7.1f} ms   (+{costs['cached'] - costs['pass']:.1f} ms "
        "with its bytecode cached, budget 8 ms)"
    )
    print(
        f"  the same, compiled from source:   {costs['source']:7.1f} ms   (+{costs['source'] - costs['pass']:.1f} ms)"
    )
    if "baseline" in costs:
        print(
            f"  {BASELINE + ', bytecode cached:':<34}{costs['baseline']:7.1f} ms   "
            f"(+{costs['baseline'] - costs['pass']:.1f} ms)"
        )
    ours = [name for name in modules if name.split(".")[0] in ("api_recorder", "_api_recorder_boot")]
    loaded = [name for name in RARELY_NEEDED if name in modules]
    print(
        f"  modules imported: {len(modules)} ({len(ours)} of api_recorder); rarely needed ones among them: "
        f"{', '.join(loaded) or 'none'}"
    )


if __name__ == "__main__":
    main()
