"""The four recording modes and how they are read from the environment.

The variable names are llama-stack's, so a suite that drives llama-stack's recorder drives this one
unchanged.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from .errors import InvalidModeError

MODE_ENV = "LLAMA_STACK_TEST_INFERENCE_MODE"
RECORDING_DIR_ENV = "LLAMA_STACK_TEST_RECORDING_DIR"
PASSTHROUGH_ENV = "API_RECORDER_PASSTHROUGH"
DEFAULT_RECORDING_DIR = Path("recordings")


class Mode(str, Enum):
    """What the recorder does with a covered call."""

    LIVE = "live"  # no interception at all
    RECORD = "record"  # always call, overwrite the recording
    REPLAY = "replay"  # never call; a missing recording is an error
    RECORD_IF_MISSING = "record-if-missing"  # replay when found, else call and record

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        """Read a mode from user input, naming the four valid ones when it is none of them."""
        if isinstance(value, Mode):
            return value
        try:
            return cls(str(value).strip().lower().replace("_", "-"))
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise InvalidModeError(
                f"Unknown recording mode {value!r}. Use one of {valid} (for example {MODE_ENV}=replay)."
            ) from None

    @property
    def may_call(self) -> bool:
        """Whether a call may reach the network in this mode."""
        return self is not Mode.REPLAY

    @property
    def reads_recordings(self) -> bool:
        return self in (Mode.REPLAY, Mode.RECORD_IF_MISSING)

    @property
    def writes_recordings(self) -> bool:
        return self in (Mode.RECORD, Mode.RECORD_IF_MISSING)


def mode_from_env() -> Mode | None:
    """The mode named by LLAMA_STACK_TEST_INFERENCE_MODE, or None when it is unset or empty."""
    value = os.environ.get(MODE_ENV, "").strip()
    return Mode.parse(value) if value else None


def recording_dir_from_env() -> Path | None:
    value = os.environ.get(RECORDING_DIR_ENV, "").strip()
    return Path(value) if value else None
