"""``api-recorder verify`` on a project folder: recordings are checked, other JSON is left alone."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from helpers import SAMPLE, SEED

pytest.importorskip("typer")
from typer.testing import CliRunner

from api_recorder.cli import app, find_recordings

runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})
INFERENCE = SAMPLE / "inference" / "recordings"
OK_SAMPLES = ["10d6c5e40b60", "f8d0f5a82750", "models-4a729"]  # openai types: they load
SKIPPED_SAMPLE = "e39dece6d1db"  # llama-stack's own types (ogx_api): never installed here
TRUNCATED_SAMPLE = "f0f863b7a352"
BAD_REQUEST = {"endpoint": "/v1/chat/completions", "body": {"model": "gpt-4o"}}


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def sample(prefix):
    (path,) = SAMPLE.glob(f"*/recordings/{prefix}*.json")
    return path


def write_json(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture
def project(tmp_path):
    """A project tree: recordings next to the JSON every project has (package.json, test data, CI)."""
    recordings = tmp_path / "tests" / "inference" / "recordings"
    recordings.mkdir(parents=True)
    for prefix in [*OK_SAMPLES, SKIPPED_SAMPLE]:
        shutil.copy(sample(prefix), recordings)
    truncated = sample(TRUNCATED_SAMPLE)
    (recordings / truncated.name).write_bytes(truncated.read_bytes()[:300])
    write_json(recordings / "no-response.json", {"test_id": "tests/inference/test_x.py::t", "request": BAD_REQUEST})
    write_json(recordings / "no-body.json", {"request": BAD_REQUEST, "response": {"is_streaming": False}})
    shutil.copy(SEED, tmp_path / "tests" / "seed_recording.json")  # a recording outside recordings/
    write_json(
        tmp_path / "tests" / "evil.json",  # shaped like a recording: checked, and fails
        {"request": {}, "response": {"body": {"__type__": "os.system", "__data__": {}}, "is_streaming": False}},
    )
    (tmp_path / "tests" / ("ab" * 32 + ".json")).write_bytes(SEED.read_bytes()[:200])  # named as recordings are
    write_json(tmp_path / "package.json", {"name": "shop", "version": "1.0.0", "scripts": {"test": "pytest"}})
    write_json(tmp_path / "tests" / "data" / "cases.json", [{"input": "2+2", "expected": "4"}])
    write_json(tmp_path / "tests" / "data" / "case.json", {"question": "capital of France?", "answer": "Paris"})
    write_json(tmp_path / "ci" / "matrix.json", {"include": [{"python": "3.11"}, {"python": "3.12"}]})
    (tmp_path / "tsconfig.json").write_text('{"compilerOptions": {')  # broken, and none of our business
    return tmp_path


def failures(output):
    """{file name: why} from verify's table: rows are '│ path │ why │', long ones go on over more lines."""
    rows: dict[str, str] = {}
    name = ""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) != 2 or cells == ["file", "why it fails"]:
            continue
        if cells[0]:
            name = cells[0].rsplit("/", 1)[-1]
            rows[name] = cells[1]
        elif name:
            rows[name] += " " + cells[1]
    return rows


def test_verify_checks_recordings_and_ignores_other_json(project, monkeypatch):
    monkeypatch.chdir(project)  # short paths: the table keeps each on one line
    result = invoke("verify", ".")
    assert result.exit_code == 1, result.output
    assert "4 ok, 1 skipped (types not installed), 5 failed, 5 other JSON files ignored" in result.output
    why = failures(result.output)
    assert sorted(why) == sorted(
        [
            sample(TRUNCATED_SAMPLE).name,
            "no-response.json",
            "no-body.json",
            "evil.json",
            "ab" * 32 + ".json",
        ]
    )
    assert why[sample(TRUNCATED_SAMPLE).name].startswith("not a readable recording (")
    assert "The file is truncated or not JSON" in why[sample(TRUNCATED_SAMPLE).name]
    assert "The file is truncated or not JSON" in why["ab" * 32 + ".json"]
    assert why["no-response.json"].startswith("not a recording: no 'response' object. ")
    assert "record it again" in why["no-response.json"]
    assert why["no-body.json"].startswith("not a recording: 'response' has no 'body'. ")
    assert "'os.system' is not allowed" in why["evil.json"]
    for other in ("package.json", "cases.json", "case.json", "matrix.json", "tsconfig.json"):
        assert other not in result.output


def test_valid_json_of_the_wrong_shape_in_recordings_says_what_is_missing(tmp_path):
    folder = tmp_path / "recordings"
    write_json(folder / "a-list.json", [1, 2])
    write_json(folder / "response-list.json", {"request": BAD_REQUEST, "response": []})
    write_json(folder / "flag.json", {"request": BAD_REQUEST, "response": {"body": {}, "is_streaming": "yes"}})
    result = invoke("verify", folder)
    assert result.exit_code == 1
    assert "0 ok, 0 skipped (types not installed), 3 failed" in result.output
    assert "ignored" not in result.output
    why = failures(result.output)
    assert why["a-list.json"].startswith("not a recording: expected 'object', got 'array' for the whole file. ")
    assert why["response-list.json"].startswith("not a recording: expected 'object', got 'array' at 'response'. ")
    assert why["flag.json"].startswith("not a recording: expected 'bool', got 'str' at 'response.is_streaming'. ")
    assert "truncated" not in result.output


def test_a_tree_of_good_recordings_and_other_json_passes(project):
    for name in ("no-response.json", "no-body.json", sample(TRUNCATED_SAMPLE).name):
        (project / "tests" / "inference" / "recordings" / name).unlink()
    (project / "tests" / "evil.json").unlink()
    (project / "tests" / ("ab" * 32 + ".json")).unlink()
    result = invoke("verify", project)
    assert result.exit_code == 0, result.output
    summary = result.output.splitlines()[-1]
    assert summary == "4 ok, 1 skipped (types not installed), 0 failed, 5 other JSON files ignored"


def test_a_file_named_on_the_command_line_is_checked_whatever_it_holds(project):
    result = invoke("verify", project / "package.json")
    assert result.exit_code == 1
    assert "0 ok, 0 skipped (types not installed), 1 failed" in result.output
    assert "no 'request' object" in result.output


def test_list_stats_normalize_and_prune_leave_other_json_alone(project):
    untouched = {path: path.read_bytes() for path in project.rglob("*.json") if "recordings" not in path.parts}
    found = {path.name for path in find_recordings(project)}
    assert "package.json" not in found and "cases.json" not in found and "seed_recording.json" in found

    listed = invoke("list", project)
    assert listed.exit_code == 0 and "package.json" not in listed.output and "matrix.json" not in listed.output
    stats = invoke("stats", project)
    assert stats.exit_code == 0 and "package.json" not in stats.output
    normalized = invoke("normalize", project)
    assert normalized.exit_code == 0, normalized.output
    assert not re.search(r"rewrote .*(package|cases|case|matrix|tsconfig)\.json", normalized.output)

    report = write_json(project / "old-report.json", {"unused": [str(project / "package.json")]})
    pruned = invoke("prune", project, "--unused-from", report)
    assert pruned.exit_code == 0 and "0 unused recording(s) deleted" in pruned.output
    for path, content in untouched.items():
        if path.name not in ("seed_recording.json", "evil.json"):  # recordings: normalize may rewrite them
            assert path.read_bytes() == content, path
