"""Where recording files live, how they are written, and how they are read back.

Files are llama-stack's: ``{"test_id", "request", "response": {"body", "is_streaming"},
"id_normalization_mapping"}``, one per call, indented and ending with a newline so they diff well.
Writes go to a temporary file in the same folder and are renamed into place: a reader, another
pytest-xdist worker or a crash never sees half a file.
"""

from __future__ import annotations

import bisect
import errno
import fnmatch
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec

from .context import invalid_test_id_message, test_file_of, test_file_problem
from .envelopes import Rehydrator, decode_raw_list
from .errors import InvalidTestIdError, RecordingFileError

_UNSET = object()


class _ResponseDoc(msgspec.Struct):
    body: msgspec.Raw = msgspec.Raw(b"null")
    is_streaming: bool = False
    status: int | None = None  # raw HTTP recordings (llama-stack's too): the answer's status
    headers: dict[str, str] | None = None  # raw HTTP recordings: the answer's non-secret headers
    is_exception: bool = False
    exception_data: dict[str, Any] | None = None
    exception_message: str | None = None


class _FileDoc(msgspec.Struct):
    request: msgspec.Raw  # decoded when asked for (Recording.request): replay needs the answer only
    response: _ResponseDoc
    test_id: str | None = None
    id_normalization_mapping: dict[str, str] | None = None
    more_responses: list[_ResponseDoc] | None = None


class _StreamResponseDoc(msgspec.Struct):
    """A streamed answer, its chunks split in the same pass that reads the file."""

    body: list[msgspec.Raw] | None = None
    is_streaming: bool = False
    status: int | None = None
    headers: dict[str, str] | None = None
    is_exception: bool = False
    exception_data: dict[str, Any] | None = None
    exception_message: str | None = None


class _StreamFileDoc(msgspec.Struct):
    request: msgspec.Raw
    response: _StreamResponseDoc
    test_id: str | None = None
    id_normalization_mapping: dict[str, str] | None = None
    more_responses: list[_StreamResponseDoc] | None = None


class _RequestHead(msgspec.Struct):
    """What an answer needs of its request: where it went, and which SDK wrote it."""

    url: Any = None
    provider_metadata: Any = None


_decode_file = msgspec.json.Decoder(_FileDoc).decode
_decode_stream_file = msgspec.json.Decoder(_StreamFileDoc).decode
_decode_request_head = msgspec.json.Decoder(_RequestHead).decode
_decode_request = msgspec.json.Decoder(dict[str, Any]).decode
_encoder = msgspec.json.Encoder()
_STREAMED = (b'"is_streaming": true', b'"is_streaming":true')  # how the file says so, as written
_TAIL_BYTES = 512


@dataclass
class RecordedResponse:
    """The answer part of a recording; stream chunks are rebuilt lazily, one by one."""

    raw_body: msgspec.Raw | list[msgspec.Raw]
    is_streaming: bool
    rehydrator: Rehydrator = field(repr=False)
    source: str = ""
    is_exception: bool = False
    exception_data: dict[str, Any] | None = None
    exception_message: str | None = None
    url: str | None = None
    recorded_with: tuple[str, str] | None = None  # (SDK, version) that wrote the file, for error messages
    status: int | None = None  # raw HTTP recordings: the HTTP status of the answer
    headers: dict[str, str] | None = None  # raw HTTP recordings: the answer's headers that were kept
    _body: Any = field(default=_UNSET, repr=False)

    def error(self) -> Exception | None:
        """The recorded error to raise (after a stream's chunks), or None."""
        if not self.is_exception:
            return None
        from .recorded_errors import RecordedError, rebuild_error

        if self.exception_data:
            return rebuild_error(self.exception_data, self.rehydrator.registry, self.url)
        # llama-stack's legacy format: a message only, replayed as its bare Exception(message)
        return RecordedError("Exception", self.exception_message or "Unknown error")

    def iter_body(self) -> Iterator[Any]:
        """The stream's chunks, rebuilt a batch at a time as they are reached (the first batch is
        small: time to first chunk stays short)."""
        if self._body is not _UNSET:
            yield from self._body
            return
        batches = self.rehydrator.batches(cast("list[msgspec.Raw]", self.raw_body), source=self.source)
        while True:
            batch = self._with_versions(lambda: next(batches, None))
            if batch is None:
                return
            yield from batch

    def validated_as(self, cls: Any) -> Any:
        """The answer as ``cls`` straight from its stored JSON, for files whose answers are plain
        JSON (google-genai's, as llama-stack writes them); a stream's chunks lazily, in batches."""
        if self._body is not _UNSET:
            body = self._body
            return (cls.model_validate(item) for item in body) if self.is_streaming else cls.model_validate(body)
        if not self.is_streaming:
            return self._validated(lambda: cls.model_validate_json(bytes(self.raw_body)), cls)  # type: ignore[arg-type]
        return self._validated_chunks(cls)

    def _validated(self, validate: Any, cls: Any) -> Any:
        try:
            with paused_gc():
                return self._with_versions(validate)
        except ValueError as exc:  # pydantic's ValidationError, or JSON it cannot read
            raise RecordingFileError(
                f"{self.source}: the answer does not validate as {cls.__name__} ({_first_line(exc)}); "
                "re-record it (LLAMA_STACK_TEST_INFERENCE_MODE=record)."
            ) from exc

    def _validated_chunks(self, cls: Any) -> Iterator[Any]:
        adapter = _list_adapter(cls)
        raws: list[Any] = self.raw_body  # type: ignore[assignment]
        start, size = 0, 4
        while start < len(raws):
            batch = raws[start : start + size]
            payload = b"[" + b",".join(bytes(raw) for raw in batch) + b"]"
            yield from self._validated(lambda payload=payload: adapter.validate_json(payload), cls)
            start += len(batch)
            size = min(size * 2, 256)

    @property
    def body(self) -> Any:
        """The rebuilt object, or the list of chunks or events of a stream."""
        if self._body is _UNSET:
            if self.is_streaming:
                self._body = self._all_chunks()
            else:
                self._body = self._rebuild(self.raw_body, self.source)
        return self._body

    def _all_chunks(self) -> list[Any]:
        """Every chunk, each stored envelope's bytes let go once its object is built.

        The peak is then about what the objects take, not the objects plus the whole file: each
        envelope is copied out of the file's buffer (which goes at once), and each copy goes as
        its batch is rebuilt. ``raw_body`` is empty afterwards.
        """
        raws: list[Any] = [bytes(raw) for raw in self.raw_body]
        self.raw_body = []
        chunks = self.rehydrator.envelopes(raws, source=self.source, consume=True)
        built: list[Any] = []
        with paused_gc():  # the whole file at once: the objects hold no cycles
            self._with_versions(lambda: built.extend(chunks))
        return built

    def _rebuild(self, raw: Any, source: str) -> Any:
        with paused_gc():
            return self._with_versions(lambda: self.rehydrator.envelope(raw, source=source))

    def _with_versions(self, rebuild: Any) -> Any:
        """Rebuild, adding to a failure which SDK version wrote the file and which is installed."""
        try:
            return rebuild()
        except RecursionError as exc:
            raise RecordingFileError(_too_deep(self.source, exc)) from None
        except RecordingFileError as exc:
            if self.recorded_with is None or "(the file was recorded with" in str(exc):
                raise
            sdk, version = self.recorded_with
            installed = _installed_sdk_version(sdk)
            raise type(exc)(f"{exc} (the file was recorded with {sdk} {version}; {installed})") from exc


@dataclass
class Recording:
    """One recording file, parsed.

    ``responses`` holds every answer when the same request was answered differently during one
    test (polling a job): replay gives them in order. ``response`` is the first. ``request``, the
    file's request section, is decoded the first time it is read: replay needs the answer only.
    """

    test_id: str | None
    request: dict[str, Any]
    response: RecordedResponse
    id_normalization_mapping: dict[str, str]
    path: Path | None = None
    responses: list[RecordedResponse] = field(default_factory=list)
    if TYPE_CHECKING:  # behind the ``request`` property (below): the dict, or the section's JSON until read
        _request: dict[str, Any] | msgspec.Raw | bytes = field(init=False, repr=False, compare=False)

    def answer(self, index: int) -> Recording:
        """This recording as seen by the ``index``-th identical call (the last answer repeats)."""
        if len(self.responses) < 2:
            return self
        response = self.responses[min(index, len(self.responses) - 1)]
        request = cast("dict[str, Any]", self._request)  # maybe still JSON: the property decodes it when read
        return Recording(self.test_id, request, response, self.id_normalization_mapping, self.path, self.responses)


def _get_request(self: Recording) -> dict[str, Any]:
    request = self._request
    if not isinstance(request, dict):  # the section's JSON, as read from the file
        request = self._request = _decode_request(request)
    return request


def _set_request(self: Recording, value: dict[str, Any] | bytes) -> None:
    self._request = value


# A property set after the dataclass is made: ``Recording(..., request=...)``, ``replace``, ``asdict``
# and the generated ``__eq__`` and ``__repr__`` all go through it, and so see the decoded dict.
Recording.request = property(_get_request, _set_request, doc="The file's request section.")  # type: ignore[assignment]


@cache
def _list_adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(list[cls])  # type: ignore[valid-type]


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:200]


def _installed_sdk_version(sdk: str) -> str:
    import sys

    module = sys.modules.get(sdk)
    return f"{sdk} {getattr(module, '__version__', 'unknown')} is installed" if module else f"{sdk} is not imported"


def recorded_with(metadata: Any) -> tuple[str, str] | None:
    """The SDK and version that wrote a file, from ``provider_metadata`` (``openai_sdk_version``)."""
    if isinstance(metadata, dict):
        for name, value in metadata.items():
            if isinstance(name, str) and name.endswith("_sdk_version") and isinstance(value, str):
                return name.removesuffix("_sdk_version").replace("_", "."), value
    return None


def _recorded_response(doc: Any, rehydrator: Rehydrator, source: str, request: _RequestHead) -> RecordedResponse:
    raw_body: Any = doc.body
    if isinstance(doc, _StreamResponseDoc):  # chunks already split, in the pass that read the file
        raw_body = raw_body or []
    elif doc.is_streaming:
        raw_body = decode_raw_list(raw_body) if bytes(memoryview(raw_body)[:4]) != b"null" else []
    return RecordedResponse(
        raw_body=raw_body,
        is_streaming=doc.is_streaming,
        rehydrator=rehydrator,
        source=source,
        is_exception=doc.is_exception,
        exception_data=doc.exception_data,
        exception_message=doc.exception_message,
        url=request.url if isinstance(request.url, str) else None,
        recorded_with=recorded_with(request.provider_metadata),
        status=doc.status,
        headers=doc.headers,
    )


def _decode_document(data: bytes) -> Any:
    """The file's sections; a streamed answer's chunks are split in the same pass when the end of
    the file says it streams (else, or when another answer of it does not stream, the general way)."""
    tail = data[-_TAIL_BYTES:]  # where the last answer's flag is, in llama-stack's files and ours
    if _STREAMED[0] in tail or _STREAMED[1] in tail:
        try:
            document = _decode_stream_file(data)
        except msgspec.ValidationError:
            pass  # a body that is not a list: the general decoder says what is wrong, if anything
        else:
            if document.response.is_streaming and all(doc.is_streaming for doc in document.more_responses or ()):
                return document
    return _decode_file(data)


def _request_head(raw: msgspec.Raw) -> tuple[bytes, _RequestHead]:
    """The request section copied out of the file's buffer (which may then go), and its head."""
    request = bytes(raw)
    try:
        return request, _decode_request_head(request)
    except msgspec.ValidationError as exc:  # not an object: said as the whole file's decoder says it
        detail, _, where = str(exc).partition(" - at `$")
        raise msgspec.ValidationError(f"{detail} - at `$.request{where.rstrip('`')}`") from None


def parse_recording(data: bytes, rehydrator: Rehydrator, source: str) -> Recording:
    """Parse a recording file's bytes; every problem is a RecordingFileError naming ``source``.

    The request section is kept as JSON and decoded when ``Recording.request`` is first read.
    """
    try:
        document = _decode_document(data)
        mapping = document.id_normalization_mapping or {}
        if mapping:
            data = _apply_id_mapping(data, mapping, source)
            document = _decode_document(data)
        request, head = _request_head(document.request)
        answers = [document.response, *(document.more_responses or [])]
        responses = [_recorded_response(doc, rehydrator, source, head) for doc in answers]
    except msgspec.ValidationError as exc:  # valid JSON of the wrong shape (a subclass of DecodeError: first)
        detail, _, where = str(exc).partition(" - at `$")
        where = where.rstrip("`").lstrip(".")  # "response.is_streaming"; "" for the whole file
        missing = detail.removeprefix("Object missing required field `")
        if missing != detail:
            missing = missing.rstrip("`")
            problem = f"'{where}' has no '{missing}'" if where else f"no '{missing}' object"
        else:
            problem = f"{detail[:1].lower()}{detail[1:]} {f'at {where!r}' if where else 'for the whole file'}"
        raise RecordingFileError(
            f"{source}: not a recording: {problem.replace('`', chr(39))}. A recording needs 'request' (an "
            "object) and 'response' (an object with 'body' and 'is_streaming'); record it again, or move the "
            "file out of the recordings folder if it is not a recording."
        ) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise RecordingFileError(
            f"{source}: not a readable recording ({exc}). The file is truncated or not JSON; "
            "delete it and record it again."
        ) from exc
    except RecursionError as exc:
        raise RecordingFileError(_too_deep(source, exc)) from None
    return Recording(
        test_id=document.test_id,
        request=request,  # type: ignore[arg-type]  # decoded on first use
        response=responses[0],
        id_normalization_mapping=mapping,
        responses=responses,
    )


def _too_deep(source: str, error: RecursionError) -> str:
    return (
        f"{source}: nested too deeply to read ({error}). No recording is nested this deep: the file is "
        "damaged or was not written by a recorder; delete it and record it again."
    )


MAPPING_GROWTH = 4  # the id mapping may make a file at most 4 times bigger, plus MAPPING_SLACK
MAPPING_SLACK = 1 << 20
MAPPING_WORK = 64  # and may scan at most 64 times its size, plus MAPPING_WORK_SLACK (about a second)
MAPPING_WORK_SLACK = 256 << 20


def _apply_id_mapping(data: bytes, mapping: dict[str, str], source: str = "a recording") -> bytes:
    """llama-stack's id mapping: ``{normalized: original}``; originals in the file become normalized.

    Ids are renamed, not multiplied: a mapping that would make the file grow past
    :data:`MAPPING_GROWTH` times its size (each entry applies to the previous one's result, so a
    few entries of a 1 KB file could fill the memory), or that has too many entries to apply
    quickly, is refused before it is applied.
    """
    size = len(data)
    largest, budget, work = MAPPING_GROWTH * size + MAPPING_SLACK, MAPPING_WORK * size + MAPPING_WORK_SLACK, 0
    for normalized, original in mapping.items():
        if not original:
            continue
        work += len(data)
        if work > budget:
            raise RecordingFileError(
                f"{source}: its id_normalization_mapping has {len(mapping)} entries, too many to apply to a "
                f"file of {size} bytes. A recording maps the few ids it holds; this file is damaged or was "
                "not written by a recorder: delete it and record it again."
            )
        old, new = _encoder.encode(original)[1:-1], _encoder.encode(normalized)[1:-1]
        grown = len(data) + data.count(old) * (len(new) - len(old))
        if grown > largest:
            raise RecordingFileError(
                f"{source}: its id_normalization_mapping would make the file grow from {size} to more than "
                f"{largest} bytes (at the entry {normalized[:40]!r}). A recording's mapping renames ids, it "
                "does not multiply the text: this file is damaged or hostile; delete it and record it again."
            )
        data = data.replace(old, new)
    return data


def read_recording(path: Path, rehydrator: Rehydrator) -> Recording:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordingFileError(f"{path}: cannot be read ({exc.strerror}).") from exc
    recording = parse_recording(data, rehydrator, str(path))
    recording.path = path
    return recording


_NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EBADF})  # as is_file() says


def read_file_if_there(path: str) -> bytes | None:
    """The bytes of the regular file ``path``, or None where ``Path.is_file()`` would be False.

    One ``open`` instead of ``is_file()`` then ``read_bytes()``: a hit costs a few microseconds, a
    miss one failed ``open``. Another problem with a file that is there is a RecordingFileError.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno in _NOT_THERE:
            return None
        raise RecordingFileError(f"{path}: cannot be read ({exc.strerror}).") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        parts = [os.read(fd, info.st_size + 1 if info.st_size else 1 << 16)]
        while parts[-1]:  # a file that grew since fstat: read to its end
            parts.append(os.read(fd, 1 << 20))
        return parts[0] if len(parts) == 2 else b"".join(parts)
    except OSError as exc:
        raise RecordingFileError(f"{path}: cannot be read ({exc.strerror}).") from exc
    finally:
        os.close(fd)


def encode_recording(document: dict[str, Any]) -> bytes:
    """The bytes of a recording file: indented, keys in the order given, newline at the end."""
    return msgspec.json.format(_encoder.encode(document), indent=2) + b"\n"


TEMPORARY_PREFIX = ".api-recorder-"  # ours, unmistakably; never read as a recording (no .json end)
TEMPORARY_SUFFIX = ".tmp"
STALE_AFTER_SECONDS = 15 * 60  # a write takes milliseconds: a temporary file this old lost its writer
_tidied_folders: set[Path] = set()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file, nor an empty one.

    The bytes go to a temporary file of ours in the same folder, are flushed to the disk (a power
    cut cannot leave an empty file under a real name), and the file is renamed into place with
    the mode an ordinary file write gets under the current umask (recordings are committed and
    read by others). The first write to a folder in a process removes stale temporary files
    that killed writers left there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, once=True)
    import tempfile  # only writing needs it

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        _wrote_into(path.parent)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(folder: Path, *, once: bool = False) -> None:
    """Delete our temporary files in ``folder`` older than any live writer could be."""
    if once:
        if folder in _tidied_folders:
            return
        _tidied_folders.add(folder)
    for path in stale_temporaries(folder):
        try:
            path.unlink()
        except OSError:  # another process removed it first, or it is not ours to remove
            continue


def stale_temporaries(folder: Path) -> list[Path]:
    """Our temporary files in ``folder`` that no live writer can still own (older than the limit)."""
    deadline = time.time() - STALE_AFTER_SECONDS
    stale = []
    for candidate in sorted(folder.glob(f"{TEMPORARY_PREFIX}*{TEMPORARY_SUFFIX}")):
        try:
            if candidate.stat().st_mtime < deadline:
                stale.append(candidate)
        except OSError:
            continue
    return stale


def _file_mode() -> int:
    """What ``open(path, "w")`` would give: 0o666 less the umask (read once: it is process-wide)."""
    global _FILE_MODE
    if _FILE_MODE is None:
        _FILE_MODE = 0o666 & ~_current_umask()
    return _FILE_MODE


def _current_umask() -> int:
    """The umask, read without changing it where the system tells (Linux), else set and put back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_FILE_MODE: int | None = None


RACY_NS = 2_000_000_000
"""A folder whose mtime is this close to now may still change within the same timestamp tick (a
file added then leaves the mtime as it was): its listing is used, but not trusted on the next call."""
_PREFIX_BYTES = 4096  # where a recording's test id is looked for first (llama-stack writes it first)
_TEST_ID_FIRST = re.compile(rb'\A\s*\{\s*"test_id"\s*:\s*(null|"(?:[^"\\]|\\.)*")\s*[,}]')
_UNREADABLE = object()  # a file whose test id cannot be read: no recording


class _TestIdPart(msgspec.Struct):
    test_id: str | None = None


_decode_test_id_part = msgspec.json.Decoder(_TestIdPart).decode


class FolderIndex:
    """The recording files of one folder, listed once and listed again only when it changes.

    It serves what needs the folder's contents rather than one name: model-list globs, and a miss
    that explains itself with the test's own recordings. Each use checks the folder's mtime,
    inode and device (one ``stat``); a listing made while the mtime was within :data:`RACY_NS` of
    now is not trusted the next time (a file added in the same tick leaves the mtime as it was),
    and a write of ours drops the listing. The test id of each file is read from the start of the
    file once and kept by its name, mtime and size.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None  # the folder's (mtime, inode, device) when trusted
        self._names: list[str] = []  # the .json files, sorted
        self._test_ids: dict[str, tuple[tuple[int, int], Any]] = {}  # name -> ((mtime, size), test id)
        self._by_test: dict[str | None, list[str]] | None = None
        self._by_test_of: list[str] | None = None  # the listing _by_test was made from

    def names(self) -> list[str]:
        """The names of the folder's ``.json`` files, sorted (empty when there is no folder)."""
        with self._lock:
            return self._fresh()

    def forget_listing(self) -> None:
        """The folder changed (a file of ours was written): list it again next time."""
        self._stamp = None

    def matching(self, pattern: str) -> list[str]:
        """The names that ``pattern`` (a glob of ``.json`` files, ``models-<hash>-*.json``) matches."""
        names = self.names()
        if os.name == "nt":  # names match whatever their case there
            return fnmatch.filter(names, pattern)
        literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        start = bisect.bisect_left(names, literal)
        found = []
        for name in names[start:]:
            if not name.startswith(literal):
                break
            if fnmatch.fnmatchcase(name, pattern):
                found.append(name)
        return found

    def names_of_test(self, test_id: str | None) -> list[str]:
        """The files whose ``test_id`` is ``test_id`` (as their start says: read them to be sure)."""
        with self._lock:
            names = self._fresh()
            if self._by_test is None or self._by_test_of is not names:
                listed = set(names)
                self._test_ids = {name: known for name, known in self._test_ids.items() if name in listed}
                by_test: dict[Any, list[str]] = {}
                for name in names:
                    owner = self._test_id_of(name)
                    if owner is not _UNREADABLE:
                        by_test.setdefault(owner, []).append(name)
                self._by_test, self._by_test_of = by_test, names
            return list(self._by_test.get(test_id, ()))

    def _fresh(self) -> list[str]:
        try:
            info = os.stat(self.folder)
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            self._stamp, self._names = None, []
            return self._names
        stamp = (info.st_mtime_ns, info.st_ino, info.st_dev)
        if stamp == self._stamp:
            return self._names
        names = []
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".json"):
                        try:
                            if entry.is_file():
                                names.append(entry.name)
                        except OSError:
                            continue
        except OSError:
            self._stamp, self._names = None, []
            return self._names
        names.sort()
        self._stamp = stamp if time.time_ns() - info.st_mtime_ns > RACY_NS else None
        self._names = names
        return names

    def _test_id_of(self, name: str) -> Any:
        path = os.path.join(self.folder, name)
        try:
            info = os.stat(path)
        except OSError:
            return _UNREADABLE
        version = (info.st_mtime_ns, info.st_size)
        known = self._test_ids.get(name)
        if known is not None and known[0] == version:
            return known[1]
        owner = _read_test_id(path)
        self._test_ids[name] = (version, owner)
        return owner


def _read_test_id(path: str) -> Any:
    """A file's ``test_id`` from its first bytes when it comes first (llama-stack's files and
    ours), else from the whole file; _UNREADABLE for a file that is no recording."""
    try:
        with open(path, "rb") as stream:
            start = stream.read(_PREFIX_BYTES)
            found = _TEST_ID_FIRST.match(start)
            if found is not None:
                return msgspec.json.decode(found.group(1))
            return _decode_test_id_part(start + stream.read()).test_id
    except (OSError, msgspec.DecodeError, RecursionError):  # DecodeError: ValidationError too
        return _UNREADABLE


_INDEXES: dict[str, FolderIndex] = {}
_MAX_INDEXES = 1024


def folder_index(folder: str | os.PathLike[str]) -> FolderIndex:
    """The index of ``folder``, one per folder per process."""
    key = os.path.abspath(folder)
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= _MAX_INDEXES:  # a process that ran thousands of tests' folders
            _INDEXES.clear()
        index = _INDEXES.setdefault(key, FolderIndex(key))
    return index


def _wrote_into(folder: Path) -> None:
    index = _INDEXES.get(os.path.abspath(folder))
    if index is not None:
        index.forget_listing()


class RecordingStore:
    """The folders a run reads and writes, laid out as llama-stack lays them out.

    A call made in test ``tests/a/test_x.py::test_y`` is stored in ``tests/a/recordings/``
    (relative to ``root``, the pytest rootdir); a call made outside any test goes to
    ``recording_dir``. Lookup tries the test's folder, then the recording dir, then
    ``recording_dir/recordings`` (where llama-stack puts files under an explicit directory).
    """

    def __init__(self, recording_dir: Path, root: Path) -> None:
        self.recording_dir = recording_dir if recording_dir.is_absolute() else root / recording_dir
        self.root = root
        self._read_folders: dict[str | None, tuple[list[Path], list[str]]] = {}  # per test id

    def test_folder(self, test_id: str | None) -> Path | None:
        """The recordings folder of ``test_id``'s test file, None for ids that name no file.

        The last line of defence against a test id that climbs out of the project: the folder,
        normalized, must lie inside ``root``, else InvalidTestIdError (nothing read or written).
        """
        test_file = test_file_of(test_id)
        if not test_file:
            return None
        folder = self.root / Path(test_file).parent / "recordings"
        problem = test_file_problem(test_file) or _outside(folder, self.root)
        if problem is not None:
            raise InvalidTestIdError(invalid_test_id_message(test_id, problem))
        return folder

    def write_folder(self, test_id: str | None) -> Path:
        """The test's folder, else the recording dir (the first folder read)."""
        return self._folders(test_id)[0][0]

    def read_folders(self, test_id: str | None) -> list[Path]:
        return list(self._folders(test_id)[0])

    def _folders(self, test_id: str | None) -> tuple[list[Path], list[str]]:
        """The folders to read, as paths and as strings, worked out once per test id."""
        known = self._read_folders.get(test_id)
        if known is not None:
            return known
        folders = [self.test_folder(test_id), self.recording_dir, self.recording_dir / "recordings"]
        unique: list[Path] = []
        for folder in folders:
            if folder is not None and folder not in unique:
                unique.append(folder)
        if len(self._read_folders) >= 4096:  # a server seeing test ids for days
            self._read_folders.clear()
        known = self._read_folders[test_id] = (unique, [os.fspath(folder) for folder in unique])
        return known

    def read(self, filenames: list[str], test_id: str | None) -> tuple[Path, bytes] | None:
        """The first of ``filenames`` found in the folders, and its bytes (one ``open`` a name)."""
        for folder in self._folders(test_id)[1]:
            for filename in filenames:
                path = os.path.join(folder, filename)
                data = read_file_if_there(path)
                if data is not None:
                    return Path(path), data
        return None

    def find(self, filenames: list[str], test_id: str | None) -> Path | None:
        for folder in self._folders(test_id)[1]:
            for filename in filenames:
                if os.path.isfile(path := os.path.join(folder, filename)):
                    return Path(path)
        return None

    def glob(self, pattern: str, test_id: str | None) -> list[Path]:
        """The files matching ``pattern`` in each folder, sorted per folder (from the folder's index)."""
        folders, names = self._folders(test_id)
        if not pattern.endswith(".json"):  # the index holds .json files only
            return [path for folder in folders if folder.is_dir() for path in sorted(folder.glob(pattern))]
        return [
            folder / name
            for folder, text in zip(folders, names, strict=True)
            for name in folder_index(text).matching(pattern)
        ]


def _outside(folder: Path, root: Path) -> str | None:
    """Why ``folder`` is not inside ``root`` once both are normalized (``..`` resolved), or None."""
    base = Path(os.path.normpath(os.path.abspath(root)))
    target = Path(os.path.normpath(os.path.abspath(folder)))
    if target.is_relative_to(base):
        return None
    return f"its recordings folder {str(target)!r} lies outside the project root {str(base)!r}"


def paused_gc() -> Any:
    """The cyclic garbage collector paused while answers are rebuilt (see envelopes.paused_gc)."""
    from .envelopes import paused_gc as pause

    return pause()
