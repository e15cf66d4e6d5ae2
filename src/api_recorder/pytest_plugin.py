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
from .errors import ConflictingSettingsError
from .modes import MODE_ENV, MODE_ENVS, RECORDING_DIR_ENV, RECORDING_DIR_ENVS, Mode, env_setting
from .recorder import RECORDER, CallLog
from .report import RunOutcomes, RunReport, relative_to, write_report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("api-recorder", "record and replay OpenAI and tool calls")
    group.addoption(
        "--inference-mode",
        choices=[mode.value for mode in Mode],
        default=None,
        help=f"live, record, replay or record-if-missing (overrides {MODE_ENV} / OGX_TEST_INFERENCE_MODE).",
    )
    group.addoption(
        "--block-network",
        action="store_true",
        default=False,
        help="Refuse every socket to a non-loopback address during tests.",
    )
    group.addoption(
        "--prune-unused",
        action="store_true",
        default=False,
        help="After a run where every test passed and none was deselected, delete unused recordings.",
    )
    group.addoption(
        "--api-recorder-report",
        default=None,
        metavar="PATH",
        help=(
            "Write the run's recording report (JSON) here: what it collected, ran, passed and used, for "
            "`api-recorder prune --unused-from` (one report per CI shard)."
        ),
    )
    group.addoption(
        "--recording-dir",
        default=None,
        help=(
            f"Where calls made outside a test's folder are recorded "
            f"(overrides {RECORDING_DIR_ENV} / OGX_TEST_RECORDING_DIR)."
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "api_recording(mode=None, recording_dir=None): record or replay this test's API calls in "
        "the given mode and folder.",
    )
    RECORDER.keep_call_log = True
    mode = _session_mode(config)
    if mode is not None:
        RECORDER.enable(mode, _recording_dir(config), root=config.rootpath)
        config._api_recorder_enabled = True  # type: ignore[attr-defined]
    config.pluginmanager.register(RecordingReport(config), "api-recorder-report")


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_api_recorder_enabled", False):
        RECORDER.disable()


def _session_mode(config: pytest.Config) -> Mode | None:
    flag = config.getoption("--inference-mode", default=None)
    value = flag or _env_setting(MODE_ENVS)
    return Mode.parse(value) if value else None


def _recording_dir(config: pytest.Config) -> Path | None:
    flag = config.getoption("--recording-dir", default=None)
    value = flag or _env_setting(RECORDING_DIR_ENVS)
    return Path(value) if value else None


def _env_setting(names: tuple[str, ...]) -> str | None:
    """A setting from the environment; disagreeing names stop the run before any test."""
    try:
        return env_setting(names)
    except ConflictingSettingsError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    """Attribute the test's calls (fixtures included) to its node id; apply its marker."""
    if item.config.getoption("--block-network", default=False):
        from .network import network_blocked  # socket and ipaddress: only for runs that block

        with network_blocked():
            return (yield from _run_test(item))
    return (yield from _run_test(item))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A session, package, module or class fixture belongs to no single test: its calls are
    recorded without a test id, in the recording dir, and found from every test that uses it."""
    if fixturedef.scope == "function" or not RECORDER.enabled:
        return (yield)
    with RECORDER.test_ids.scope(None):
        return (yield)


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


class RecordingReport:
    """The end-of-run summary: calls replayed, recorded, missing; recordings never used.

    It also keeps what ``api-recorder prune --unused-from`` needs to trust a shard's report: the
    tests collected (before deselection), selected, and how each ended. Under pytest-xdist the
    workers collect and deselect, so they send their collection here with their calls; the
    controller sees every test's result itself.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report = RunReport()
        self.outcomes = RunOutcomes()
        self.ran: set[str] = set()
        self.deselected = 0
        self.failed = False
        self.calls_at_start = len(RECORDER.calls)
        self.unused: list[Path] = []
        self.report_written: Path | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Every collected test, before any plugin deselects some (not all of them say so)."""
        self.outcomes.collected.update(item.nodeid for item in items)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)
        self.outcomes.collected.update(item.nodeid for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.outcomes.selected.update(item.nodeid for item in session.items)
        self.outcomes.collected |= self.outcomes.selected

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed = True
        if report.when == "call" and report.passed:  # a test that skipped itself used nothing
            self.ran.add(report.nodeid)
        self.outcomes.record(report.nodeid, report.when, report.outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: add up what each worker sent."""
        data = getattr(node, "workeroutput", {}).get("api_recorder")
        if data:
            self.report.merge(RunReport.from_json(data))
            self.deselected += data.get("deselected", 0)
            self.outcomes.collected.update(data.get("collected", []))
            self.outcomes.selected.update(data.get("selected", []))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        own = RunReport.from_calls(RECORDER.calls[self.calls_at_start :])
        del RECORDER.calls[self.calls_at_start :]  # a session run inside a test (pytester) is not the outer's
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["api_recorder"] = {
                **own.to_json(),
                "deselected": self.deselected,
                "collected": sorted(self.outcomes.collected),
                "selected": sorted(self.outcomes.selected),
            }
            return
        self.report.merge(own)
        self.unused = self.report.unused(self.ran, self.config.rootpath)
        path = self.config.getoption("--api-recorder-report", default=None)
        if path:  # written here, not in the terminal summary: also with -p no:terminal
            self.report_written = Path(path)
            write_report(
                self.report_written,
                self.report,
                self.unused,
                self.outcomes,
                rootdir=self.config.rootpath,
                args=self._args_relative_to_root(),
                exitstatus=int(exitstatus),
                mode=RECORDER.mode.value if getattr(self.config, "_api_recorder_enabled", False) else None,
            )

    def _args_relative_to_root(self) -> list[str]:
        """The paths pytest was given (or its testpaths), relative to the rootdir: where the tests live.

        Prune deletes recordings of a vanished test file only inside them.
        """
        root = self.config.rootpath.resolve()
        base = self.config.invocation_params.dir
        paths = {(base / arg.split("::", 1)[0]).resolve() for arg in self.config.args}
        relative = (relative_to(root, path) for path in paths)
        return sorted(name for name in relative if not Path(name).is_absolute())

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int) -> None:
        report = self.report
        active = report.replayed or report.recorded or report.missing or report.unwritten_calls or report.used
        if not (active or self.report_written):
            return
        write = terminalreporter.write_line
        terminalreporter.section("api-recorder")
        not_recorded = f", {len(report.unwritten_calls)} not recorded" if report.unwritten_calls else ""
        write(f"{report.replayed} replayed, {report.recorded} recorded, {report.missing} missing{not_recorded}")
        for call in report.missing_calls[:20]:
            write(f"  missing: {call}")
        for call in report.unwritten_calls[:20]:
            write(f"  not recorded (the file could not be written): {call}")
        unused = self.unused
        if unused:
            write(f"{len(unused)} recording(s) in the folders this run used were never used:")
            for path in unused[:20]:
                write(f"  {path}")
            if len(unused) > 20:
                write(f"  ... and {len(unused) - 20} more")
        if self.report_written:
            write(f"report written to {self.report_written}")
        if self.config.getoption("--prune-unused", default=False):
            self._prune(unused, exitstatus, write)

    def _prune(self, unused: list[Path], exitstatus: int, write: Any) -> None:
        if exitstatus != 0 or self.failed:
            write("--prune-unused: nothing deleted, because not every test passed.")
            return
        if self.deselected:
            write(f"--prune-unused: nothing deleted, because {self.deselected} test(s) were deselected.")
            return
        for path in unused:
            path.unlink(missing_ok=True)
            write(f"deleted {path}")
        write(f"--prune-unused: deleted {len(unused)} unused recording(s).")


class RecorderView:
    """What the ``api_recorder`` fixture gives a test: the mode, its test id, the calls it made."""

    def __init__(self, test_id: str) -> None:
        self.test_id = test_id
        self._first_call = len(RECORDER.calls)

    @property
    def mode(self) -> Mode:
        return RECORDER.mode if RECORDER.enabled else Mode.LIVE

    @property
    def calls(self) -> list[CallLog]:
        """Covered calls this test made so far, each with its outcome and recording file."""
        return [call for call in RECORDER.calls[self._first_call :] if call.test_id == self.test_id]


@pytest.fixture
def api_recorder(request: pytest.FixtureRequest) -> RecorderView:
    """The recorder as this test sees it: ``.mode``, ``.test_id``, ``.calls``."""
    return RecorderView(request.node.nodeid)
