"""Explaining a missing recording: is it a new test, or did an argument change?

Only the missing test's own recordings are read: each folder's index (:class:`~.storage.FolderIndex`)
knows which files belong to which test, from the start of each file, read once per process.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from .errors import RecordingFileError
from .storage import folder_index, read_file_if_there

MAX_DIFF_LINES = 40


class _RequestPart(msgspec.Struct):
    request: dict[str, Any]
    test_id: str | None = None


_decode_request_part = msgspec.json.Decoder(_RequestPart).decode


def explain_missing(request: dict[str, Any], test_id: str | None, folders: list[Path]) -> str:
    """One paragraph: no recording for this test at all, or the nearest one and a body diff."""
    of_this_test = [(path, part.request) for path, part in _recordings_of(test_id, folders)]
    where = ", ".join(str(folder) for folder in folders)
    if not of_this_test:
        return f"There is no recording for this test at all (in {where}): it was never recorded."
    same_call = [(path, other) for path, other in of_this_test if _same_endpoint(other, request)]
    if not same_call:
        return f"This test has {len(of_this_test)} recording(s), none of this endpoint or tool."
    wanted = _canonical(_body_of(request))
    path, recorded = _nearest([(path, _canonical(_body_of(other))) for path, other in same_call], wanted)
    diff = list(
        difflib.unified_diff(
            recorded.splitlines(),
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


def _nearest(candidates: list[tuple[Path, str]], wanted: str) -> tuple[Path, str]:
    """The candidate whose text is most like ``wanted`` by difflib's ratio (the first of equals).

    The same answer as taking the ratio of each, with most of them skipped: the ratio is
    2 * matches / total, and the characters two texts have in common (difflib's ``quick_ratio``,
    counted here in C) bound the matches from above, so a candidate whose bound is below the best
    ratio so far cannot be the nearest. One matcher holds ``wanted``, indexed once.
    """
    if len(candidates) == 1:
        return candidates[0]
    wanted_counts = Counter(wanted)
    bounds = []
    for index, (_, text) in enumerate(candidates):
        common = sum((Counter(text) & wanted_counts).values())
        total = len(text) + len(wanted)
        bounds.append((-(2.0 * common / total if total else 1.0), index))
    matcher = difflib.SequenceMatcher(None, "", wanted)
    best, best_index = -1.0, 0
    for negative_bound, index in sorted(bounds):
        if -negative_bound < best:
            break  # this bound and every later one are below the best ratio
        if -negative_bound == best and index > best_index:
            continue  # a tie at most, and an earlier candidate wins ties
        matcher.set_seq1(candidates[index][1])
        ratio = matcher.ratio()
        if ratio > best or (ratio == best and index < best_index):
            best, best_index = ratio, index
    return candidates[best_index]


def _recordings_of(test_id: str | None, folders: list[Path]) -> list[tuple[Path, _RequestPart]]:
    """The recordings of ``test_id`` in ``folders``, each folder's sorted by name; only those files
    are read (files that are no recording are left out, as before)."""
    found = []
    for folder in folders:
        for name in folder_index(folder).names_of_test(test_id):
            path = folder / name
            try:
                data = read_file_if_there(os.path.join(folder, name))
                if data is None:
                    continue
                part = _decode_request_part(data)
            except (RecordingFileError, msgspec.DecodeError, RecursionError):  # DecodeError: ValidationError too
                continue
            if part.test_id == test_id:
                found.append((path, part))
    return found


def _same_endpoint(recorded: dict[str, Any], wanted: dict[str, Any]) -> bool:
    names = (
        ("endpoint", "provider", "tool_name", "url") if "payload" in wanted else ("endpoint", "provider", "tool_name")
    )
    return all(recorded.get(name) == wanted.get(name) for name in names)


def _body_of(request: dict[str, Any]) -> Any:
    return request.get("body", request.get("kwargs", request.get("payload")))


_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NUMBER_MARK = re.compile(rb"0[.eE]").search  # a float, once every digit is 0 (or a decimal in a string)


def _canonical(value: Any) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)``, made by
    msgspec when that gives the very same text: plain JSON data (it decodes back to ``value``)
    with no float (whose text the two write differently); else by ``json.dumps``."""
    try:
        text = _encode_sorted(value)
        if _NUMBER_MARK(text.translate(_DIGITS_AS_ZERO)) is None and msgspec.json.decode(text) == value:
            return msgspec.json.format(text, indent=2).decode()
    except (TypeError, ValueError, UnicodeError, OverflowError, RecursionError):  # EncodeError is a ValueError
        pass
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
