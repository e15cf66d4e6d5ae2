"""Explaining a missing recording: is it a new test, or did an argument change?

Only reached when replay misses, so it may read every recording of the test's folders.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import msgspec

MAX_DIFF_LINES = 40


class _RequestPart(msgspec.Struct):
    request: dict[str, Any]
    test_id: str | None = None


_decode_request_part = msgspec.json.Decoder(_RequestPart).decode


def explain_missing(request: dict[str, Any], test_id: str | None, folders: list[Path]) -> str:
    """One paragraph: no recording for this test at all, or the nearest one and a body diff."""
    of_this_test = [(path, part.request) for path, part in _recordings_in(folders) if part.test_id == test_id]
    where = ", ".join(str(folder) for folder in folders)
    if not of_this_test:
        return f"There is no recording for this test at all (in {where}): it was never recorded."
    same_call = [(path, other) for path, other in of_this_test if _same_endpoint(other, request)]
    if not same_call:
        return f"This test has {len(of_this_test)} recording(s), none of this endpoint or tool."
    wanted = _canonical(_body_of(request))
    path, nearest = max(
        same_call, key=lambda item: difflib.SequenceMatcher(None, _canonical(_body_of(item[1])), wanted).ratio()
    )
    diff = list(
        difflib.unified_diff(
            _canonical(_body_of(nearest)).splitlines(),
            wanted.splitlines(),
            fromfile=f"recorded ({path.name})",
            tofile="this call",
            lineterm="",
            n=2,
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... ({len(diff) - MAX_DIFF_LINES} more lines)"]
    return (
        f"This test has {len(same_call)} recording(s) of this endpoint, but none matches. "
        f"The nearest is {path}; its request differs:\n" + "\n".join(diff)
    )


def _recordings_in(folders: list[Path]) -> list[tuple[Path, _RequestPart]]:
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                found.append((path, _decode_request_part(path.read_bytes())))
            except (OSError, msgspec.DecodeError, RecursionError):  # DecodeError: ValidationError too
                continue
    return found


def _same_endpoint(recorded: dict[str, Any], wanted: dict[str, Any]) -> bool:
    names = (
        ("endpoint", "provider", "tool_name", "url") if "payload" in wanted else ("endpoint", "provider", "tool_name")
    )
    return all(recorded.get(name) == wanted.get(name) for name in names)


def _body_of(request: dict[str, Any]) -> Any:
    return request.get("body", request.get("kwargs", request.get("payload")))


def _canonical(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
