"""Every benchmark, one command: ``python bench/run.py`` (replay speed, other SDKs, start-up cost)."""

from __future__ import annotations

import runpy
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    runpy.run_path(str(HERE / "replay.py"), run_name="__main__")
    print()
    runpy.run_path(str(HERE / "providers.py"), run_name="__main__")
    print()
    for name in ("lookup.py", "rebuild.py", "recording_memory.py"):
        runpy.run_path(str(HERE / name), run_name="__main__")
        print()
    runpy.run_path(str(HERE / "startup.py"), run_name="__main__")
