"""Streams: replayed ones that behave like the SDK's, and live ones that record as they flow.

Replayed streams subclass the SDK's own ``Stream``/``AsyncStream`` (:func:`replay_stream_classes`),
so ``isinstance`` checks and the SDK's helpers built on them (``chat.completions.stream()``,
``responses.stream()``, ``messages.stream()``, ``get_final_completion()``...) work unchanged.
Recording streams are transparent proxies of the live stream (or, for SDKs that yield plain
iterators, :class:`RecordingIterator`): the caller sees every chunk when it arrives, and the recording is
written once, whole, when the stream ends; a stream closed early is read to its end first, so a
recording is never half a stream. An error in the middle of a stream is recorded after the chunks
that came before it, and replay raises it at the same place. A long stream is held as JSON bytes
while it flows, not as the SDK's objects (:class:`_Recording`).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import wrapt

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]  # wrapt 1.x's ObjectProxy cannot be subscripted at run time
else:
    _Proxy = wrapt.ObjectProxy

from .envelopes import dump_object
from .writer import DumpedChunks, encode_dumped

KEEP_OBJECTS = 256
"""Chunks a recording stream keeps as objects; past them, every chunk is kept as JSON bytes."""


class ReplayedHTTPResponse:
    """Stands in for the HTTP response under a replayed stream (there was none)."""

    status_code = 200
    http_version = "HTTP/1.1"

    def __init__(self, headers: dict[str, str] | None = None, request: Any = None) -> None:
        self.headers: dict[str, str] = dict(headers or {})
        self.request = request  # the SDK's HTTP request (method, URL), for helpers that read it
        self.is_closed = False

    def close(self) -> None:
        self.is_closed = True

    async def aclose(self) -> None:
        self.is_closed = True


def _start_replay(
    stream: Any, chunks: Iterable[Any], error: BaseException | None, headers: Any, request: Any = None
) -> None:
    """The state the SDK's stream classes expect, minus the HTTP connection there never was."""
    stream.response = ReplayedHTTPResponse(headers, request)
    stream._cast_to = object
    stream._client = None
    stream._options = None
    stream._chunks = chunks
    stream._error = error
    stream._iterator = stream.__stream__()


class _ReplayStreamMixin:
    """A recorded stream played back: iteration, context manager and close() as the SDK's."""

    response: ReplayedHTTPResponse
    _chunks: Iterable[Any]
    _error: BaseException | None

    def __init__(
        self,
        chunks: Iterable[Any],
        *,
        error: BaseException | None = None,
        headers: dict[str, str] | None = None,
        request: Any = None,
    ) -> None:
        _start_replay(self, chunks, error, headers, request)

    def __stream__(self) -> Iterator[Any]:
        for chunk in self._chunks:
            if self.response.is_closed:
                return
            yield chunk
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self.response.close()


class _ReplayAsyncStreamMixin:
    """The async twin of :class:`_ReplayStreamMixin`."""

    response: ReplayedHTTPResponse
    _chunks: Iterable[Any]
    _error: BaseException | None

    def __init__(
        self,
        chunks: Iterable[Any],
        *,
        error: BaseException | None = None,
        headers: dict[str, str] | None = None,
        request: Any = None,
    ) -> None:
        _start_replay(self, chunks, error, headers, request)

    async def __stream__(self) -> AsyncIterator[Any]:
        for chunk in self._chunks:
            if self.response.is_closed:
                return
            yield chunk
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        await self.response.aclose()


@cache
def replay_stream_classes(stream_cls: type, async_stream_cls: type) -> tuple[type, type]:
    """Replay stream classes that subclass an SDK's own ``Stream`` and ``AsyncStream``."""
    namespace = {"__module__": __name__}
    sync = type(f"Replay{stream_cls.__name__}", (_ReplayStreamMixin, stream_cls), namespace)
    async_ = type(f"Replay{async_stream_cls.__name__}", (_ReplayAsyncStreamMixin, async_stream_cls), namespace)
    return sync, async_


class _Recording:
    """What a recording stream has seen, and whether it was saved (or must never be) already.

    A long stream's chunks are kept as the compact JSON of their stored form (``dump``: an
    envelope by default), each as it arrives, not as the SDK's objects: 10,000 chunks hold a few
    MB of bytes instead of 50 MB of objects. The writer makes their ids stable and scrubs them
    when the stream is saved. The first :data:`KEEP_OBJECTS` chunks stay objects (a short stream
    is saved as before, with no bytes in between), and are dumped once a stream grows past them.
    """

    def __init__(self, save: Callable[..., Any], dump: Callable[[Any], Any] | None = None) -> None:
        self.chunks: list[Any] = []  # objects, then a DumpedChunks once the stream is long
        self.saved = False
        self._save = save
        self._dump = dump or dump_object
        self._failure: Exception | None = None  # a chunk that could not be dumped: raised when saving

    def add(self, chunk: Any) -> None:
        chunks = self.chunks
        if type(chunks) is list:
            chunks.append(chunk)
            if len(chunks) < KEEP_OBJECTS:
                return
            self.chunks = DumpedChunks()
            self._dump_all(chunks)
        elif self._failure is None:
            self._dump_all((chunk,))

    def _dump_all(self, chunks: Iterable[Any]) -> None:
        try:
            for chunk in chunks:
                self.chunks.append(encode_dumped(self._dump(chunk)))
        except Exception as error:  # not storable: the caller's stream goes on, the recording fails
            self._failure = error
            self.chunks.clear()

    def finish(self, error: Exception | None = None) -> None:
        """Save the chunks (and the error that ended the stream, if any), once."""
        if not self.saved:
            self.saved = True
            if self._failure is not None:
                raise self._failure
            chunks, self.chunks = self.chunks, []
            self._save(chunks, error)

    def interrupt(self) -> None:
        """Ctrl-C, a cancelled task, a test timeout: what was seen is half an answer, never saved.

        The SDK's generator ended with the interruption, so "reading the rest" would find nothing
        and save the half as if it were whole; and an interrupted caller wants to stop now, not
        after the rest of the stream has arrived.
        """
        self.saved = True
        self.chunks.clear()


def _interrupted(exc_type: type[BaseException] | None) -> bool:
    """An exception that stops the program rather than reports an error (not an ``Exception``)."""
    return exc_type is not None and not issubclass(exc_type, Exception)


class RecordingStream(_Proxy):
    """A live ``Stream`` that records its chunks as the caller reads them."""

    def __init__(self, live: Any, save: Callable[..., Any], dump: Callable[[Any], Any] | None = None) -> None:
        super().__init__(live)
        self._self_recording = _Recording(save, dump)
        # The response refers to the live stream, not to this proxy: no reference cycle, so a
        # dropped proxy is finalized at once, while the live stream is still open.
        self._self_response = _ClosingResponse(live.response, live, self._self_recording)

    @property
    def response(self) -> Any:
        return self._self_response

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                yield self.__next__()
            except StopIteration:
                return

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_recording.finish()
            raise
        except Exception as error:  # an error in the middle of the stream is part of the answer
            self._self_recording.finish(error)
            raise
        except BaseException:
            self._self_recording.interrupt()
            raise
        self._self_recording.add(chunk)
        return chunk

    def _self_read_to_end(self) -> None:
        _read_to_end(self.__wrapped__, self._self_recording)

    def close(self) -> None:
        self._self_read_to_end()
        self.__wrapped__.close()

    def __del__(self) -> None:
        """A stream left with ``break`` and dropped is read to its end and recorded, whole."""
        if sys.meta_path is None or self._self_recording.saved:  # interpreter shutdown: nothing to do
            return
        if _interrupted(sys.exc_info()[0]):  # dropped while Ctrl-C unwinds: stop, read nothing more
            self._self_recording.interrupt()
        try:
            self.close()
        except BaseException:  # never raise from a finalizer; the stream then stays unrecorded
            pass

    def __enter__(self) -> RecordingStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if _interrupted(exc_type):
            self._self_recording.interrupt()
        self.close()


class AsyncRecordingStream(_Proxy):
    """The async twin of :class:`RecordingStream`."""

    def __init__(self, live: Any, save: Callable[..., Any], dump: Callable[[Any], Any] | None = None) -> None:
        super().__init__(live)
        self._self_recording = _Recording(save, dump)
        self._self_response = _ClosingResponse(live.response, live, self._self_recording)

    @property
    def response(self) -> Any:
        return self._self_response

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.__anext__()
            except StopAsyncIteration:
                return

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_recording.finish()
            raise
        except Exception as error:
            self._self_recording.finish(error)
            raise
        except BaseException:  # CancelledError (a wait_for timeout), KeyboardInterrupt
            self._self_recording.interrupt()
            raise
        self._self_recording.add(chunk)
        return chunk

    async def _self_read_to_end(self) -> None:
        await _aread_to_end(self.__wrapped__, self._self_recording)

    async def close(self) -> None:
        await self._self_read_to_end()
        await self.__wrapped__.close()

    async def __aenter__(self) -> AsyncRecordingStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        if _interrupted(exc_type):
            self._self_recording.interrupt()
        await self.close()


class _ClosingResponse(_Proxy):
    """The live HTTP response, except that closing it first completes the recording.

    The SDK's stream helpers close ``raw_stream.response`` directly, not the stream.
    """

    def __init__(self, response: Any, live: Any, recording: _Recording) -> None:
        super().__init__(response)
        self._self_live = live
        self._self_recording = recording

    def close(self) -> None:
        _read_to_end(self._self_live, self._self_recording)
        self.__wrapped__.close()

    async def aclose(self) -> None:
        await _aread_to_end(self._self_live, self._self_recording)
        await self.__wrapped__.aclose()


def _read_to_end(live: Any, recording: _Recording) -> None:
    """Read what the caller left of a live stream, then save it all (with the error that ended it)."""
    if recording.saved:
        return
    try:
        for chunk in live:
            recording.add(chunk)
    except Exception as error:
        recording.finish(error)
        return
    except BaseException:
        recording.interrupt()
        raise
    recording.finish()


async def _aread_to_end(live: Any, recording: _Recording) -> None:
    if recording.saved:
        return
    try:
        async for chunk in live:
            recording.add(chunk)
    except Exception as error:
        recording.finish(error)
        return
    except BaseException:
        recording.interrupt()
        raise
    recording.finish()


class RecordingIterator:
    """A live iterator of answer chunks (an SDK that yields objects, not a ``Stream``), recorded
    as the caller reads it, with the same rules as :class:`RecordingStream`."""

    def __init__(self, live: Iterator[Any], save: Callable[..., Any], dump: Callable[[Any], Any] | None = None) -> None:
        self._live = live
        self._recording = _Recording(save, dump)

    def __iter__(self) -> RecordingIterator:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._live)
        except StopIteration:
            self._recording.finish()
            raise
        except Exception as error:
            self._recording.finish(error)
            raise
        except BaseException:
            self._recording.interrupt()
            raise
        self._recording.add(chunk)
        return chunk

    def close(self) -> None:
        """Left early: read the rest, so the recording is whole, then close the live iterator."""
        _read_to_end(self._live, self._recording)
        close = getattr(self._live, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        if sys.meta_path is None or self._recording.saved:
            return
        if _interrupted(sys.exc_info()[0]):
            self._recording.interrupt()
        try:
            self.close()
        except BaseException:
            pass


class AsyncRecordingIterator:
    """The async twin of :class:`RecordingIterator`."""

    def __init__(
        self, live: AsyncIterator[Any], save: Callable[..., Any], dump: Callable[[Any], Any] | None = None
    ) -> None:
        self._live = live
        self._recording = _Recording(save, dump)

    def __aiter__(self) -> AsyncRecordingIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._live.__anext__()
        except StopAsyncIteration:
            self._recording.finish()
            raise
        except Exception as error:
            self._recording.finish(error)
            raise
        except BaseException:
            self._recording.interrupt()
            raise
        self._recording.add(chunk)
        return chunk

    async def aclose(self) -> None:
        await _aread_to_end(self._live, self._recording)
        aclose = getattr(self._live, "aclose", None)
        if aclose is not None:
            await aclose()


def recording_iterator(live: Any, save: Callable[..., Any], dump: Any, *, is_async: bool) -> Any:
    """A live iterator of chunks (sync or async), recorded as the caller reads it: ``save(chunks,
    True, error)`` once it ends. An async one is an async generator whose ``aclose()`` (or
    ``contextlib.aclosing``) after a ``break`` reads the rest, so the recording is whole; one dropped
    unclosed is finalized by the event loop, which may close the SDK's own generators first: then
    nothing is recorded, never half a stream."""

    def save_chunks(chunks: list[Any], error: Exception | None = None) -> None:
        save(chunks, True, error)

    if is_async:
        return _closed_when_left(AsyncRecordingIterator(live, save_chunks, dump))
    return RecordingIterator(live, save_chunks, dump)


async def _closed_when_left(stream: AsyncRecordingIterator) -> AsyncIterator[Any]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


def replay_iterator(chunks: Iterable[Any], error: BaseException | None) -> Iterator[Any]:
    """A recorded stream as a plain iterator: its chunks, then the error that ended it, if any."""
    yield from chunks
    if error is not None:
        raise error


async def replay_async_iterator(chunks: Iterable[Any], error: BaseException | None) -> AsyncIterator[Any]:
    """The async twin of :func:`replay_iterator`."""
    for chunk in chunks:
        yield chunk
    if error is not None:
        raise error
