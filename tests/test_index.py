"""The per-folder index behind model lists and explained misses: always as fresh as the folder.

A folder's listing is kept while the folder's mtime stays the same, and not trusted while that
mtime is within the racy window (a file added in the same timestamp tick leaves it unchanged);
each file's test id is kept by its name, mtime and size. These tests change folders the way
another process would (a subprocess, or files written behind the index's back), then check that
hits, model lists and miss explanations see the folder as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import api_recorder
from api_recorder import storage
from api_recorder.storage import FolderIndex, RecordingStore, folder_index

openai = pytest.importorskip("openai")

TEST_ID = "tests/n/test_index.py::test_one"
OTHER_TEST = "tests/n/test_index.py::test_two"


def ask(client, content="What is an index?", **extra):
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(model="gpt-4o", messages=messages, **extra)


def age(folder: Path, seconds: float = 60.0) -> None:
    """Make the folder look untouched for a while: its listing is then trusted and kept."""
    when = time.time() - seconds
    os.utime(folder, (when, when))


def recording(test_id: str | None, content: str = "hello") -> bytes:
    document = {
        "test_id": test_id,
        "request": {
            "method": "POST",
            "url": "http://x/v1/chat/completions",
            "endpoint": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": content}]},
        },
        "response": {"body": None, "is_streaming": False},
        "id_normalization_mapping": {},
    }
    return storage.encode_recording(document)


def write_from_another_process(path: Path, data: bytes) -> None:
    code = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code, str(path)], input=data, check=True)


# -- the index itself ----------------------------------------------------------------------------


def test_a_file_written_by_another_process_after_the_index_was_built_is_listed(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "a.json").write_bytes(recording(TEST_ID))
    age(folder)
    index = folder_index(folder)
    assert index.names() == ["a.json"]
    assert index.names_of_test(TEST_ID) == ["a.json"]
    write_from_another_process(folder / "b.json", recording(TEST_ID, "second"))
    assert index.names() == ["a.json", "b.json"]
    assert index.names_of_test(TEST_ID) == ["a.json", "b.json"]


def test_a_listing_made_while_the_folder_was_changing_is_made_again(tmp_path):
    """Same tick: a file added leaves the mtime as it was (forced here); the index still sees it."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "a.json").write_bytes(recording(TEST_ID))
    stamp = folder.stat().st_mtime_ns  # just now: within the racy window
    index = FolderIndex(str(folder))
    assert index.names() == ["a.json"]
    (folder / "b.json").write_bytes(recording(TEST_ID))
    os.utime(folder, ns=(stamp, stamp))
    assert index.names() == ["a.json", "b.json"]


def test_a_trusted_listing_is_kept_while_the_folder_is_unchanged(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "a.json").write_bytes(recording(TEST_ID))
    age(folder)
    index = FolderIndex(str(folder))
    first = index.names()
    assert index.names() is first  # not listed again


def test_a_deleted_file_leaves_the_index(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ("a.json", "b.json"):
        (folder / name).write_bytes(recording(TEST_ID))
    age(folder)
    index = folder_index(folder)
    assert index.names_of_test(TEST_ID) == ["a.json", "b.json"]
    (folder / "a.json").unlink()
    assert index.names() == ["b.json"]
    assert index.names_of_test(TEST_ID) == ["b.json"]


def test_a_file_rewritten_for_another_test_is_read_again(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "a.json").write_bytes(recording(TEST_ID))
    age(folder)
    index = folder_index(folder)
    assert index.names_of_test(TEST_ID) == ["a.json"]
    (folder / "a.json").write_bytes(recording(OTHER_TEST, "a longer question than before"))  # in place
    age(folder)
    assert index.names_of_test(TEST_ID) == []
    assert index.names_of_test(OTHER_TEST) == ["a.json"]


def test_test_ids_are_read_whatever_the_file_looks_like(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "first.json").write_bytes(recording('tests/x.py::t["quoted" \\ id]'))
    late = {"request": {}, "response": {"body": None, "is_streaming": False}, "test_id": TEST_ID}
    (folder / "late.json").write_text(json.dumps(late))  # test id last: the whole file is read
    (folder / "shared.json").write_bytes(recording(None))
    (folder / "broken.json").write_text('{"test_id": ')
    (folder / "not-json.json").write_text("hello")
    (folder / "dir.json").mkdir()  # not a file: never listed
    (folder / "notes.txt").write_text("not a recording")
    index = folder_index(folder)
    assert index.names() == ["broken.json", "first.json", "late.json", "not-json.json", "shared.json"]
    assert index.names_of_test('tests/x.py::t["quoted" \\ id]') == ["first.json"]
    assert index.names_of_test(TEST_ID) == ["late.json"]
    assert index.names_of_test(None) == ["shared.json"]


def test_globs_match_as_path_glob_does(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    names = [
        "models-abc-1.json",
        "models-abc-2.json",
        "models-abcd-1.json",
        "models-ab-1.json",
        "other.json",
        "models-abc-.json",
        "Models-abc-3.json",
    ]
    for name in names:
        (folder / name).write_bytes(b"{}")
    store = RecordingStore(folder, tmp_path)
    for pattern in ("models-abc-*.json", "models-ab*-1.json", "*.json", "models-?bc-1.json", "models-[a]bc-2.json"):
        assert store.glob(pattern, None) == sorted(folder.glob(pattern)), pattern
    assert store.glob("*.txt", None) == []


def test_a_folder_that_is_not_there_has_no_names(tmp_path):
    index = folder_index(tmp_path / "nowhere")
    assert index.names() == [] and index.names_of_test(TEST_ID) == []
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "a.json").write_bytes(recording(TEST_ID))
    assert index.names_of_test(TEST_ID) == ["a.json"]


# -- through the recorder ------------------------------------------------------------------------


def test_a_recording_written_by_another_process_is_replayed(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        ask(client)
    (path,) = (workdir / "tests" / "n" / "recordings").glob("*.json")
    data = path.read_bytes()
    path.unlink()
    age(path.parent)
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingNotFoundError):
            ask(client)
        write_from_another_process(path, data)
        assert ask(client).choices


def test_a_deleted_recording_is_not_served(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        ask(client)
        list(client.models.list())
    folder = workdir / "tests" / "n" / "recordings"
    age(folder)
    age(workdir / "recordings")
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        assert ask(client).choices
        assert client.models.list().data
        for path in [*folder.glob("*.json"), *(workdir / "recordings").glob("*.json")]:
            path.unlink()
        with pytest.raises(api_recorder.RecordingNotFoundError):
            ask(client)
        with pytest.raises(api_recorder.RecordingNotFoundError):
            client.models.list()


def test_a_model_list_written_by_another_process_is_found(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        list(client.models.list())
    (path,) = (workdir / "recordings").glob("models-*.json")
    data = path.read_bytes()
    path.unlink()
    age(path.parent)
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingNotFoundError):
            client.models.list()
        write_from_another_process(path, data)
        assert [model.id for model in client.models.list()]


def test_a_model_list_that_vanished_behind_the_index_is_not_served(workdir, fake_openai):
    """A file gone while the index still lists it (the folder's mtime put back) counts as absent."""
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        list(client.models.list())
    folder = workdir / "recordings"
    age(folder)
    stamp = folder.stat().st_mtime_ns
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        assert client.models.list().data
        for path in folder.glob("models-*.json"):
            path.unlink()
        os.utime(folder, ns=(stamp, stamp))
        with pytest.raises(api_recorder.RecordingNotFoundError):
            client.models.list()


def test_the_miss_message_names_the_nearest_recording(workdir, fake_openai):
    client = fake_openai.client()
    with api_recorder.recording("record"):
        with api_recorder.test_context(TEST_ID):
            for content in ("What is an index?", "What is a folder?", "What is a file?"):
                ask(client, content=content, temperature=0.2)
        with api_recorder.test_context(OTHER_TEST):  # same folder, another test: never the nearest
            ask(client, content="What is an index?", temperature=0.3)
    folder = workdir / "tests" / "n" / "recordings"
    age(folder)
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingNotFoundError) as changed:
            ask(client, content="What is an index?", temperature=0.3)
    message = str(changed.value)
    assert "This test has 3 recording(s) of this endpoint, but none matches" in message
    assert '-  "temperature": 0.2' in message and '+  "temperature": 0.3' in message
    nearest = [path for path in folder.glob("*.json") if b"What is an index?" in path.read_bytes()]
    nearest = [path for path in nearest if json.loads(path.read_bytes())["test_id"] == TEST_ID]
    assert f"The nearest is {nearest[0]};" in message
    # a recording of this test that another process writes later is taken into account
    document = json.loads(nearest[0].read_bytes())
    document["request"]["body"]["temperature"] = 0.3  # the very request asked, under another name
    write_from_another_process(folder / ("f" * 64 + ".json"), json.dumps(document, indent=2).encode())
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingNotFoundError) as again:
            ask(client, content="What is an index?", temperature=0.3)
    assert "This test has 4 recording(s) of this endpoint" in str(again.value)
    assert f"The nearest is {folder / ('f' * 64 + '.json')}" in str(again.value)
    with api_recorder.recording("replay"), api_recorder.test_context("tests/n/test_index.py::test_new"):
        with pytest.raises(api_recorder.RecordingNotFoundError) as new:
            ask(client)
    assert "There is no recording for this test at all" in str(new.value)
    (folder / ("f" * 64 + ".json")).unlink()  # never replayed: the run's report would name it


def test_a_recording_that_cannot_be_read_is_an_error_not_a_miss(workdir, fake_openai):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context(TEST_ID):
        ask(client)
    (path,) = (workdir / "tests" / "n" / "recordings").glob("*.json")
    path.chmod(0)
    with api_recorder.recording("replay"), api_recorder.test_context(TEST_ID):
        with pytest.raises(api_recorder.RecordingFileError, match="cannot be read"):
            ask(client)
