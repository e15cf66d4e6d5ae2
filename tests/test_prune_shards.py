"""``api-recorder prune --unused-from shard-1.json shard-2.json``: a suite split across CI machines.

Each test here records a small project, runs it as shards (one under pytest-xdist), and prunes
from their reports: only what the shards together prove unused goes, and reports that prove
nothing (a shard missing, failed, overlapping, or on other code) are refused.
"""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import read_json

pytest.importorskip("typer")
pytest.importorskip("openai")
# See test_pytest_plugin: inner in-process runs must find the SDK's resource modules imported.
import openai.resources.chat.completions.completions
import openai.resources.embeddings  # noqa: F401
from typer.testing import CliRunner

from api_recorder.cli import app

runner = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"})

SHOP = """
import os

import openai
import pytest


def client():
    return openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)


def ask(question):
    answer = client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}])
    assert answer.choices[0].message.content


def test_a():
    ask("a?")


def test_b():
    ask("b?")


def test_c():
    ask("c?")


def test_d():
    answer = client().embeddings.create(model="text-embedding-3-small", input="d", dimensions=4)
    assert len(answer.data[0].embedding) == 4


@pytest.mark.skip(reason="upstream is down")
def test_skipped():
    ask("skipped?")
"""
TESTS = ["test_a", "test_b", "test_c", "test_d", "test_skipped"]
FIRST_HALF = ["test_a", "test_b", "test_skipped"]
SECOND_HALF = ["test_c", "test_d"]


def node(name):
    return f"suite/test_shop.py::{name}"


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


class Shop:
    """A recorded project, its stale recordings, and its shards run in replay."""

    def __init__(self, pytester):
        self.pytester = pytester
        self.path = pytester.path
        self.recordings = self.path / "suite" / "recordings"
        self.template = read_json(self.recording_of(node("test_a")))

    def recording_of(self, test_id):
        (path,) = [p for p in self.recordings.glob("*.json") if read_json(p).get("test_id") == test_id]
        return path

    def copy_recording(self, folder, name, test_id):
        """A recording nobody makes any more: test_a's, with another request and test id."""
        document = json.loads(json.dumps(self.template))
        document["test_id"] = test_id
        document["request"]["body"]["temperature"] = 0.123
        target = self.path / folder / "recordings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=2))
        return target

    def shard(self, report, run, *, xdist=False, extra=()):
        """Run the tests in ``run`` (the rest deselected) in replay, writing ``report``."""
        deselect = [f"--deselect={node(name)}" for name in TESTS if name not in run]
        args = ["suite", "--inference-mode=replay", f"--api-recorder-report={report}", "-p", "no:cacheprovider"]
        args += [*deselect, *extra]
        if xdist:
            return self.pytester.runpytest_subprocess("-n", "2", *args)
        return self.pytester.runpytest(*args)

    def files(self):
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("recordings/*.json"))


@pytest.fixture
def shop(pytester, fake_openai, monkeypatch):
    """suite/ recorded, then: a stale recording of test_a, one of a removed test, one of a removed
    test file; kept: a skipped test's, a shared one, and other/'s, whose tests the shards do not run."""
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    monkeypatch.delenv("LLAMA_STACK_TEST_INFERENCE_MODE", raising=False)
    monkeypatch.delenv("LLAMA_STACK_TEST_RECORDING_DIR", raising=False)
    pytester.mkpydir("suite")
    pytester.path.joinpath("suite", "test_shop.py").write_text(SHOP)
    pytester.runpytest("suite", "--inference-mode=record", "-p", "no:cacheprovider").assert_outcomes(
        passed=4, skipped=1
    )
    fake_openai.stop()  # every shard replays offline
    project = Shop(pytester)
    project.stale = [
        project.copy_recording("suite", "stale.json", node("test_a")),
        project.copy_recording("suite", "removed-test.json", node("test_removed")),
        project.copy_recording("suite", "removed-file.json", "suite/test_gone.py::test_x"),
    ]
    project.copy_recording("suite", "skipped.json", node("test_skipped"))
    project.copy_recording("suite", "shared.json", None)
    pytester.mkpydir("other")
    pytester.path.joinpath("other", "test_other.py").write_text("def test_y():\n    pass\n")
    project.copy_recording("other", "not-run.json", "other/test_other.py::test_y")
    project.copy_recording("other", "gone-elsewhere.json", "other/test_gone.py::test_z")
    return project


def test_two_shards_together_prune_exactly_the_stale_recordings(shop, tmp_path_factory):
    shop.shard("shard-1.json", FIRST_HALF).assert_outcomes(passed=2, skipped=1, deselected=2)
    shop.shard("shard-2.json", SECOND_HALF, xdist=True).assert_outcomes(passed=2)

    first, second = read_json(shop.path / "shard-1.json"), read_json(shop.path / "shard-2.json")
    assert first["version"] == second["version"] == 2 and first["args"] == second["args"] == ["suite"]
    assert first["mode"] == second["mode"] == "replay"
    assert first["collected"] == second["collected"] == sorted(map(node, TESTS))  # xdist: the workers' collection
    assert second["selected"] == second["passed"] == sorted(map(node, SECOND_HALF))
    assert first["skipped"] == [node("test_skipped")] and first["green"] and second["green"]
    assert {read_json(shop.path / name)["test_id"] for name in second["used"]} == set(map(node, SECOND_HALF))
    assert all(name.startswith("suite/recordings/") for name in first["used"] + second["used"])  # portable

    before = shop.files()
    elsewhere = tmp_path_factory.mktemp("another-checkout") / "shop"  # the prune job's checkout
    shutil.copytree(shop.path, elsewhere)
    dry = invoke(
        "prune", elsewhere, "--unused-from", elsewhere / "shard-1.json", elsewhere / "shard-2.json",
        "--root", elsewhere, "--dry-run",
    )  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert "3 unused recording(s) would be deleted" in dry.output
    assert f"would delete {elsewhere / 'suite/recordings/stale.json'} (its test passed without using it)" in dry.output
    assert "removed-test.json (its test no longer exists)" in dry.output
    assert "removed-file.json (its test file is gone)" in dry.output
    assert shop.files() == before and sorted(p.name for p in elsewhere.rglob("*.json")) == sorted(
        p.name for p in shop.path.rglob("*.json")
    )

    result = invoke("prune", "--unused-from", "shard-1.json", "shard-2.json")
    assert result.exit_code == 0, result.output
    assert "2 report(s): 5 test(s) collected, 4 passed, 4 recording(s) used" in result.output
    assert "3 unused recording(s) deleted" in result.output
    assert shop.files() == sorted(set(before) - {p.relative_to(shop.path).as_posix() for p in shop.stale})
    shop.pytester.runpytest("suite", "--inference-mode=replay", "-p", "no:cacheprovider").assert_outcomes(
        passed=4, skipped=1
    )


def refused(*reports):
    result = invoke("prune", "--unused-from", *reports)
    assert result.exit_code == 1, result.output
    assert "nothing deleted: the reports do not prove which recordings are unused." in result.output
    return result.output


def test_a_missing_shard_is_refused_naming_the_tests_no_shard_ran(shop):
    before = shop.files()
    shop.shard("shard-1.json", FIRST_HALF).assert_outcomes(passed=2, skipped=1, deselected=2)
    output = refused("shard-1.json")
    assert f"2 collected test(s) ran in no shard: {node('test_c')}, {node('test_d')}." in output
    assert "is one missing?" in output
    assert shop.files() == before


def test_a_failed_shard_is_refused_naming_its_failures(shop):
    shop.recording_of(node("test_b")).unlink()  # test_b now fails in replay: no recording
    before = shop.files()
    shop.shard("shard-1.json", FIRST_HALF).assert_outcomes(passed=1, failed=1, skipped=1, deselected=2)
    shop.shard("shard-2.json", SECOND_HALF).assert_outcomes(passed=2)
    output = refused("shard-1.json", "shard-2.json")
    assert f"shard-1.json: not a green run (exit status 1); 1 test(s) failed: {node('test_b')}." in output
    assert "shard-2.json" not in output
    assert shop.files() == before


def test_overlapping_shards_are_refused_naming_a_test_that_ran_twice(shop):
    before = shop.files()
    shop.shard("shard-1.json", FIRST_HALF).assert_outcomes(passed=2, skipped=1, deselected=2)
    shop.shard("shard-2.json", ["test_b", *SECOND_HALF]).assert_outcomes(passed=3, deselected=2)
    output = refused("shard-1.json", "shard-2.json")
    assert f"{node('test_b')} ran in more than one shard (shard-1.json, shard-2.json)" in output
    assert shop.files() == before


def test_shards_that_collected_different_tests_are_refused(shop):
    before = shop.files()
    shop.shard("shard-1.json", FIRST_HALF).assert_outcomes(passed=2, skipped=1, deselected=2)
    shop.path.joinpath("suite", "test_new.py").write_text("def test_new():\n    pass\n")  # another commit
    shop.shard("shard-2.json", [*SECOND_HALF, "test_new"], extra=["--deselect=suite/test_shop.py::test_b"])
    output = refused("shard-1.json", "shard-2.json")
    assert "the reports collected different tests: shard-1.json: 5 test(s); " in output
    assert "shard-2.json: 6 test(s) (e.g. suite/test_new.py::test_new only there)" in output
    assert "same commit with the same options" in output
    assert shop.files() == before


def test_one_full_green_report_prunes_like_several(shop):
    shop.shard("full.json", TESTS).assert_outcomes(passed=4, skipped=1)
    result = invoke("prune", "--unused-from", "full.json")
    assert result.exit_code == 0, result.output
    assert "3 unused recording(s) deleted" in result.output
    assert not any(path.exists() for path in shop.stale)


def shard_document(**changes):
    """A green shard's report, as pytest --api-recorder-report writes it on a CI machine."""
    tests = ["tests/test_a.py::test_one"]
    document = {
        "version": 2,
        "rootdir": "/builds/ci/shop",
        "args": ["tests"],
        "mode": "replay",
        "exitstatus": 0,
        "green": True,
        "collected": tests,
        "selected": tests,
        "passed": tests,
        "failed": [],
        "skipped": [],
        "used": [],
    }
    return {**document, **changes}


def test_unreadable_older_and_newer_reports_are_refused_naming_each_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "good.json").write_text(json.dumps(shard_document()))
    (tmp_path / "truncated.json").write_text(json.dumps(shard_document())[:40])
    (tmp_path / "old.json").write_text(json.dumps({"replayed": 1, "unused": []}))
    (tmp_path / "newer.json").write_text(json.dumps(shard_document(version=3)))
    (tmp_path / "partial.json").write_text(json.dumps({"version": 2, "rootdir": "/x", "exitstatus": 0}))
    output = refused("good.json", "truncated.json", "old.json", "newer.json", "partial.json", "absent.json")
    assert "truncated.json: not a report (not JSON: " in output
    assert "Re-run that shard with pytest --api-recorder-report=truncated.json" in output
    assert "old.json: written by an older api-recorder (report format 1)" in output
    assert "Re-run that shard with pytest --api-recorder-report=old.json" in output
    assert "newer.json: written by a newer api-recorder (report format 3" in output
    assert "partial.json: not a complete report (Object missing required field `collected`)" in output
    assert "absent.json: cannot be read (No such file or directory)" in output
    assert "good.json" not in output


def test_a_shard_run_without_the_recorder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "off.json").write_text(json.dumps(shard_document(mode=None)))
    (tmp_path / "live.json").write_text(json.dumps(shard_document(mode="live", selected=[], passed=[])))
    output = refused("off.json", "live.json")
    assert "off.json: ran with the recorder off (no --inference-mode), so it used no recording" in output
    assert "live.json: ran with the recorder in live mode" in output
    assert "--inference-mode=replay" in output


def test_a_project_root_without_the_collected_tests_or_a_folder_outside_it_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shard.json").write_text(json.dumps(shard_document()))
    output = refused("shard.json")
    assert "1 test file(s) the shards collected are not under . (tests/test_a.py)" in output
    assert "Run prune from the pytest rootdir of the shards" in output and "or pass --root" in output

    (tmp_path / "shop" / "tests").mkdir(parents=True)
    (tmp_path / "shop" / "tests" / "test_a.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "elsewhere").mkdir()
    result = invoke("prune", "elsewhere", "--unused-from", "shard.json", "--root", "shop")
    assert result.exit_code == 1
    assert "elsewhere is outside the project root shop" in result.output
    assert "not under" not in result.output
    assert invoke("prune", "shop", "--unused-from", "shard.json", "--root", "shop").exit_code == 0
