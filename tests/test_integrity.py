"""Data integrity: never half an answer, never a silent failure, never a stray or private file.

Interruptions are real: a stalled server (the fake holds a stream after a few events until the
test releases it), a real SIGALRM turned into KeyboardInterrupt while the SDK waits on the
socket, an asyncio ``wait_for`` timeout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
import time

import pytest

import api_recorder
from api_recorder import storage
from api_recorder.recorder import RECORDER
from helpers import read_json, recordings_in

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "Tell me a long story"}]


def stream(client, **extra):
    return client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, **extra)


@pytest.fixture
def held(fake_openai):
    """The next stream stalls after two events; a safety net releases it if the code under test waits."""
    fake_openai.hold_stream(2)
    released_late = threading.Event()

    def release() -> None:
        released_late.set()
        fake_openai.release_streams()

    net = threading.Timer(20, release)
    net.start()
    yield released_late
    net.cancel()
    fake_openai.release_streams()


def test_ctrl_c_while_the_sdk_waits_for_a_chunk_records_nothing_and_stops_at_once(workdir, fake_openai, held):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with api_recorder.recording("record"):
            live = stream(fake_openai.client())
            first = [next(live), next(live)]
            signal.setitimer(signal.ITIMER_REAL, 0.3)  # fires while the SDK is blocked on the socket
            with pytest.raises(KeyboardInterrupt):
                next(live)
            live.close()  # must not read "the rest" (there is none left in the SDK's generator)
            del live
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert len(first) == 2
    assert not held.is_set()  # closing did not wait for the stalled server
    assert recordings_in(workdir) == []


def test_ctrl_c_in_the_callers_loop_inside_with_records_nothing(workdir, fake_openai, held):
    with api_recorder.recording("record"), pytest.raises(KeyboardInterrupt):
        with stream(fake_openai.client()) as live:
            next(live)
            raise KeyboardInterrupt
    assert not held.is_set()
    assert recordings_in(workdir) == []


def test_a_wait_for_timeout_records_nothing(workdir, fake_openai, held):
    async def consume():
        live = await stream(fake_openai.async_client())
        await live.__anext__()
        await live.__anext__()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(live.__anext__(), timeout=0.3)
        await live.close()

    with api_recorder.recording("record"):
        asyncio.run(consume())
    assert not held.is_set()
    assert recordings_in(workdir) == []


def test_an_error_in_the_callers_code_still_records_the_whole_stream(workdir, fake_openai):
    """Not an interruption: the stream is read to its end on exit and recorded whole, as before."""
    with api_recorder.recording("record"), pytest.raises(ValueError):
        with stream(fake_openai.client()) as live:
            next(live)
            raise ValueError("the caller's own bug")
    (path,) = recordings_in(workdir)
    chunks = read_json(path)["response"]["body"]
    assert chunks[-1]["__data__"]["choices"][0]["finish_reason"] == "stop"


# -- write failures -------------------------------------------------------------------------


def test_a_recording_that_cannot_be_written_warns_naming_the_file_and_the_call_still_answers(workdir, fake_openai):
    (workdir / "recordings").write_text("a file where the folder should be")
    client = fake_openai.client()
    with api_recorder.recording("record"), pytest.warns(RuntimeWarning) as caught:
        answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        chunks = list(stream(client))
    assert answer.choices[0].message.content and chunks
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 2
    assert all(str(workdir / "recordings") in message and "is not recorded" in message for message in messages)


REPORTED_SUITE = """
import os, openai

def test_unwritable():
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).id
"""


def test_the_pytest_report_lists_what_was_not_recorded(pytester, fake_openai, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    pytester.makepyfile(test_unwritable=REPORTED_SUITE)
    (pytester.path / "recordings").write_text("not a folder")
    result = pytester.runpytest_subprocess("--inference-mode=record", "-p", "no:cacheprovider", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*0 replayed, 0 recorded, 0 missing, 1 not recorded*",
            "*not recorded (the file could not be written): POST /v1/chat/completions in test_unwritable.py*",
        ]
    )


# -- temporary files, fsync, file mode --------------------------------------------------------


def test_stale_temporary_files_are_removed_on_the_next_write_and_fresh_ones_kept(workdir, fake_openai):
    folder = workdir / "recs"
    folder.mkdir()
    stale = folder / ".api-recorder-abc.json.k1ll3d.tmp"
    fresh = folder / ".api-recorder-def.json.wr1t1ng.tmp"
    stale.write_bytes(b"{half")
    fresh.write_bytes(b"{half")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    with api_recorder.recording("record", folder):
        fake_openai.client().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert not stale.exists() and fresh.exists()
    assert [path.suffix for path in recordings_in(folder)] == [".json"]  # temporaries are never read
    assert api_recorder.load_recording(recordings_in(folder)[0]).response.body.choices


def test_prune_removes_stale_temporary_files(workdir, tmp_path):
    from typer.testing import CliRunner

    from api_recorder.cli import app

    folder = workdir / "tests" / "recordings"
    folder.mkdir(parents=True)
    stale = folder / ".api-recorder-x.json.123.tmp"
    stale.write_bytes(b"")
    os.utime(stale, (time.time() - 3600,) * 2)
    report = tmp_path / "old-report.json"
    report.write_text('{"unused": []}')
    result = CliRunner().invoke(app, ["prune", str(workdir), "--unused-from", str(report)])
    assert result.exit_code == 0, result.output
    assert "a stale temporary file" in result.output and not stale.exists()


def test_every_write_is_flushed_to_the_disk_before_the_rename(workdir, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    storage.write_atomically(workdir / "r" / "a.json", b"{}\n")
    assert len(synced) == 1
    assert (workdir / "r" / "a.json").read_bytes() == b"{}\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_an_ordinary_write_gets_under_the_umask(workdir, monkeypatch, umask, mode):
    monkeypatch.setattr(storage, "_FILE_MODE", None)  # read anew under this umask
    previous = os.umask(umask)
    try:
        storage.write_atomically(workdir / "a.json", b"{}\n")
        with open(workdir / "plain.json", "w") as ordinary:
            ordinary.write("{}\n")
    finally:
        os.umask(previous)
        storage._FILE_MODE = None
    assert stat.S_IMODE((workdir / "a.json").stat().st_mode) == mode
    assert stat.S_IMODE((workdir / "plain.json").stat().st_mode) == mode


# -- overlapping tests ---------------------------------------------------------------------------


def test_a_finished_tests_id_is_never_current_again():
    """Contexts that end out of order: A starts, B starts, A ends, B ends. Then nobody is current."""
    ids = RECORDER.test_ids
    steps = [threading.Event() for _ in range(3)]
    seen: dict[str, object] = {}

    def test_a() -> None:
        with api_recorder.test_context("tests/t.py::test_a"):
            steps[0].set()
            steps[1].wait(10)
        seen["after A ended"] = ids.process_wide()
        steps[2].set()

    thread = threading.Thread(target=test_a)
    thread.start()
    steps[0].wait(10)
    with api_recorder.test_context("tests/t.py::test_b"):
        steps[1].set()
        steps[2].wait(10)
        seen["B, still running"] = ids.process_wide()
    thread.join(10)
    assert seen == {"after A ended": "tests/t.py::test_b", "B, still running": "tests/t.py::test_b"}
    assert ids.process_wide() is None  # not test_a, which B saw as current when it started


WRITER = """
import sys
from pathlib import Path
from api_recorder.storage import write_atomically

folder, payload = Path(sys.argv[1]), b'{"request": {}, "response": {"body": "' + b"x" * 2_000_000 + b'"}}\\n'
for index in range(1000):
    write_atomically(folder / f"{index % 5}.json", payload)
    print(index, flush=True)
"""


def test_kill_9_during_writes_never_leaves_a_partial_recording(tmp_path):
    """A writer killed at random points: every file under a real name is whole."""
    import subprocess
    import sys

    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3):  # killed in the middle of its fourth write or so
            writer.stdout.readline()
        writer.kill()
        writer.wait(30)
        writer.stdout.close()
    for path in tmp_path.glob("*.json"):
        assert read_json(path)["response"]["body"] == "x" * 2_000_000, path
    assert all(path.name.startswith(".api-recorder-") for path in tmp_path.iterdir() if path.suffix != ".json")
