"""The four recording modes and how they are read from the environment.

The variable names are llama-stack's, old and new: ``LLAMA_STACK_TEST_*`` and, since llama-stack
was renamed OGX, ``OGX_TEST_*``. A suite that drives either recorder drives this one unchanged.
Both names of one setting may be set if they agree; if they disagree, nothing guesses which wins.
"""

from __future__ import annotations

import os
from enum import Enum

from .errors import ConflictingSettingsError, InvalidModeError

TYPE_CHECKING = False  # no typing or pathlib import: enable() reads this module before any SDK loads
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

MODE_ENV = "LLAMA_STACK_TEST_INFERENCE_MODE"
RECORDING_DIR_ENV = "LLAMA_STACK_TEST_RECORDING_DIR"
OGX_MODE_ENV = "OGX_TEST_INFERENCE_MODE"
OGX_RECORDING_DIR_ENV = "OGX_TEST_RECORDING_DIR"
MODE_ENVS = (MODE_ENV, OGX_MODE_ENV)
RECORDING_DIR_ENVS = (RECORDING_DIR_ENV, OGX_RECORDING_DIR_ENV)
PASSTHROUGH_ENV = "API_RECORDER_PASSTHROUGH"
HTTP_ENV = "API_RECORDER_HTTP"  # URL prefixes whose raw httpx / aiohttp calls are recorded
DEFAULT_RECORDING_DIR = "recordings"


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


def env_setting(names: tuple[str, ...], env: Mapping[str, str] | None = None) -> str | None:
    """The value of a setting that has several variable names, None when none is set (or empty).

    Raises ConflictingSettingsError, naming every variable, when they are set to different values.
    """
    env = os.environ if env is None else env
    found = {name: env[name].strip() for name in names if env.get(name, "").strip()}
    values = set(found.values())
    if len(values) > 1:
        listed = " and ".join(f"{name}={value!r}" for name, value in found.items())
        raise ConflictingSettingsError(
            f"{listed} disagree: they are two names of one setting. Unset one of them, or give both the same value."
        )
    return values.pop() if values else None


def mode_from_env(env: Mapping[str, str] | None = None) -> Mode | None:
    """The mode named by LLAMA_STACK_TEST_INFERENCE_MODE or OGX_TEST_INFERENCE_MODE, or None."""
    value = env_setting(MODE_ENVS, env)
    return Mode.parse(value) if value else None


def recording_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The folder named by LLAMA_STACK_TEST_RECORDING_DIR or OGX_TEST_RECORDING_DIR, or None."""
    from pathlib import Path

    value = env_setting(RECORDING_DIR_ENVS, env)
    return Path(value) if value else None
