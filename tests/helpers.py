"""Paths and small utilities shared by the tests."""

from __future__ import annotations

import json
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
