"""The errors api-recorder raises.

Every message says what happened, to which file or request, and what to do next: a test that
fails in replay is read by someone who did not write the recording.
"""

from __future__ import annotations


class ApiRecorderError(Exception):
    """Base class of every error raised by api-recorder itself."""


class InvalidModeError(ApiRecorderError, ValueError):
    """A mode name that is not one of the four the recorder knows."""


class ConflictingSettingsError(ApiRecorderError, ValueError):
    """Two names of one setting (llama-stack's and OGX's variables) set to different values."""


class RecordingNotFoundError(ApiRecorderError, RuntimeError):
    """Replay was asked for a call that was never recorded.

    A RuntimeError, as in llama-stack's recorder, so suites that catch that keep working.
    """


class RecordingFileError(ApiRecorderError, ValueError):
    """A recording file that cannot be read: truncated, not JSON, wrong shape, unknown type."""


class TypeNotInstalledError(RecordingFileError):
    """A recording names a type from a package that is not installed (ollama, llama-stack's own)."""


class UnsupportedCallError(ApiRecorderError, RuntimeError):
    """A call through a wrapped client that the recorder cannot record or replay faithfully.

    Raised instead of letting the call reach the network silently in replay.
    """


class UnrecordableValueError(ApiRecorderError, TypeError):
    """A tool argument or result that cannot be stored as JSON or as a typed envelope."""


class InvalidTestIdError(ApiRecorderError, ValueError):
    """A test id that would put recordings outside the project, or carries control characters.

    Refused by ``test_context()``; a test id arriving in a header or ``API_RECORDER_TEST_ID`` is
    ignored with a warning instead (a server never obeys a hostile client).
    """
