"""``api-recorder run -- COMMAND``: record or replay inside a command whose Python skips ``.pth`` files.

The ``api_recorder.pth`` hook switches recording on in every interpreter that reads site-packages,
and stays the default. Some installs are never read that way: ``pip install --target DIR`` put on
``PYTHONPATH``, zipapps, pex files, some containers. For those, the command runs with a bootstrap
folder first on ``PYTHONPATH``; Python imports the ``sitecustomize.py`` in it at start-up, which
activates api-recorder just as the ``.pth`` hook does and then runs the user's own
``sitecustomize``, if there is one. This is the route ``ddtrace-run`` and
``opentelemetry-instrument`` take.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from .errors import ApiRecorderError
from .modes import MODE_ENV, MODE_ENVS, RECORDING_DIR_ENVS, Mode, mode_from_env, recording_dir_from_env

COMMAND_NOT_FOUND = 127  # what a shell answers, so scripts and CI read it the same way
COMMAND_NOT_EXECUTABLE = 126
USAGE = "api-recorder run [--mode MODE] [--recording-dir DIR] -- COMMAND [ARGS...]"


class LaunchError(ApiRecorderError):
    """The command could not be started; ``exit_code`` is what the launcher should exit with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def bootstrap_dir() -> Path:
    """The folder holding api-recorder's ``sitecustomize.py``; not a package, only a PYTHONPATH entry."""
    return Path(__file__).resolve().parent / "bootstrap"


def prepend_path(entry: str, existing: str | None) -> str:
    """``entry`` first, then the existing entries in their order: the user's own path still counts.

    An earlier copy of ``entry`` (a nested ``api-recorder run``) is dropped rather than repeated.
    """
    kept = [part for part in (existing or "").split(os.pathsep) if part and part != entry]
    return os.pathsep.join([entry, *kept])


def set_setting(env: dict[str, str], names: tuple[str, ...], value: str) -> None:
    """Set a setting under its first name, and under every other name already there (OGX's), so
    the flag wins rather than disagreeing with an inherited alias."""
    env[names[0]] = value
    for name in names[1:]:
        if name in env:
            env[name] = value


def launch_environment(
    env: Mapping[str, str],
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """The environment the command runs with: ``env`` plus the bootstrap folder and the flags.

    ``mode`` and ``recording_dir`` override the inherited variables (aliases included, so the flag
    wins whichever name the hook reads first); without them ``env`` is used as is. A run with no
    mode at all is refused: it would call the real APIs unrecorded, which is never what
    ``api-recorder run`` was typed for. ``recording_dir`` is made absolute here, so it means the
    folder the launcher was started in even if the command changes directory.
    """
    launched = dict(env)
    if mode is not None:
        set_setting(launched, MODE_ENVS, Mode.parse(mode).value)
    if recording_dir is not None:
        set_setting(launched, RECORDING_DIR_ENVS, os.path.abspath(os.fspath(recording_dir)))
    # a typo or two disagreeing names fail here, before the command runs, not as a warning inside it
    if mode_from_env(launched) is None:
        raise LaunchError(
            f"No recording mode: pass --mode (record, replay or record-if-missing) or set {MODE_ENV}. Usage: {USAGE}"
        )
    recording_dir_from_env(launched)
    launched["PYTHONPATH"] = prepend_path(str(bootstrap_dir()), launched.get("PYTHONPATH"))
    return launched


def run(
    command: Sequence[str],
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> NoReturn:
    """Run ``command`` recorded or replayed, and exit with its exit status.

    On POSIX the launcher becomes the command (``execvpe``): signals reach it directly and its
    exit code is the launcher's. Elsewhere it runs as a child and its exit code is passed on.
    Raises LaunchError when there is nothing to run, no mode, or the command cannot be started.
    """
    if not command:
        raise LaunchError(f"No command to run. Usage: {USAGE}")
    launched = launch_environment(os.environ if env is None else env, mode, recording_dir)
    if os.name != "posix":
        sys.exit(run_as_child(command, launched))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], list(command), launched)
    except OSError as exc:
        raise start_failure(command[0], exc) from exc


def run_or_exit(
    command: Sequence[str],
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
) -> NoReturn:
    """``run()`` for the command line: a failure to start is one line on stderr and a shell's exit code."""
    try:
        run(command, mode, recording_dir)
    except ApiRecorderError as exc:  # no command, no mode, a bad mode, disagreeing variables
        sys.stderr.write(f"api-recorder run: {exc}\n")
        sys.exit(exc.exit_code if isinstance(exc, LaunchError) else 2)


def run_as_child(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Where exec is not the process model (Windows): wait for the child and return its code."""
    try:
        return subprocess.call(list(command), env=dict(env))
    except OSError as exc:
        raise start_failure(command[0], exc) from exc
    except KeyboardInterrupt:  # the child got the Ctrl-C too and decides for itself
        return 130


def start_failure(name: str, exc: OSError) -> LaunchError:
    """The error for a command that could not start, with a shell's exit code (127 or 126)."""
    if isinstance(exc, FileNotFoundError):
        return LaunchError(
            f"Command not found: {name!r}. Check the spelling, or that it is on PATH in this environment.",
            COMMAND_NOT_FOUND,
        )
    if isinstance(exc, PermissionError):
        return LaunchError(f"Command not executable: {name!r} ({exc.strerror}).", COMMAND_NOT_EXECUTABLE)
    return LaunchError(f"Could not start {name!r}: {exc}", COMMAND_NOT_EXECUTABLE)


__all__ = ["LaunchError", "bootstrap_dir", "launch_environment", "run", "run_or_exit"]
