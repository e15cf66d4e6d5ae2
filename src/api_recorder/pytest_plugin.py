"""The pytest plugin (entry point ``pytest11``): flags, the marker, and one test id per test.

It stays inert, importing no SDK, unless a mode is given by ``--inference-mode``, by
``LLAMA_STACK_TEST_INFERENCE_MODE`` or by a test's ``@pytest.mark.api_recording(mode=...)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .context import TEST_ID_ENV
from .modes import MODE_ENV, RECORDING_DIR_ENV, Mode
from .network import network_blocked
from .recorder import RECORDER


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("api-recorder", "record and replay OpenAI and tool calls")
    group.addoption(
        "--inference-mode",
        choices=[mode.value for mode in Mode],
        default=None,
        help=f"live, record, replay or record-if-missing (overrides {MODE_ENV}).",
    )
    group.addoption(
        "--block-network",
        action="store_true",
        default=False,
        help="Refuse every socket to a non-loopback address during tests.",
    )
    group.addoption(
        "--recording-dir",
        default=None,
        help=f"Where calls made outside a test's folder are recorded (overrides {RECORDING_DIR_ENV}).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "api_recording(mode=None, recording_dir=None): record or replay this test's API calls in "
        "the given mode and folder.",
    )
    mode = _session_mode(config)
    if mode is not None:
        RECORDER.enable(mode, _recording_dir(config), root=config.rootpath)
        config._api_recorder_enabled = True  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_api_recorder_enabled", False):
        RECORDER.disable()


def _session_mode(config: pytest.Config) -> Mode | None:
    flag = config.getoption("--inference-mode", default=None)
    value = flag or os.environ.get(MODE_ENV, "").strip()
    return Mode.parse(value) if value else None


def _recording_dir(config: pytest.Config) -> Path | None:
    flag = config.getoption("--recording-dir", default=None)
    value = flag or os.environ.get(RECORDING_DIR_ENV, "").strip()
    return Path(value) if value else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    """Attribute the test's calls (fixtures included) to its node id; apply its marker."""
    if item.config.getoption("--block-network", default=False):
        with network_blocked():
            return (yield from _run_test(item))
    return (yield from _run_test(item))


def _run_test(item: pytest.Item) -> Iterator[Any]:
    marker = item.get_closest_marker("api_recording")
    if marker is None and not RECORDER.enabled:
        return (yield)
    with RECORDER.test_ids.scope(item.nodeid), RECORDER.state_saved(), _exported_test_id(item.nodeid):
        if marker is not None:
            _apply_marker(item.config, marker)
        return (yield)


@contextmanager
def _exported_test_id(test_id: str) -> Iterator[None]:
    """Subprocesses the test starts (auto-activated by the .pth hook) inherit its test id."""
    previous = os.environ.get(TEST_ID_ENV)
    os.environ[TEST_ID_ENV] = test_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TEST_ID_ENV, None)
        else:
            os.environ[TEST_ID_ENV] = previous


def _apply_marker(config: pytest.Config, marker: pytest.Mark) -> None:
    mode = marker.kwargs.get("mode", marker.args[0] if marker.args else None)
    directory = marker.kwargs.get("recording_dir")
    if mode is None:
        mode = _session_mode(config) or Mode.REPLAY
    RECORDER.enable(mode, directory or _recording_dir(config), root=config.rootpath)
