"""The supported-versions matrix in CI: every nox session but ``tests`` (``.ci/run`` has just run
the suite itself), two at a time on the two cores. Each session's output goes to a log, printed
when the session fails; the exit status is non-zero if any failed."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PARALLEL = 2


def sessions() -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return [session["session"] for session in json.loads(listed) if session["session"] != "tests"]


def run(session: str, logs: Path) -> tuple[str, bool, float, Path]:
    log = logs / ("".join(c if c.isalnum() or c in ".-" else "_" for c in session) + ".log")
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "nox", "--non-interactive", "-s", session], stdout=out, stderr=subprocess.STDOUT
        )
    return session, done.returncode == 0, time.monotonic() - start, log


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="nox-logs-"))
    failed = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for session, ok, seconds, log in pool.map(lambda name: run(name, logs), sessions()):
            print(f"{'ok  ' if ok else 'FAIL'} {session} ({seconds:.0f} s)", flush=True)
            if not ok:
                failed.append(log)
    for log in failed:
        print(f"\n===== {log.name} =====\n{log.read_text()[-20000:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
