"""The ``api-recorder`` command (also ``python -m api_recorder``): live with recordings.

``list``, ``show``, ``verify``, ``stats``, ``normalize``, ``prune``, ``diff`` and ``run``, built on
typer and rich (``pip install 'api-recorder[cli]'``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import msgspec

try:
    import typer
    from rich.console import Console
    from rich.markup import escape
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text
except ImportError as missing:  # the command line is an extra
    raise SystemExit(
        f"api-recorder's command line needs typer and rich ({missing}): pip install 'api-recorder[cli]'"
    ) from missing

from .envelopes import normalize_ids
from .errors import RecordingFileError, TypeNotInstalledError
from .integrations import BUILTINS, loaded
from .launcher import run_or_exit
from .recorder import RECORDER
from .report import (
    ReportRefused,
    ShardProof,
    ShardReport,
    is_legacy_report,
    read_report_document,
    shard_problems,
    shard_report,
)
from .storage import (
    TEMPORARY_PREFIX,
    TEMPORARY_SUFFIX,
    Recording,
    encode_recording,
    read_recording,
    stale_temporaries,
    write_atomically,
)

app = typer.Typer(
    name="api-recorder",
    help="Inspect, check and tidy api-recorder (and llama-stack) recording files.",
    no_args_is_help=True,
    add_completion=False,
)


class _Console:
    """rich's Console, made when first used: it reads the terminal width (or COLUMNS) then."""

    def __getattr__(self, name: str) -> Any:
        return getattr(Console(highlight=False), name)


console = _Console()
SKIPPED_FOLDERS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".hypothesis"}
TOP_LEVEL_ORDER = ("test_id", "request", "response", "id_normalization_mapping")


class _Summary(msgspec.Struct):
    request: dict[str, Any]
    response: dict[str, Any] = {}
    test_id: str | None = None


_decode_summary = msgspec.json.Decoder(_Summary).decode


RECORDING_NAME = re.compile(r"(models-)?[0-9a-f]{64}(-[0-9a-f]+)?\.json")  # <sha256>.json, models-<sha256>-<ids>.json


class _Shape(msgspec.Struct):
    """Just enough of a file to tell a recording from other JSON: a request object and a response object."""

    request: dict[str, msgspec.Raw]
    response: dict[str, msgspec.Raw]


_decode_shape = msgspec.json.Decoder(_Shape).decode


def find_recordings(directory: Path) -> list[Path]:
    """The recordings under ``directory`` (or the file itself): package.json, test data and CI
    matrices in the same tree are left alone by every command."""
    return sort_json_files(directory)[0]


def sort_json_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """The ``*.json`` files under ``directory``, split into recordings and other JSON.

    A recording is in a folder named ``recordings``, is named as recordings are (``<sha256>.json``),
    or holds a ``request`` object and a ``response`` object. A file named on the command line is
    taken as a recording: whoever names it wants it checked.
    """
    files = json_files(directory)
    if directory.is_file():
        return files, []
    recordings: list[Path] = []
    others: list[Path] = []
    for path in files:
        (recordings if is_recording(path, directory) else others).append(path)
    return recordings, others


def json_files(directory: Path) -> list[Path]:
    """Every ``*.json`` file under ``directory`` (or the file itself), hidden and tool folders aside."""
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is neither a folder nor a file.")
    return sorted(
        path
        for path in directory.rglob("*.json")
        if not path.name.startswith(".") and not SKIPPED_FOLDERS.intersection(path.relative_to(directory).parts)
    )


def is_recording(path: Path, directory: Path) -> bool:
    """Where, or as what, a file found under ``directory`` says it is a recording (see sort_json_files)."""
    folders = (directory.resolve().name, *path.relative_to(directory).parts[:-1])
    return "recordings" in folders or RECORDING_NAME.fullmatch(path.name) is not None or shaped_like_a_recording(path)


def shaped_like_a_recording(path: Path) -> bool:
    try:
        _decode_shape(path.read_bytes())
    except (OSError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # DecodeError: ValidationError too
        return False
    return True


def summarize(path: Path) -> _Summary | None:
    try:
        return _decode_summary(path.read_bytes())
    except (OSError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def what(request: dict[str, Any]) -> str:
    """The endpoint (``/v1/chat/completions``) or the tool (``tavily.search``) a recording is of."""
    if "tool_name" in request:
        return f"{request.get('provider')}.{request.get('tool_name')}"
    return str(request.get("endpoint") or request.get("url") or "?")


def model_of(request: dict[str, Any]) -> str:
    body = request.get("body")
    return str(request.get("model") or (body.get("model") if isinstance(body, dict) else "") or "")


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


@app.command("list")
def list_recordings(directory: Path = typer.Argument(Path("."), help="Folder to search (recursively).")) -> None:
    """A table of recordings: file, test id, endpoint or tool, model, streamed, size."""
    table = Table("file", "test id", "endpoint / tool", "model", "streamed", "size")
    for path in find_recordings(directory):
        summary = summarize(path)
        if summary is None:
            table.add_row(str(path), "[red]unreadable[/red]", "", "", "", human_size(path.stat().st_size))
            continue
        request = summary.request
        table.add_row(
            str(path),
            summary.test_id or "-",
            what(request),
            model_of(request),
            "yes" if summary.response.get("is_streaming") else "no",
            human_size(path.stat().st_size),
        )
    console.print(table)


def load(path: Path) -> Recording:
    try:
        return read_recording(path, RECORDER.rehydrator)
    except RecordingFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def render_answer(recording: Recording) -> str:
    """A person's view of the answer, by the integration that made it (streams joined into text);
    anything else as JSON."""
    response = recording.response
    error = response.error()
    text = integration_rendering(recording)
    if text is None:
        body = response.body
        text = f"({len(body)} chunks)\n" + render_object(body) if response.is_streaming else render_object(body)
    if error is not None:
        text += f"\n[error] {type(error).__name__}: {error}"
    return text


def integration_rendering(recording: Recording) -> str | None:
    """The first rendering an installed integration offers for this recording (its ``render``)."""
    for builtin in BUILTINS:
        module = loaded(builtin) if _installed(builtin.package) else None
        render = getattr(module, "render", None)
        if render is not None:
            text = render(recording)
            if text is not None:
                return str(text)
    return None


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


def render_object(body: Any) -> str:
    if isinstance(body, list):
        return "\n".join(getattr(item, "id", None) or json.dumps(_plain(item)) for item in body)
    return json.dumps(_plain(body), indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_unset=True, warnings=False)
    return value


@app.command()
def show(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A recording file.")) -> None:
    """The request, and a readable rendering of the response (streams joined into text)."""
    recording = load(file)
    console.rule(f"{what(recording.request)}  test: {recording.test_id or '-'}")
    console.print(Syntax(json.dumps(recording.request, indent=2, ensure_ascii=False), "json", word_wrap=True))
    console.rule("response")
    console.print(render_answer(recording), markup=False)


@app.command()
def verify(directory: Path = typer.Argument(Path("."), help="Folder to check (recursively).")) -> None:
    """Load and rehydrate every recording; exit 1 listing each file that fails, and why.

    Other JSON in the tree (package.json, test data, CI matrices) is counted as ignored, not failed.
    """
    ok = skipped = 0
    failures: list[tuple[Path, str]] = []
    recordings, others = sort_json_files(directory)
    for path in recordings:
        try:
            check_recording(path)
            ok += 1
        except TypeNotInstalledError as exc:
            skipped += 1
            reason = str(exc).split(": ", 1)[-1]
            console.print(f"[yellow]skipped[/yellow] {escape(f'{path}: {reason}')}")  # escaped: never markup
        except RecordingFileError as exc:
            failures.append((path, str(exc).removeprefix(f"{path}: ")))
        except Exception as exc:  # RecursionError, MemoryError, a library's error: this file fails, the run goes on
            failures.append((path, f"{type(exc).__name__}: {str(exc)[:500] or 'no message'}"))
    if failures:
        table = Table("file", "why it fails", title="recordings that fail")
        for path, reason in failures:
            table.add_row(Text(str(path)), Text(reason))  # Text: a file's content is never read as markup
        console.print(table)
    ignored = f", {len(others)} other JSON file{'s' if len(others) != 1 else ''} ignored" if others else ""
    console.print(f"{ok} ok, {skipped} skipped (types not installed), {len(failures)} failed{ignored}")
    if failures:
        raise typer.Exit(1)


def check_recording(path: Path) -> None:
    """Rebuild every answer of the file, as replay would; RecordingFileError saying why it cannot."""
    recording = read_recording(path, RECORDER.rehydrator)
    if "body" not in _decode_shape(path.read_bytes()).response:  # replay would answer None
        raise RecordingFileError(
            f"{path}: not a recording: 'response' has no 'body'. Record it again, or move the file out of the "
            "recordings folder if it is not a recording."
        )
    for response in recording.responses:
        response.body  # noqa: B018 - rebuilding is the check
        response.error()


@app.command()
def stats(directory: Path = typer.Argument(Path("."), help="Folder to count (recursively).")) -> None:
    """Counts and sizes by endpoint or tool, by model, and by test file."""
    groups: dict[str, dict[str, list[int]]] = {"endpoint / tool": {}, "model": {}, "test file": {}}
    for path in find_recordings(directory):
        summary = summarize(path)
        if summary is None:
            continue
        size = path.stat().st_size
        keys = {
            "endpoint / tool": what(summary.request),
            "model": model_of(summary.request) or "-",
            "test file": (summary.test_id or "-").split("::", 1)[0],
        }
        for group, key in keys.items():
            counts = groups[group].setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += size
    for group, rows in groups.items():
        table = Table(group, "recordings", "size")
        for key, (count, size) in sorted(rows.items(), key=lambda item: -item[1][0]):
            table.add_row(key, str(count), human_size(size))
        console.print(table)


def canonical_form(path: Path) -> bytes | None:
    """The bytes api-recorder would write for this recording: ids and timestamps normalized,
    keys in llama-stack's order, two-space indent, newline at the end. None if not a recording."""
    try:
        document = msgspec.json.decode(path.read_bytes())
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not (isinstance(document, dict) and isinstance(document.get("response"), dict) and "request" in document):
        return None
    stem = path.stem
    request_hash = stem.split("-")[1] if stem.startswith("models-") else stem
    normalized_id = f"rec-{request_hash[:12]}"
    for response in [document["response"], *(document.get("more_responses") or [])]:
        if isinstance(response, dict):
            for envelope in _envelopes(response.get("body")):
                normalize_ids(envelope["__data__"], normalized_id)
    document.setdefault("id_normalization_mapping", {})
    ordered = {key: document[key] for key in TOP_LEVEL_ORDER if key in document}
    ordered.update({key: value for key, value in document.items() if key not in ordered})
    return encode_recording(ordered)


def _envelopes(body: Any) -> Iterator[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("__data__"), dict) and "__type__" in item:
            yield item


@app.command()
def normalize(
    directory: Path = typer.Argument(Path("."), help="Folder to rewrite (recursively)."),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if anything would change."),
) -> None:
    """Rewrite files into the canonical form (ids, timestamps, key order, indent); idempotent."""
    changed = []
    for path in find_recordings(directory):
        canonical = canonical_form(path)
        if canonical is None or canonical == path.read_bytes():
            continue
        changed.append(path)
        if not check:
            write_atomically(path, canonical)
    verb = "would change" if check else "rewrote"
    for path in changed:
        console.print(f"{verb} {path}")
    console.print(f"{len(changed)} file(s) {verb}" if changed else "every recording is in canonical form")
    if check and changed:
        raise typer.Exit(1)


@app.command()
def prune(
    paths: list[Path] = typer.Argument(
        None,
        metavar="DIRECTORY|REPORT",
        help="Only recordings under DIRECTORY (default: .) are deleted. More shard reports may follow --unused-from's.",
    ),
    unused_from: list[Path] = typer.Option(
        ...,
        "--unused-from",
        help="A report written by pytest --api-recorder-report; give every CI shard's (after it, or repeated).",
    ),
    root: Path = typer.Option(
        Path("."),
        "--root",
        help="The project root the shards ran in (their pytest rootdir); report paths are relative to it.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; delete nothing."),
) -> None:
    """Delete the recordings that one run, or every shard of a split run together, proved unused.

    Reports that cannot prove it (a shard failed, is missing, overlaps another, or collected other
    tests) are refused with exit 1 and nothing is deleted.
    """
    directory, reports = directory_and_reports(paths or [], unused_from)
    documents, problems = read_reports(reports)
    if len(reports) == 1 and not problems and is_legacy_report(documents[0][1]):
        targets = listed_unused(*documents[0], directory)
    else:
        targets = proven_unused(shard_reports(documents, problems), directory, root)
    delete_recordings(targets, dry_run)
    remove_stale_temporary_files(directory, dry_run)


def remove_stale_temporary_files(directory: Path, dry_run: bool) -> None:
    """Temporary files that killed writers left behind (``.api-recorder-*.tmp``): never recordings."""
    folders = {path.parent for path in directory.rglob(f"{TEMPORARY_PREFIX}*{TEMPORARY_SUFFIX}")}
    stale = [path for folder in sorted(folders) for path in stale_temporaries(folder)]
    for path in stale:
        if not dry_run:
            path.unlink(missing_ok=True)
        console.print(f"{'would remove' if dry_run else 'removed'} {path} (a stale temporary file)", markup=False)


def directory_and_reports(paths: list[Path], unused_from: list[Path]) -> tuple[Path, list[Path]]:
    """``prune --unused-from a.json b.json tests/``: an option takes one value, so the reports after
    the first arrive as arguments; a folder among them is DIRECTORY."""
    folders = [path for path in paths if path.is_dir()]
    if len(folders) > 1:
        raise typer.BadParameter(f"one DIRECTORY at most, got {', '.join(map(str, folders))}.")
    for path in paths:
        if not path.exists() and path.suffix != ".json":
            raise typer.BadParameter(f"{path}: no such folder (and not a .json report).")
    reports = [*unused_from, *(path for path in paths if not path.is_dir())]
    return (folders[0] if folders else Path(".")), reports


def read_reports(reports: list[Path]) -> tuple[list[tuple[Path, dict[str, Any]]], list[str]]:
    """Each report's JSON object, and why the others cannot be read."""
    documents, problems = [], []
    for path in reports:
        try:
            documents.append((path, read_report_document(path)))
        except ReportRefused as exc:
            problems.append(str(exc))
    return documents, problems


def shard_reports(documents: list[tuple[Path, dict[str, Any]]], problems: list[str]) -> list[ShardReport]:
    """The reports as shards; refused, naming every report that is unreadable or of another format."""
    shards = []
    for path, document in documents:
        try:
            shards.append(shard_report(path, document))
        except ReportRefused as exc:
            problems.append(str(exc))
    if problems:
        refuse(problems)
    return shards


def listed_unused(report: Path, document: dict[str, Any], directory: Path) -> list[tuple[Path, str | None]]:
    """A report of an earlier api-recorder: its ``unused`` list, kept to recordings under ``directory``."""
    names = document.get("unused", [])
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        refuse([f"{report}: 'unused' is not a list of paths. Re-run with pytest --api-recorder-report={report.name}."])
    recordings = {path.resolve() for path in find_recordings(directory)}
    paths = (Path(name).resolve() for name in names)
    return [(path, None) for path in paths if path in recordings]


def proven_unused(shards: list[ShardReport], directory: Path, root: Path) -> list[tuple[Path, str | None]]:
    """What green shards that together ran every collected test once prove unused, under ``directory``."""
    problems = shard_problems(shards)
    proof = ShardProof.from_shards(shards)
    problems += proof.root_problems(root, directory)
    if problems:
        refuse(problems)
    describe_proof(len(shards), proof, root)
    return list(proof.unused(root.resolve(), find_recordings(directory)))


def describe_proof(reports: int, proof: ShardProof, root: Path) -> None:
    """One line saying what the reports hold, so a surprising prune can be traced back to them."""
    used_here = sum(1 for path in proof.used_paths(root.resolve()) if path.exists())
    elsewhere = len(proof.used) - used_here
    line = (
        f"{reports} report(s): {len(proof.collected)} test(s) collected, {len(proof.passed)} passed, "
        f"{len(proof.used)} recording(s) used"
    )
    if elsewhere:
        line += f" ({elsewhere} of them not under {root}: recorded on the CI machines and not committed?)"
    console.print(line, markup=False, soft_wrap=True)


def refuse(problems: list[str]) -> NoReturn:
    """Exit 1, deleting nothing, with every reason the reports fall short (all at once: one CI round trip)."""
    console.print("nothing deleted: the reports do not prove which recordings are unused.", markup=False)
    for problem in problems:
        console.print(f"  - {problem}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def delete_recordings(targets: list[tuple[Path, str | None]], dry_run: bool) -> None:
    for path, why in targets:
        if not dry_run:
            path.unlink(missing_ok=True)
        because = f" ({why})" if why else ""
        console.print(f"{'would delete' if dry_run else 'deleted'} {path}{because}", markup=False, soft_wrap=True)
    console.print(f"{len(targets)} unused recording(s) {'would be deleted' if dry_run else 'deleted'}")


@app.command()
def diff(
    file_a: Path = typer.Argument(..., exists=True, dir_okay=False),
    file_b: Path = typer.Argument(..., exists=True, dir_okay=False),
) -> None:
    """Differences between two recordings: request first, then the rendered response."""
    import difflib  # this command alone needs it

    first, second = load(file_a), load(file_b)
    sections = [
        ("request", _json_lines(first.request), _json_lines(second.request)),
        ("response", render_answer(first).splitlines(), render_answer(second).splitlines()),
    ]
    same = True
    for title, left, right in sections:
        lines = list(difflib.unified_diff(left, right, str(file_a), str(file_b), lineterm=""))
        console.rule(title)
        if lines:
            same = False
            console.print(Syntax("\n".join(lines), "diff", word_wrap=True))
        else:
            console.print("identical")
    if not same:
        raise typer.Exit(1)


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


@app.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def run(
    command: list[str] = typer.Argument(None, metavar="-- COMMAND [ARGS]", help="The command, after --, verbatim."),
    mode: str | None = typer.Option(
        None, "--mode", help="record, replay or record-if-missing; default: LLAMA_STACK_TEST_INFERENCE_MODE."
    ),
    recording_dir: Path | None = typer.Option(
        None, "--recording-dir", help="Where recordings live; default: LLAMA_STACK_TEST_RECORDING_DIR."
    ),
) -> None:
    """Run a command recorded or replayed, also where .pth files are not read (pip --target, zipapps, pex)."""
    run_or_exit(command or [], mode, recording_dir)


def main() -> None:
    app()


__all__ = ["app", "canonical_form", "main"]
