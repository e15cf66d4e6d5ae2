"""The one place that decides, for every covered call: call it, record it, or replay it.

Integrations (one module per SDK) describe a call as a :class:`Call`: its key (hash, the file's
request section, where to look) and how to turn stored answers into what the SDK returns, or live
answers into something storable. The mode logic below is written once and serves sync calls,
async calls and streams alike.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from ._deferred import apply_deferred
from .context import TestIdentity, test_file_of
from .envelopes import Rehydrator, TypeRegistry, dump_object
from .errors import RecordingNotFoundError
from .hashing import Normalizer, apply_normalizers, request_hashes
from .imports import IMPORTS
from .integrations import BUILTINS
from .modes import (
    DEFAULT_RECORDING_DIR,
    HTTP_ENV,
    MODE_ENV,
    OGX_MODE_ENV,
    PASSTHROUGH_ENV,
    RECORDING_DIR_ENVS,
    Mode,
    mode_from_env,
    recording_dir_from_env,
)
from .redaction import Redactor, RedactRule
from .storage import Recording, RecordingStore, parse_recording, read_file_if_there
from .writer import AnswerWriter


@dataclass
class RequestKey:
    """Everything about one intercepted request that does not depend on its answer."""

    hash: str
    request: dict[str, Any]  # the file's "request" section
    label: str  # what a person calls it: "POST /v1/chat/completions", "tavily.search"
    test_id: str | None
    model: str | None = None
    filenames: list[str] = field(default_factory=list)  # lookup order; the first is written
    globs: list[str] = field(default_factory=list)  # model lists: models-<hash>-*.json, merged
    shared: bool = False  # no test id in the hash: written to the recording dir, found from any test
    hashes: list[str] = field(default_factory=list)  # every name a file of this request may have
    merge: Callable[[list[Any]], Any] | None = None  # joins the answers of several files found by globs

    def __post_init__(self) -> None:
        if not self.hashes:
            self.hashes = [self.hash]
        if not self.filenames:
            self.filenames = [f"{name}.json" for name in self.hashes]


@dataclass
class HttpRequest:
    """What an integration says about one HTTP-level call; the recorder makes its key.

    ``url`` is the full URL (base URL and ``endpoint``); ``body`` the arguments as JSON, before
    redaction and normalization; ``shared`` calls (model lists) are hashed without the test id.
    """

    method: str
    url: str
    endpoint: str
    body: dict[str, Any]
    shared: bool = False
    provider_metadata: dict[str, Any] = field(default_factory=dict)


class Call(Protocol):
    """One intercepted call, as an integration describes it to the recorder."""

    key: RequestKey
    normalizes_ids: bool  # API answers get stable ids; a tool's own results are stored as they are

    def replay(self, recording: Recording) -> Any:
        """What the SDK would have returned, built from a recording (may be awaitable)."""

    def capture(self, result: Any, save: Callable[..., Any]) -> Any:
        """Hand ``result`` back to the caller, saving it with ``save(body, is_streaming)``.

        Streams are saved when they end, so the caller sees chunks as they arrive.
        """

    def filename_for(self, body: Any) -> str:
        """The file name to write (model lists name theirs after the models they hold)."""

    def is_recordable_error(self, error: Exception) -> bool:
        """Whether ``error`` is an answer worth replaying (an API error), not a bug of the caller."""

    def answer_despite(self, error: Exception) -> Any:
        """An answer that arrived before ``error`` was raised on the caller's side, or None.

        ``parse()`` gets the completion, then the SDK's parser may refuse it: the completion is
        recorded, and replay runs the parser again, which raises the same error.
        """

    # Optional: ``dump_answer(item) -> JSON``, how one answer (or stream chunk) is stored, when
    # not as an envelope (google-genai's files hold the plain JSON llama-stack writes for them);
    # ``response_fields() -> dict``, more fields of the file's response section (raw HTTP: its
    # ``status`` and ``headers``, placed before the body as llama-stack places them).


@dataclass(frozen=True)
class Integration:
    """Wrappers to install once ``package`` is imported (never before: no SDK is imported here)."""

    package: str
    install: Callable[[Recorder], Any]  # returns an object with uninstall()


def builtin_integration(package: str, module: str, installer: str = "install") -> Integration:
    """An SDK instrumented by ``api_recorder.integrations.<name>.install``, imported on demand."""

    def install(recorder: Recorder) -> Any:
        return getattr(importlib.import_module(module), installer)(recorder)

    return Integration(package, install)


@dataclass
class CallLog:
    """One covered call made while recording was enabled, for the pytest fixture and report."""

    label: str
    outcome: str  # "replayed", "recorded", "missing" or "unwritten" (recording it failed)
    test_id: str | None
    path: Path | None = None
    error: str | None = None  # why an "unwritten" recording could not be written


class Recorder:
    """The recorder's whole state: mode, folders, current test, installed wrappers."""

    def __init__(self) -> None:
        self.mode = Mode.LIVE
        self.enabled = False
        self.store = RecordingStore(Path(DEFAULT_RECORDING_DIR), Path.cwd())
        self.test_ids = TestIdentity()
        self.registry = TypeRegistry()
        self.rehydrator = Rehydrator(self.registry)
        self.normalizers: list[Normalizer] = []
        self.passthrough: list[str] = []
        self.http_prefixes: list[str] = []  # raw HTTP calls recorded: URLs starting with one of these
        self.redactor = Redactor()
        self.calls: list[CallLog] = []  # kept only while a test runner asks (keep_call_log)
        self.keep_call_log = False
        self.writer = AnswerWriter()
        self._replayed: dict[tuple[str | None, str], int] = {}  # how often each recording was served
        self._redacted_urls: dict[str, tuple[Redactor, str]] = {}  # url -> (redactor, url as stored)
        self._lock = threading.Lock()
        self.integrations: list[Integration] = [
            builtin_integration(builtin.package, builtin.module, builtin.installer) for builtin in BUILTINS
        ]
        self._installed: dict[Integration, Any] = {}
        self._hooked: set[Integration] = set()
        self.armed = False

    # -- switching on and off -------------------------------------------------------------

    @property
    def intercepting(self) -> bool:
        return self.enabled and self.mode is not Mode.LIVE

    def enable(
        self,
        mode: Mode | str | None = None,
        recording_dir: str | os.PathLike[str] | None = None,
        *,
        root: str | os.PathLike[str] | None = None,
        normalizers: list[Normalizer] | None = None,
        passthrough: list[str] | None = None,
        redact: Sequence[RedactRule] | None = None,
        http: list[str] | None = None,
    ) -> None:
        """Start recording or replaying; None means "from the environment variables"."""
        # Every setting checked before any is changed: a refused call leaves the state as it was.
        new_mode = Mode.parse(mode) if mode is not None else (mode_from_env() or Mode.REPLAY)
        directory = Path(recording_dir) if recording_dir is not None else recording_dir_from_env()
        root_path = Path(root) if root is not None else Path.cwd()
        redactor = Redactor(redact) if redact is not None else self.redactor
        self.mode, self.redactor = new_mode, redactor
        self.store = RecordingStore(directory or Path(DEFAULT_RECORDING_DIR), root_path)
        if normalizers is not None:
            self.normalizers = list(normalizers)
        if passthrough is not None:
            self.passthrough = list(passthrough)
        elif not self.passthrough:
            self.passthrough = passthrough_from_env()
        if http is not None:
            self.http_prefixes = [prefix.strip() for prefix in http if prefix.strip()]
        elif not self.http_prefixes:
            self.http_prefixes = prefixes_from_env(HTTP_ENV)
        self.writer.forget_answers()
        self._replayed.clear()
        self.enabled = True
        self.arm()

    @contextmanager
    def enabled_within(
        self,
        mode: Mode | str | None = None,
        recording_dir: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> Iterator[None]:
        """``enable()`` inside the block only; the previous state comes back after it (nestable)."""
        with self.state_saved():
            self.enable(mode, recording_dir, **settings)
            yield

    def current_mode(self) -> Mode:
        """The mode in force (``live`` when disabled)."""
        return self.mode if self.enabled else Mode.LIVE

    def disable(self) -> None:
        """Stop intercepting: every wrapper passes calls straight through, as if never installed.

        The wrappers stay (a few hundred nanoseconds a call), so that a method a library looked up
        while they were installed is still recorded when recording starts again.
        """
        self.enabled = False
        self.mode = Mode.LIVE

    def uninstall(self) -> None:
        """Remove every wrapper: the SDK's classes are exactly what they were before api-recorder.

        A module imported after this is not wrapped again until the next ``arm()`` or ``enable()``.
        """
        self.disable()
        for installed in self._installed.values():
            installed.uninstall()
        self._installed.clear()
        self.armed = False

    def arm(self) -> None:
        """Install every integration's wrappers whenever its package is imported, inert until enabled.

        Called when api-recorder is imported: a client, or a bound method such as
        ``client.chat.completions.create``, that a library keeps from before ``enable()`` or
        ``recording()`` then goes through the wrappers too.
        """
        self.armed = True
        for integration in self.integrations:
            self._watch(integration)

    def add_integration(self, integration: Integration) -> None:
        """Instrument one more module (``wrap_tool``): now if it is imported, else when it is."""
        self.integrations.append(integration)
        if self.armed:
            self._watch(integration)

    def _watch(self, integration: Integration) -> None:
        """Install at once if the package is imported, else on its import (and after an uninstall)."""
        if integration not in self._hooked:
            self._hooked.add(integration)
            IMPORTS.on_import(integration.package, self._import_hook(integration))
        elif integration.package in sys.modules:
            self._install(integration)

    def _import_hook(self, integration: Integration) -> Callable[[Any], None]:
        def on_import(_module: Any) -> None:
            if self.armed:
                self._install(integration)

        return on_import

    def _install(self, integration: Integration) -> None:
        if integration not in self._installed:
            self._installed[integration] = integration.install(self)

    @contextmanager
    def state_saved(self) -> Iterator[None]:
        """Put mode, folders, normalizers and enabled-ness back as they were when the block ends."""
        was_enabled, mode, store = self.enabled, self.mode, self.store
        normalizers, passthrough, redactor = list(self.normalizers), list(self.passthrough), self.redactor
        http_prefixes = list(self.http_prefixes)
        try:
            yield
        finally:
            self.normalizers = normalizers
            self.redactor = redactor
            self.http_prefixes = http_prefixes
            if was_enabled:
                self.enable(mode, store.recording_dir, root=store.root, passthrough=passthrough, http=http_prefixes)
            else:
                self.disable()

    # -- what a request is ----------------------------------------------------------------

    def current_test_id(self) -> str | None:
        return self.test_ids.current()

    def records_http(self, url: str) -> bool:
        """Whether a raw HTTP call to ``url`` is recorded (its prefix was opted in with ``http=``)."""
        return self.intercepting and any(url.startswith(prefix) for prefix in self.http_prefixes)

    def is_passthrough(self, base_url: str) -> bool:
        """Whether calls to ``base_url`` (the server under test) must go through untouched."""
        return any(base_url.startswith(prefix) for prefix in self.passthrough)

    def prepare_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body that is hashed and stored: live ids made stable, secrets scrubbed, user
        normalizers applied."""
        return apply_normalizers(self.redactor.scrub_request(self.writer.stable_ids(body)), self.normalizers)

    def http_key(self, described: HttpRequest) -> RequestKey:
        """The key of an HTTP-level call, the same way for every SDK: llama-stack's hash and file.

        The newest hash names the file written; the older one, and for shared calls the hash
        with the test id (llama-stack's model-list files), are looked up too.
        """
        body = self.prepare_body(described.body)
        test_id = self.current_test_id()
        hashes = request_hashes(
            described.method, described.url, body, test_id, shared=described.shared, with_test_id_too=True
        )
        model = body.get("model")
        request = {
            "method": described.method,
            "url": self.redacted_url(described.url),
            "headers": {},
            "body": body,
            "endpoint": described.endpoint,
            "model": model if model is not None else "",
            "provider_metadata": described.provider_metadata,
        }
        return RequestKey(
            hash=hashes[0],
            request=request,
            label=f"{described.method} {described.endpoint}",
            test_id=test_id,
            model=model if isinstance(model, str) and model else None,
            shared=described.shared,
            hashes=hashes,
        )

    def redacted_url(self, url: str) -> str:
        """``url`` as stored (:meth:`Redactor.url`), worked out once per URL and redactor: a client
        calls the same few URLs over and over."""
        redactor = self.redactor
        known = self._redacted_urls.get(url)
        if known is not None and known[0] is redactor:
            return known[1]
        redacted = redactor.url(url)
        if len(self._redacted_urls) >= 1024:
            self._redacted_urls.clear()
        self._redacted_urls[url] = (redactor, redacted)
        return redacted

    # -- the decision ---------------------------------------------------------------------

    def run(self, call: Call, invoke: Callable[[], Any]) -> Any:
        """Serve a sync call from its recording, or make it and record it (answer or error)."""
        recording = self.lookup(call.key)
        if recording is not None:
            return call.replay(_raise_if_error(recording))
        try:
            result = invoke()
        except Exception as error:
            self._save_error(call, error)
            raise
        return call.capture(result, self._saver(call))

    async def run_async(self, call: Call, invoke: Callable[[], Awaitable[Any]]) -> Any:
        """The same decision for an async call."""
        recording = self.lookup(call.key)
        if recording is not None:
            return await _resolved(call.replay(_raise_if_error(recording)))
        try:
            result = await invoke()
        except Exception as error:
            self._save_error(call, error)
            raise
        return await _resolved(call.capture(result, self._saver(call)))

    def _save_error(self, call: Call, error: Exception) -> None:
        answer = call.answer_despite(error)
        if answer is not None:
            self.save(call, answer, False)
        elif call.is_recordable_error(error):
            self.save(call, None, False, error=error)

    def lookup(self, key: RequestKey) -> Recording | None:
        """The recording to replay, None if the call must be made, or RecordingNotFoundError."""
        if self.mode is Mode.RECORD:
            return None
        served = (key.test_id, key.hash)
        recording = self.find(key)
        if recording is not None:
            self._log(key, "replayed", recording.path)
            with self._lock:
                index = self._replayed.get(served, 0)
                self._replayed[served] = index + 1
            return recording.answer(index)
        if self.mode is Mode.REPLAY:
            self._log(key, "missing", self.store.write_folder(key.test_id) / key.filenames[0])
            raise RecordingNotFoundError(self.not_found_message(key))
        return None

    def _log(self, key: RequestKey, outcome: str, path: Path | None, *, error: str | None = None) -> None:
        """Note a call for the pytest report; a long-running server keeps no such log."""
        if self.keep_call_log:
            self.calls.append(CallLog(key.label, outcome, key.test_id, path, error))

    def find(self, key: RequestKey) -> Recording | None:
        """The recording of ``key``: its exact file (one ``open`` a candidate name), or for model
        lists every file its globs match, from the folders' indexes (a file gone since is skipped)."""
        for pattern in key.globs:
            found = [
                (path, data) for path in self.store.glob(pattern, key.test_id) if (data := _bytes_of(path)) is not None
            ]
            if found:
                return _merge((self._parsed(path, data) for path, data in found), key.merge)
        hit = self.store.read(key.filenames, key.test_id)
        return self._parsed(*hit) if hit is not None else None

    def _parsed(self, path: Path, data: bytes) -> Recording:
        recording = parse_recording(data, self.rehydrator, str(path))
        recording.path = path
        return recording

    def _saver(self, call: Call) -> Callable[..., Path | None]:
        def save(body: Any, is_streaming: bool, error: Exception | None = None) -> Path | None:
            if error is not None and not call.is_recordable_error(error):
                return None  # cut short by something that is not an answer: record nothing, not half
            return self.save(call, body, is_streaming, error=error)

        return save

    def save(self, call: Call, body: Any, is_streaming: bool, *, error: Exception | None = None) -> Path | None:
        """Write one answer (an object, a stream's chunks, an error) to the call's recording file."""
        key = call.key
        response = self.writer.response_document(
            body,
            is_streaming=is_streaming,
            error=error,
            normalized_id=f"rec-{key.hash[:12]}" if call.normalizes_ids else None,
            redactor=self.redactor,
            dump=getattr(call, "dump_answer", dump_object),
            fields=call.response_fields() if hasattr(call, "response_fields") else None,
        )
        folder = self.store.recording_dir if key.shared else self.store.write_folder(key.test_id)
        path = folder / call.filename_for(body)
        try:
            self.writer.write(
                path,
                test_id=None if key.shared else key.test_id,
                key=(key.test_id, key.hash),
                request=key.request,
                response=response,
            )
        except OSError as error:
            self._not_written(key, path, error)
            return None
        self._log(key, "recorded", path)
        return path

    def _not_written(self, key: RequestKey, path: Path, error: OSError) -> None:
        """A recording that cannot be written says so at once (the call itself still answers)."""
        reason = error.strerror or str(error)
        warnings.warn(
            f"api-recorder could not write {path} ({reason}): {key.label} is not recorded. Make the folder "
            "writable (and check the disk has room), then record again.",
            RuntimeWarning,
            stacklevel=3,
        )
        self._log(key, "unwritten", path, error=reason)

    def not_found_message(self, key: RequestKey) -> str:
        folders = self.store.read_folders(key.test_id)
        looked_for = [str(folder / key.filenames[0]) for folder in folders]
        model = f" (model {key.model})" if key.model else ""
        test = f"test {key.test_id!r}" if key.test_id else "no test context"
        return (
            f"No recording for {key.label}{model} in {test}.\n"
            f"  request hash: {key.hash}\n"
            f"  looked for:   {', '.join(looked_for)}\n"
            f"{_explain_missing(key.request, key.test_id, folders)}\n"
            f"Replay mode never calls the network. To record this call, run:\n"
            f"  {record_command(key.test_id)}"
        )


def passthrough_from_env() -> list[str]:
    """Base URLs never recorded nor replayed, from ``API_RECORDER_PASSTHROUGH`` (comma-separated)."""
    return [url.rstrip("/") for url in prefixes_from_env(PASSTHROUGH_ENV)]


def prefixes_from_env(name: str) -> list[str]:
    """URL prefixes from a comma-separated variable (``API_RECORDER_PASSTHROUGH``, ``API_RECORDER_HTTP``)."""
    return [url.strip() for url in os.environ.get(name, "").split(",") if url.strip()]


def _explain_missing(request: dict[str, Any], test_id: str | None, folders: list[Path]) -> str:
    from .mismatch import explain_missing  # difflib and the folder scan: only a miss needs them

    return explain_missing(request, test_id, folders)


def record_command(test_id: str | None) -> str:
    """The shell command that records what a run is missing, with the variable names in use."""
    import shlex  # only a miss needs it

    mode_name = OGX_MODE_ENV if os.environ.get(OGX_MODE_ENV) and not os.environ.get(MODE_ENV) else MODE_ENV
    prefix = f"{mode_name}=record-if-missing"
    for name in RECORDING_DIR_ENVS:
        directory = os.environ.get(name)
        if directory:
            prefix += f" {name}={shlex.quote(directory)}"
            break
    if test_file_of(test_id):
        return f"{prefix} python -m pytest {shlex.quote(cast(str, test_id))}"  # an id with a test file is a str
    argv = " ".join(shlex.quote(arg) for arg in sys.argv) or "your-program"
    return f"{prefix} python {argv}"


def _raise_if_error(recording: Recording) -> Recording:
    """A recorded error that ended a non-streamed call is raised; a stream raises after its chunks."""
    if recording.response.is_exception and not recording.response.is_streaming:
        error = recording.response.error()
        if error is not None:
            raise error
    return recording


def _merge(recordings: Iterator[Recording], merge: Callable[[list[Any]], Any] | None = None) -> Recording:
    """Model lists recorded against several servers answer with the union, as in llama-stack
    (by model id, unless the call says how its answers join)."""
    found = list(recordings)
    if len(found) == 1:
        return found[0]
    if merge is not None:
        merged_recording = found[0]
        merged_recording.response._body = merge([recording.response.body for recording in found])
        return merged_recording
    by_id: dict[str, Any] = {}
    for recording in found:
        for model in recording.response.body:
            by_id[getattr(model, "id", None) or str(model)] = model
    merged = found[0]
    merged.response._body = [by_id[model_id] for model_id in sorted(by_id)]
    return merged


def _bytes_of(path: Path) -> bytes | None:
    return read_file_if_there(os.fspath(path))


async def _resolved(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


RECORDER = Recorder()
"""The recorder of this process: the only mutable state api-recorder keeps."""
RECORDER.arm()
apply_deferred(RECORDER)  # the enable() calls made before the engine loaded (see _deferred)
