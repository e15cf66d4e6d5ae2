"""Writing answers: one recording file per request, every answer it got, ids made stable.

Kept apart from the decision (``recorder``): what a file holds when a request is answered
several times, how live ids become stored ids, and the memory both need, live here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import msgspec

from .envelopes import NESTED_ANSWERS, dump_object, is_model_object, normalize_ids
from .recorded_errors import describe_error
from .redaction import Redactor
from .storage import encode_recording, write_atomically

MAX_LIVE_IDS = 10_000
SCRUB_BATCH = 64  # stream chunks checked together for secrets (a few tens of KB at a time)
SPLICE_ABOVE = 1 << 20  # a stream whose chunks hold more bytes is formatted chunk by chunk

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class DumpedChunks(list):  # type: ignore[type-arg]
    """A recording stream's chunks, each the compact JSON (bytes) of its dumped form, as it
    arrived: ids not yet made stable, secrets not yet scrubbed (:meth:`AnswerWriter.response_document`
    does both when the stream is saved)."""


def encode_dumped(dumped: Any) -> bytes:
    """The compact JSON of one dumped chunk, as :class:`DumpedChunks` holds it."""
    return _encode(dumped)


class AnswerWriter:
    """Writes answers to recording files, and remembers what a later request may quote.

    Remembered per process: how many answers each (test id, hash) got since the recorder was
    enabled (the answers themselves are read back from the file: a long-running server records
    forever), and the most recent live ids with the stored ids they became.
    """

    def __init__(self) -> None:
        self._answers_written: dict[tuple[str | None, str], int] = {}
        self._live_ids: dict[str, str] = {}  # live id -> stored id, the most recent MAX_LIVE_IDS
        self._lock = threading.Lock()

    def forget_answers(self) -> None:
        """A new recording session: earlier answers of a request are overwritten, not extended."""
        self._answers_written.clear()

    def stable_ids(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with every live id this run has seen replaced by its stored form.

        A live answer's id (say ``resp_123``) is stored as ``rec-<hash>``; when a later request
        passes it back (``previous_response_id``), it must hash as what replay will return.
        """
        return _replace_strings(body, self._live_ids) if self._live_ids else body

    def write(
        self,
        path: Path,
        *,
        test_id: str | None,
        key: tuple[str | None, str],
        request: dict[str, Any],
        response: dict[str, Any],
    ) -> None:
        """Write ``response`` as the latest answer to the request in ``path``.

        A request answered more than once in the same test keeps every answer, in order
        (``more_responses``), repeats included (``pending``, ``pending``, ``done``). Answers that
        are all equal leave llama-stack's plain single-answer layout, which replays the same.
        """
        with self._lock:
            earlier = self._earlier_answers(key, path)
            if earlier:  # compared with the answers read back: as plain JSON too (raw chunks decoded)
                response = _decode(_encode(response))
            answers = [*earlier, response]
            document: dict[str, Any] = {
                "test_id": test_id,
                "request": request,
                "response": answers[0],
                "id_normalization_mapping": {},
            }
            if any(answer != answers[0] for answer in answers[1:]):
                document["more_responses"] = answers[1:]
            write_atomically(path, cast(bytes, _encoded(document)))  # any buffer is written as it is
            self._answers_written[key] = len(answers)

    def response_document(
        self,
        body: Any,
        *,
        is_streaming: bool,
        error: Exception | None,
        normalized_id: str | None,
        redactor: Redactor,
        dump: Callable[[Any], Any] = dump_object,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``response`` section: envelopes (or the call's own ``dump``), ids made stable (unless
        None), key-shaped secrets scrubbed (an answer is never scrubbed by field name: it replays
        as it was received).

        A recording stream's :class:`DumpedChunks` (dumped as they arrived) are made stable and
        scrubbed one by one, in place, into :class:`msgspec.Raw` JSON: the file is the same, and
        a long stream's chunks are never all decoded at once.
        """
        stored: Any
        if isinstance(body, DumpedChunks):
            stored = self._stored_chunks(body, normalized_id, redactor)
        else:
            items = body if is_streaming else [body]
            dumped = [dump(item) for item in items]
            for envelope in dumped:
                self._normalize(envelope, normalized_id)
            dumped = redactor.scrub_answer(dumped)
            stored = dumped if is_streaming else dumped[0]
        response: dict[str, Any] = {**(fields or {}), "body": stored}
        response["is_streaming"] = is_streaming
        if error is not None:
            response["is_exception"] = True
            response["exception_data"] = redactor.scrub_answer(describe_error(error))
            response["exception_message"] = redactor.scrub_answer(str(error))
        return response

    def _normalize(self, envelope: Any, normalized_id: str | None) -> None:
        if normalized_id is not None and isinstance(envelope, dict) and isinstance(envelope.get("__data__"), dict):
            self._remember_live_id(envelope["__data__"], normalized_id)
            normalize_ids(envelope["__data__"], normalized_id)

    def _stored_chunks(self, chunks: DumpedChunks, normalized_id: str | None, redactor: Redactor) -> Any:
        """A stream's dumped chunks as stored, replaced in ``chunks`` batch by batch."""
        for start in range(0, len(chunks), SCRUB_BATCH):
            stop = min(start + SCRUB_BATCH, len(chunks))
            if normalized_id is not None:
                for index in range(start, stop):
                    envelope = _decode(chunks[index])
                    self._normalize(envelope, normalized_id)
                    chunks[index] = _encode(envelope)
            redactor.scrub_answer_chunks(chunks, start, stop)
            for index in range(start, stop):
                chunks[index] = msgspec.Raw(chunks[index])
        if not redactor.functions:
            return chunks
        # The user's callables see the whole answer, as for any answer (rare: memory is no concern)
        whole = [_decode(raw) for raw in chunks]
        chunks.clear()
        for function in redactor.functions:
            whole = function(whole)
        return whole

    def _earlier_answers(self, key: tuple[str | None, str], path: Path) -> list[dict[str, Any]]:
        """The answers this run already wrote for the same request in the same test (polling).

        A file in the single-answer layout stands for as many equal answers as were written.
        """
        count = self._answers_written.get(key, 0)
        if not count or not path.is_file():
            return []
        earlier = msgspec.json.decode(path.read_bytes())
        answers = [earlier["response"], *earlier.get("more_responses", [])]
        return answers if len(answers) > 1 else answers * count

    def _remember_live_id(self, data: dict[str, Any], normalized_id: str) -> None:
        if is_model_object(data):
            return
        for holder in (data, *(data.get(name) for name in NESTED_ANSWERS)):
            if isinstance(holder, dict) and isinstance(holder.get("id"), str):
                self._live_ids[holder["id"]] = normalized_id
        while len(self._live_ids) > MAX_LIVE_IDS:  # a server recording for days: forget the oldest
            del self._live_ids[next(iter(self._live_ids))]


_BODY_MARK = "\x00api-recorder: the body goes here\x00"


def _encoded(document: dict[str, Any]) -> bytes | bytearray:
    """:func:`encode_recording` of ``document``, byte for byte; a stream's raw chunks are formatted
    one by one into the file's bytes, so that writing never holds the whole stream twice over
    (its compact JSON, then the indented file, then that file again with its newline)."""
    response = document["response"]
    body = response.get("body")
    if not isinstance(body, DumpedChunks) or "more_responses" in document:
        return encode_recording(document)
    if sum(len(raw) for raw in body) <= SPLICE_ABOVE:  # small: one pass in C is faster
        return encode_recording(document)
    skeleton = encode_recording({**document, "response": {**response, "body": _BODY_MARK}})
    mark = _encode(_BODY_MARK)
    if skeleton.count(mark) != 1:  # the request quotes the mark (never, but then: the plain way)
        return encode_recording(document)
    head, tail = skeleton.split(mark)
    step = _leading_spaces(skeleton[skeleton.index(b"\n") + 1 :])  # the file's indent (2)
    indent = _leading_spaces(head[head.rindex(b"\n") + 1 :])  # of the line holding "body"
    item_indent = indent + b" " * len(step)
    newline = b"\n" + item_indent
    out = bytearray(head)
    out += b"[\n"
    for index, raw in enumerate(body):
        if index:
            out += b",\n"
        out += item_indent
        out += msgspec.json.format(raw, indent=len(step)).replace(b"\n", newline)
    out += b"\n" + indent + b"]"
    out += tail
    return out


def _leading_spaces(line: bytes) -> bytes:
    return line[: len(line) - len(line.lstrip(b" "))]


def _replace_strings(value: Any, replacements: dict[str, str]) -> Any:
    if isinstance(value, str):
        return replacements.get(value, value)
    if isinstance(value, dict):
        return {key: _replace_strings(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_strings(item, replacements) for item in value]
    return value
