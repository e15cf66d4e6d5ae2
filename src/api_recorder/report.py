"""What a test run did with its recordings: replayed, recorded, missing, and never used.

Built from the recorder's call log in each process; pytest-xdist workers send theirs to the
controller, which adds them up. A recording counts as unused only when nobody could still need
it: it belongs to a test that ran in this session and did not use it, or its test file is gone.
Recordings of tests that did not run, and shared ones (no test id), are never called unused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from .recorder import CallLog


class _TestIdOnly(msgspec.Struct):
    test_id: str | None = None


_decode_test_id = msgspec.json.Decoder(_TestIdOnly).decode


@dataclass
class RunReport:
    """Counts and paths of one run (or one xdist worker's part of it)."""

    replayed: int = 0
    recorded: int = 0
    missing: int = 0
    used: set[str] = field(default_factory=set)
    missing_calls: list[str] = field(default_factory=list)

    @classmethod
    def from_calls(cls, calls: Iterable[CallLog]) -> RunReport:
        report = cls()
        for call in calls:
            if call.outcome == "replayed":
                report.replayed += 1
            elif call.outcome == "recorded":
                report.recorded += 1
            elif call.outcome == "missing":
                report.missing += 1
                report.missing_calls.append(f"{call.label} in {call.test_id or 'no test'}")
            if call.path is not None and call.outcome != "missing":
                report.used.add(str(Path(call.path).resolve()))
        return report

    def merge(self, other: RunReport) -> None:
        self.replayed += other.replayed
        self.recorded += other.recorded
        self.missing += other.missing
        self.used |= other.used
        self.missing_calls += other.missing_calls

    def to_json(self) -> dict[str, Any]:
        """What an xdist worker sends to the controller (workeroutput must be plain data)."""
        return {
            "replayed": self.replayed,
            "recorded": self.recorded,
            "missing": self.missing,
            "used": sorted(self.used),
            "missing_calls": self.missing_calls,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        return cls(
            replayed=data["replayed"],
            recorded=data["recorded"],
            missing=data["missing"],
            used=set(data["used"]),
            missing_calls=list(data["missing_calls"]),
        )

    def unused(self, ran_test_ids: set[str], root: Path) -> list[Path]:
        """Recordings in the folders this run used that no test needs any more."""
        folders = {Path(path).parent for path in self.used}
        unused = []
        for folder in sorted(folders):
            for path in sorted(folder.glob("*.json")):
                if str(path.resolve()) in self.used:
                    continue
                test_id = _test_id_of(path)
                if test_id is None:
                    continue
                if test_id in ran_test_ids or not (root / test_id.split("::", 1)[0]).exists():
                    unused.append(path)
        return unused


def _test_id_of(path: Path) -> str | None:
    try:
        return _decode_test_id(path.read_bytes()).test_id
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def write_report(path: Path, report: RunReport, unused: list[Path]) -> None:
    """The JSON report ``api-recorder prune --unused-from`` reads."""
    document = {**report.to_json(), "unused": [str(p) for p in unused]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
