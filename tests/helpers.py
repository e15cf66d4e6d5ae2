"""Paths and small utilities shared by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # llama-stack's recordings, copied into the repository (see its README)
SEED = DATA / "seed" / "seed_recording.json"
SAMPLE = DATA / "llama-stack"


def sample_files() -> list[Path]:
    return sorted(SAMPLE.glob("*/recordings/*.json"))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def recordings_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without api-recorder's and llama-stack's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_STACK_TEST_", "OGX_TEST_", "API_RECORDER_"))}
    env.update(extra)
    return env


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a child with a clean environment plus ``env`` (auto-activation tests)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )
