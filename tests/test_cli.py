"""The api-recorder command: list, show, verify, stats, normalize, prune, diff."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, SAMPLE, SEED, read_json

pytest.importorskip("typer")
from typer.testing import CliRunner

import api_recorder
from api_recorder.cli import app

runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture
def recorded(workdir, fake_openai):
    """Two recordings of a test: a chat and a stream."""
    client = fake_openai.client()
    with api_recorder.recording("record"), api_recorder.test_context("tests/c/test_cli.py::test_one"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
        list(
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=4
            )
        )
    return workdir / "tests" / "c" / "recordings"


def test_verify_passes_on_llama_stacks_sample_skipping_types_not_installed():
    result = invoke("verify", SAMPLE)
    assert result.exit_code == 0, result.output
    assert "65 ok, 7 skipped (types not installed), 0 failed" in result.output  # ollama's load too
    assert result.output.count("skipped ") >= 7 and "ogx_api" in result.output


def test_verify_fails_listing_each_bad_file_and_why(tmp_path):
    folder = tmp_path / "recordings"  # a truncated file is a failed recording only where recordings live
    folder.mkdir()
    shutil.copy(SEED, folder / "good.json")
    (folder / "truncated.json").write_bytes(SEED.read_bytes()[:500])
    (folder / "evil.json").write_text(
        json.dumps(
            {"request": {}, "response": {"body": {"__type__": "os.system", "__data__": {}}, "is_streaming": False}}
        )
    )
    result = invoke("verify", tmp_path)
    assert result.exit_code == 1
    assert "1 ok, 0 skipped (types not installed), 2 failed" in result.output
    assert "truncated.json" in result.output and "not a readable recording" in result.output
    assert "evil.json" in result.output and "'os.system' is not allowed" in result.output


def test_list_shows_file_test_endpoint_model_streamed_size(recorded):
    result = invoke("list", recorded)
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if "tests/c/test_cli.py::test_one" in line]
    assert len(rows) == 2
    assert all("/v1/chat/completions" in row and "gpt-4o" in row for row in rows)
    assert sorted(("yes" in row.split("gpt-4o")[1]) for row in rows) == [False, True]


def test_show_joins_a_stream_into_text():
    result = invoke("show", SEED)
    assert result.exit_code == 0
    assert "(36 chunks)" in result.output
    assert "128 experts" in result.output.replace("\n", " ") or "128" in result.output
    assert '"model": "gpt-4o"' in result.output


def test_stats_counts_by_endpoint_model_and_test_file(recorded):
    result = invoke("stats", recorded)
    assert result.exit_code == 0
    assert (
        any(
            line.split("│")[1:3] == [" /v1/chat/completions ", " 2          "]
            for line in result.output.splitlines()
            if "│" in line
        )
        or "/v1/chat/completions │ 2" in result.output
    )
    assert "tests/c/test_cli.py" in result.output


def test_normalize_rewrites_into_canonical_form_idempotently(tmp_path):
    target = tmp_path / "recordings"
    target.mkdir()
    source = next(SAMPLE.glob("inference/recordings/c03bc36f*.json"))  # no id mapping: not canonical
    copy = target / source.name
    shutil.copy(source, copy)
    before = api_recorder.load_recording(copy).response.body

    assert invoke("normalize", target, "--check").exit_code == 1
    assert copy.read_bytes() == source.read_bytes()  # --check changed nothing
    result = invoke("normalize", target)
    assert result.exit_code == 0 and "1 file(s) rewrote" in result.output
    document = read_json(copy)
    assert list(document) == ["test_id", "request", "response", "id_normalization_mapping"]
    assert {chunk["__data__"]["id"] for chunk in document["response"]["body"]} == {f"rec-{copy.stem[:12]}"}
    assert document["id_normalization_mapping"] == {}
    assert copy.read_text().endswith("}\n")
    after = api_recorder.load_recording(copy).response.body
    assert [c.choices[0].text for c in after] == [c.choices[0].text for c in before]
    assert len(after) == 51
    again = invoke("normalize", target, "--check")
    assert again.exit_code == 0 and "every recording is in canonical form" in again.output


def test_our_recordings_are_already_canonical(recorded):
    assert invoke("normalize", recorded, "--check").exit_code == 0


def test_prune_deletes_what_a_report_lists_inside_the_folder(recorded, tmp_path):
    files = sorted(recorded.glob("*.json"))
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"unused": [str(files[0]), str(outside)]}))
    result = invoke("prune", recorded, "--unused-from", report)
    assert result.exit_code == 0 and "1 unused recording(s) deleted" in result.output
    assert not files[0].exists() and files[1].exists() and outside.exists()


def test_diff_shows_request_and_response_differences(recorded, tmp_path):
    first = sorted(recorded.glob("*.json"))[0]
    document = read_json(first)
    document["request"]["body"]["temperature"] = 0.9
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document))
    result = invoke("diff", first, changed)
    assert result.exit_code == 1
    assert re.search(r'^\+\s+"temperature": 0.9', result.output, re.MULTILINE)
    assert invoke("diff", first, first).exit_code == 0


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "api_recorder", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("list", "show", "verify", "stats", "normalize", "prune", "diff"):
        assert command in result.stdout


def _committed(url_part: str, streamed: bool):
    """The example recording (recordings/) whose request URL holds ``url_part``."""
    for path in sorted((REPO / "recordings").glob("*.json")):
        document = read_json(path)
        if url_part in document["request"].get("url", "") and document["response"]["is_streaming"] is streamed:
            return path
    raise AssertionError(f"no committed recording of {url_part}")


def test_show_joins_an_anthropic_event_stream_into_text():
    result = invoke("show", _committed("/v1/messages", streamed=True))
    assert result.exit_code == 0, result.output
    assert "(17 events)" in result.output
    assert "echo: echo: Plan a day trip to Lisbon lima fjord india victor" in result.output


def test_show_renders_an_anthropic_tool_use():
    result = invoke("show", _committed("/v1/messages", streamed=False))
    assert result.exit_code == 0, result.output
    assert "[tool use] get_weather({'city': 'What is the weather in Lisbon?'})" in result.output


def test_show_renders_gemini_answers_and_joins_a_vertex_stream(tmp_path):
    result = invoke("show", _committed("gemini:///generate_content", streamed=False))
    assert result.exit_code == 0, result.output
    assert "echo: Plan a day trip to Lisbon lima fjord" in result.output
    (streamed,) = [
        path
        for path in (SAMPLE / "responses" / "recordings").glob("*.json")
        if read_json(path)["request"].get("url") == "vertexai:///generate_content_stream"
        and "geography" in json.dumps(read_json(path)["request"]["body"])
    ]
    result = invoke("show", streamed)
    assert result.exit_code == 0, result.output
    chunks = read_json(streamed)["response"]["body"]
    text = "".join(part.get("text", "") for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"])
    assert f"({len(chunks)} chunks)" in result.output
    assert text.strip() and text.strip()[:40] in result.output


def test_show_renders_raw_http_answers_status_and_lines():
    messages = next((SAMPLE / "messages" / "recordings").glob("*.json"))
    result = invoke("show", messages)
    assert result.exit_code == 0, result.output
    lines = read_json(messages)["response"]["body"]
    assert f"status 200, {len(lines)} lines" in result.output
    assert "event: message_start" in result.output
    (refused,) = [
        path
        for path in (SAMPLE / "interactions" / "recordings").glob("*.json")
        if read_json(path)["response"].get("status") == 400
    ]
    result = invoke("show", refused)
    assert result.exit_code == 0, result.output
    assert "status 400" in result.output and "Missing key 'type' in input 'tools'." in result.output
