"""What a test run did with its recordings: replayed, recorded, missing, and never used.

Built from the recorder's call log in each process; pytest-xdist workers send theirs to the
controller, which adds them up. A recording counts as unused only when nobody could still need
it: it belongs to a test that ran in this session and did not use it, or its test file is gone.
Recordings of tests that did not run, and shared ones (no test id), are never called unused.

A suite split across CI machines never has one run that saw every test: each shard writes a report
(``--api-recorder-report``) saying what it collected, selected, passed and used, and
``api-recorder prune --unused-from`` deletes only what the shards together prove unused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

from .context import test_file_of
from .recorder import CallLog

REPORT_VERSION = 2  # 1: only counts and "unused"; 2: adds what the run collected, selected, passed, used


class _TestIdOnly(msgspec.Struct):
    test_id: str | None = None


_decode_test_id = msgspec.json.Decoder(_TestIdOnly).decode


@dataclass
class RunReport:
    """Counts and paths of one run (or one xdist worker's part of it)."""

    replayed: int = 0
    recorded: int = 0
    missing: int = 0
    used: set[str] = field(default_factory=set)
    missing_calls: list[str] = field(default_factory=list)
    unwritten_calls: list[str] = field(default_factory=list)  # recorded live, but the file could not be written

    @classmethod
    def from_calls(cls, calls: Iterable[CallLog]) -> RunReport:
        report = cls()
        for call in calls:
            if call.outcome == "replayed":
                report.replayed += 1
            elif call.outcome == "recorded":
                report.recorded += 1
            elif call.outcome == "missing":
                report.missing += 1
                report.missing_calls.append(f"{call.label} in {call.test_id or 'no test'}")
            elif call.outcome == "unwritten":
                report.unwritten_calls.append(f"{call.label} in {call.test_id or 'no test'}: {call.path}: {call.error}")
            if call.path is not None and call.outcome in ("replayed", "recorded"):
                report.used.add(str(Path(call.path).resolve()))
        return report

    def merge(self, other: RunReport) -> None:
        self.replayed += other.replayed
        self.recorded += other.recorded
        self.missing += other.missing
        self.used |= other.used
        self.missing_calls += other.missing_calls
        self.unwritten_calls += other.unwritten_calls

    def to_json(self) -> dict[str, Any]:
        """What an xdist worker sends to the controller (workeroutput must be plain data)."""
        return {
            "replayed": self.replayed,
            "recorded": self.recorded,
            "missing": self.missing,
            "used": sorted(self.used),
            "missing_calls": self.missing_calls,
            "unwritten_calls": self.unwritten_calls,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        return cls(
            replayed=data["replayed"],
            recorded=data["recorded"],
            missing=data["missing"],
            used=set(data["used"]),
            missing_calls=list(data["missing_calls"]),
            unwritten_calls=list(data.get("unwritten_calls", [])),
        )

    def unused(self, ran_test_ids: set[str], root: Path) -> list[Path]:
        """Recordings in the folders this run used that no test needs any more."""
        folders = {Path(path).parent for path in self.used}
        unused = []
        for folder in sorted(folders):
            for path in sorted(folder.glob("*.json")):
                if str(path.resolve()) in self.used:
                    continue
                test_id = _test_id_of(path)
                if test_id is None:
                    continue
                if test_id in ran_test_ids or not (root / test_id.split("::", 1)[0]).exists():
                    unused.append(path)
        return unused


def _test_id_of(path: Path) -> str | None:
    try:
        return _decode_test_id(path.read_bytes()).test_id
    except (OSError, msgspec.DecodeError, RecursionError):  # DecodeError: ValidationError too
        return None


@dataclass
class RunOutcomes:
    """Which tests a run collected (before deselection), selected, and how each selected one ended.

    A test failed if any phase failed; it passed if its call passed and nothing failed; a test that
    skipped itself (or xfailed) is skipped, and keeps its recordings.
    """

    collected: set[str] = field(default_factory=set)
    selected: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)

    def record(self, nodeid: str, when: str, outcome: str) -> None:
        if outcome == "failed":
            self.failed.add(nodeid)
            self.passed.discard(nodeid)
            self.skipped.discard(nodeid)
        elif nodeid in self.failed:
            return
        elif outcome == "skipped":
            self.skipped.add(nodeid)
        elif outcome == "passed" and when == "call":
            self.passed.add(nodeid)

    def green(self, exitstatus: int) -> bool:
        """Every selected test passed or skipped (a shard that selected nothing exits 5, and is green)."""
        return not self.failed and (exitstatus == 0 or (exitstatus == 5 and not self.selected))


def write_report(
    path: Path,
    report: RunReport,
    unused: list[Path],
    outcomes: RunOutcomes | None = None,
    *,
    rootdir: Path | None = None,
    args: Iterable[str] = (),
    exitstatus: int = 0,
    mode: str | None = None,
) -> None:
    """The JSON report ``api-recorder prune --unused-from`` reads.

    Paths are relative to the pytest rootdir (CI machines check the repository out in different
    places); ``unused`` stays absolute, for the single-report prune of earlier versions.
    """
    root = (rootdir or Path.cwd()).resolve()
    outcomes = outcomes or RunOutcomes()
    document = {
        "version": REPORT_VERSION,
        "rootdir": str(root),
        "args": list(args),
        "mode": mode,
        "exitstatus": int(exitstatus),
        "green": outcomes.green(exitstatus),
        "collected": sorted(outcomes.collected),
        "selected": sorted(outcomes.selected),
        "passed": sorted(outcomes.passed),
        "failed": sorted(outcomes.failed),
        "skipped": sorted(outcomes.skipped),
        **report.to_json(),
        "used": sorted(relative_to(root, path) for path in report.used),
        "unused": [str(p) for p in unused],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def relative_to(root: Path, path: str | Path) -> str:
    """``path`` relative to ``root``, with forward slashes; unchanged (absolute) when outside it."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


# -- prune from the reports of several shards ------------------------------------------------------


class ReportRefused(Exception):
    """The reports do not prove which recordings are unused; the message says why and what to do."""


class _ShardDoc(msgspec.Struct, kw_only=True):
    version: int
    rootdir: str
    args: list[str] = []
    mode: str | None = None
    exitstatus: int
    collected: list[str]
    selected: list[str]
    passed: list[str]
    failed: list[str] = []
    skipped: list[str] = []
    used: list[str]


@dataclass(frozen=True)
class ShardReport:
    """One shard's report as prune reads it: node ids, and recording paths relative to its rootdir."""

    path: Path
    mode: str | None
    exitstatus: int
    args: tuple[str, ...]
    collected: frozenset[str]
    selected: frozenset[str]
    passed: frozenset[str]
    failed: frozenset[str]
    skipped: frozenset[str]
    used: frozenset[str]

    @property
    def unfinished(self) -> frozenset[str]:
        """Selected tests without a result: the run stopped before them."""
        return self.selected - self.passed - self.failed - self.skipped


def read_report_document(path: Path) -> dict[str, Any]:
    """The report's JSON object, or ReportRefused naming the file and how to get a good one."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ReportRefused(f"{path}: cannot be read ({exc.strerror}). {_rerun(path)}") from exc
    except ValueError as exc:
        raise ReportRefused(f"{path}: not a report (not JSON: {exc}). {_rerun(path)}") from exc
    if not isinstance(document, dict):
        raise ReportRefused(f"{path}: not a report (a JSON {type(document).__name__}, not an object). {_rerun(path)}")
    return document


def is_legacy_report(document: dict[str, Any]) -> bool:
    """A report of api-recorder before version 2: counts and an ``unused`` list, no proof."""
    return "version" not in document


def shard_report(path: Path, document: dict[str, Any]) -> ShardReport:
    """The shard's fields, or ReportRefused saying which format the file is and how to re-make it."""
    version = document.get("version", 1)
    if version != REPORT_VERSION:
        if isinstance(version, int) and version > REPORT_VERSION:
            raise ReportRefused(
                f"{path}: written by a newer api-recorder (report format {version}, this one reads "
                f"{REPORT_VERSION}); upgrade api-recorder where you prune."
            )
        raise ReportRefused(
            f"{path}: written by an older api-recorder (report format {version}): it does not say which "
            f"tests the run collected, ran and passed. {_rerun(path)}"
        )
    try:
        doc = msgspec.convert(document, _ShardDoc)
    except msgspec.ValidationError as exc:
        raise ReportRefused(f"{path}: not a complete report ({exc}). {_rerun(path)}") from exc
    return ShardReport(
        path=path,
        mode=doc.mode,
        exitstatus=doc.exitstatus,
        args=tuple(doc.args),
        collected=frozenset(doc.collected),
        selected=frozenset(doc.selected),
        passed=frozenset(doc.passed),
        failed=frozenset(doc.failed),
        skipped=frozenset(doc.skipped),
        used=frozenset(doc.used),
    )


def _rerun(path: Path) -> str:
    return f"Re-run that shard with pytest --api-recorder-report={path.name} and pass the new report."


def _few(ids: Iterable[str], limit: int = 3) -> str:
    ordered = sorted(ids)
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def shard_problems(shards: list[ShardReport]) -> list[str]:
    """Why these reports do not prove which recordings are unused; empty when they do.

    They do when every run was green, all collected the same tests (same commit, same options),
    and together they selected every collected test exactly once.
    """
    problems = [problem for shard in shards for problem in _green_problems(shard)]
    different = _collection_problems(shards)
    return problems + (different or _coverage_problems(shards))  # coverage means nothing across collections


RECORDING_MODES = ("replay", "record", "record-if-missing")  # a run in any other used no recording


def _green_problems(shard: ShardReport) -> list[str]:
    problems = []
    if shard.mode not in RECORDING_MODES:
        how = f"in {shard.mode} mode" if shard.mode else "off (no --inference-mode)"
        problems.append(
            f"{shard.path}: ran with the recorder {how}, so it used no recording whatever its tests need. Run "
            "every shard with --inference-mode=replay (or LLAMA_STACK_TEST_INFERENCE_MODE=replay)."
        )
    if shard.failed:
        problems.append(
            f"{shard.path}: not a green run (exit status {shard.exitstatus}); {len(shard.failed)} test(s) "
            f"failed: {_few(shard.failed)}. Fix them and re-run that shard: only green runs prove anything."
        )
    elif shard.exitstatus != 0 and not (shard.exitstatus == 5 and not shard.selected):
        problems.append(
            f"{shard.path}: not a green run (pytest exit status {shard.exitstatus}). Re-run that shard until it "
            "passes: only green runs prove anything."
        )
    if shard.unfinished:
        problems.append(
            f"{shard.path}: {len(shard.unfinished)} selected test(s) have no result ({_few(shard.unfinished)}): "
            "the run stopped early. Re-run that shard to the end."
        )
    return problems


def _collection_problems(shards: list[ShardReport]) -> list[str]:
    groups: dict[frozenset[str], list[ShardReport]] = {}
    for shard in shards:
        groups.setdefault(shard.collected, []).append(shard)
    if len(groups) < 2:
        return []
    everywhere = frozenset.intersection(*groups)
    described = []
    for collected, members in groups.items():
        names = ", ".join(str(shard.path) for shard in members)
        only_here = collected - everywhere
        example = f" (e.g. {_few(only_here, 2)} only there)" if only_here else ""
        described.append(f"{names}: {len(collected)} test(s){example}")
    return [
        "the reports collected different tests: "
        + "; ".join(described)
        + ". Run every shard on the same commit with the same options (only the selection may differ)."
    ]


def _coverage_problems(shards: list[ShardReport]) -> list[str]:
    problems = []
    collected = frozenset().union(*(shard.collected for shard in shards))
    selected = frozenset().union(*(shard.selected for shard in shards))
    not_run = collected - selected
    if not_run:
        problems.append(
            f"{len(not_run)} collected test(s) ran in no shard: {_few(not_run)}. Pass every shard's report "
            "(is one missing?), and make the shards together select every test."
        )
    seen: dict[str, list[Path]] = {}
    for shard in shards:
        for test_id in shard.selected:
            seen.setdefault(test_id, []).append(shard.path)
    twice = {test_id: paths for test_id, paths in seen.items() if len(paths) > 1}
    for test_id in sorted(twice)[:3]:
        problems.append(
            f"{test_id} ran in more than one shard ({', '.join(map(str, twice[test_id]))}): the shards overlap "
            "(or a report was given twice). Make each test run in exactly one shard."
        )
    if len(twice) > 3:
        problems.append(f"... and {len(twice) - 3} more test(s) ran in more than one shard.")
    return problems


@dataclass(frozen=True)
class ShardProof:
    """What green shards that together ran the whole suite once prove, for deciding what to delete."""

    collected: frozenset[str]
    passed: frozenset[str]
    used: frozenset[str]  # recording paths, relative to the rootdir (absolute when outside it)
    scopes: tuple[str, ...]  # the paths the shards were given (relative to the rootdir): where tests live

    @classmethod
    def from_shards(cls, shards: list[ShardReport]) -> ShardProof:
        return cls(
            collected=frozenset().union(*(shard.collected for shard in shards)),
            passed=frozenset().union(*(shard.passed for shard in shards)),
            used=frozenset().union(*(shard.used for shard in shards)),
            scopes=tuple(sorted({arg for shard in shards for arg in shard.args})),
        )

    @property
    def test_files(self) -> frozenset[str]:
        return frozenset(test_id.split("::", 1)[0] for test_id in self.collected)

    def root_problems(self, root: Path, directory: Path) -> list[str]:
        """Whether ``root`` is the checkout the shards ran in, and ``directory`` inside it."""
        problems = []
        if directory.resolve() != root.resolve() and root.resolve() not in directory.resolve().parents:
            problems.append(
                f"{directory} is outside the project root {root}: recording paths in the reports are relative "
                "to it. Pass a folder inside it, or --root."
            )
        absent = sorted(name for name in self.test_files if not (root / name).exists())
        if absent:
            problems.append(
                f"{len(absent)} test file(s) the shards collected are not under {root} ({_few(absent)}). Run prune "
                "from the pytest rootdir of the shards (the repository's root, usually), or pass --root."
            )
        return problems

    def why_unused(self, path: Path, root: Path, used: frozenset[Path]) -> str | None:
        """Why the recording at ``path`` can go, or None to keep it.

        It can go when its test passed without using it, or its test no longer exists: the test
        file was collected without that test, or the file is gone from where the shards looked.
        Shared recordings, used ones, and those of tests that did not run here stay.
        """
        if path.resolve() in used:
            return None
        test_id = _test_id_of(path)
        test_file = test_file_of(test_id)
        if test_id is None or test_file is None:
            return None
        if test_id in self.passed:
            return "its test passed without using it"
        if test_id in self.collected:
            return None  # skipped: it may need it again
        if test_file in self.test_files:
            return "its test no longer exists"
        if not (root / test_file).exists() and self._in_scope(test_file):
            return "its test file is gone"
        return None

    def _in_scope(self, test_file: str) -> bool:
        file = PurePosixPath(test_file)
        return any(scope in (".", "") or PurePosixPath(scope) in (file, *file.parents) for scope in self.scopes)

    def used_paths(self, root: Path) -> frozenset[Path]:
        return frozenset((root / name).resolve() for name in self.used)

    def unused(self, root: Path, candidates: Iterable[Path]) -> list[tuple[Path, str]]:
        """The recordings among ``candidates`` that can go, each with why."""
        used = self.used_paths(root)
        found = ((path, self.why_unused(path, root, used)) for path in candidates)
        return [(path, why) for path, why in found if why is not None]
