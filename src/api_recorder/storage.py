"""Where recording files live, how they are written, and how they are read back.

Files are llama-stack's: ``{"test_id", "request", "response": {"body", "is_streaming"},
"id_normalization_mapping"}``, one per call, indented and ending with a newline so they diff well.
Writes go to a temporary file in the same folder and are renamed into place: a reader, another
pytest-xdist worker or a crash never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

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
    request: dict[str, Any]
    response: _ResponseDoc
    test_id: str | None = None
    id_normalization_mapping: dict[str, str] | None = None
    more_responses: list[_ResponseDoc] | None = None


_decode_file = msgspec.json.Decoder(_FileDoc).decode
_encoder = msgspec.json.Encoder()


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
        """The stream's chunks, each rebuilt only when reached (time to first chunk stays short)."""
        if self._body is not _UNSET:
            yield from self._body
            return
        chunks = self.rehydrator.envelopes(self.raw_body, source=self.source)
        while True:
            try:
                yield self._with_versions(lambda: next(chunks))
            except StopIteration:
                return

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
        built = []
        while True:
            try:
                built.append(self._with_versions(lambda: next(chunks)))
            except StopIteration:
                return built

    def _rebuild(self, raw: Any, source: str) -> Any:
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
    test (polling a job): replay gives them in order. ``response`` is the first.
    """

    test_id: str | None
    request: dict[str, Any]
    response: RecordedResponse
    id_normalization_mapping: dict[str, str]
    path: Path | None = None
    responses: list[RecordedResponse] = field(default_factory=list)

    def answer(self, index: int) -> Recording:
        """This recording as seen by the ``index``-th identical call (the last answer repeats)."""
        if len(self.responses) < 2:
            return self
        return replace(self, response=self.responses[min(index, len(self.responses) - 1)])


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


def _recorded_response(
    doc: _ResponseDoc, rehydrator: Rehydrator, source: str, request: dict[str, Any]
) -> RecordedResponse:
    raw_body: Any = doc.body
    if doc.is_streaming:
        raw_body = decode_raw_list(raw_body) if bytes(memoryview(raw_body)[:4]) != b"null" else []
    metadata = request.get("provider_metadata")
    return RecordedResponse(
        raw_body=raw_body,
        is_streaming=doc.is_streaming,
        rehydrator=rehydrator,
        source=source,
        is_exception=doc.is_exception,
        exception_data=doc.exception_data,
        exception_message=doc.exception_message,
        url=request.get("url") if isinstance(request.get("url"), str) else None,
        recorded_with=recorded_with(metadata),
        status=doc.status,
        headers=doc.headers,
    )


def parse_recording(data: bytes, rehydrator: Rehydrator, source: str) -> Recording:
    """Parse a recording file's bytes; every problem is a RecordingFileError naming ``source``."""
    try:
        document = _decode_file(data)
        mapping = document.id_normalization_mapping or {}
        if mapping:
            data = _apply_id_mapping(data, mapping, source)
            document = _decode_file(data)
        answers = [document.response, *(document.more_responses or [])]
        responses = [_recorded_response(doc, rehydrator, source, document.request) for doc in answers]
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
        request=document.request,
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
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMPORARY_PREFIX}{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
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
        return self.test_folder(test_id) or self.recording_dir

    def read_folders(self, test_id: str | None) -> list[Path]:
        folders = [self.test_folder(test_id), self.recording_dir, self.recording_dir / "recordings"]
        unique: list[Path] = []
        for folder in folders:
            if folder is not None and folder not in unique:
                unique.append(folder)
        return unique

    def find(self, filenames: list[str], test_id: str | None) -> Path | None:
        for folder in self.read_folders(test_id):
            for filename in filenames:
                candidate = folder / filename
                if candidate.is_file():
                    return candidate
        return None

    def glob(self, pattern: str, test_id: str | None) -> list[Path]:
        return [
            path for folder in self.read_folders(test_id) if folder.is_dir() for path in sorted(folder.glob(pattern))
        ]


def _outside(folder: Path, root: Path) -> str | None:
    """Why ``folder`` is not inside ``root`` once both are normalized (``..`` resolved), or None."""
    base = Path(os.path.normpath(os.path.abspath(root)))
    target = Path(os.path.normpath(os.path.abspath(folder)))
    if target.is_relative_to(base):
        return None
    return f"its recordings folder {str(target)!r} lies outside the project root {str(base)!r}"
