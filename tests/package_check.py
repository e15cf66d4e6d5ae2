"""Check a built wheel as a user installs it: ``python tests/package_check.py WHEEL VENV_DIR``.

Run by ``nox -s package``. In a fresh virtualenv (no editable install, no ``src/`` on the path),
the wheel with its ``openai`` extra must hold the ``.pth`` hook, the bootstrap module, the pytest
entry point, ``py.typed`` and the command; the quickstart must replay offline from
``recordings/``; and a process that never imports api_recorder, started with the mode variable
set, must replay through auto-activation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["api_recorder.pth", "_api_recorder_boot.py", "api_recorder/py.typed", "api_recorder/pytest_plugin.py"]

AUTO_ACTIVATED = """
import sys
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-not-needed", max_retries=0)
chat = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Name three uses of a recorder in tests"}]
)
assert "api_recorder" in sys.modules, "auto-activation did not import api_recorder"
print(type(chat).__name__, chat.choices[0].message.content)
"""


def check_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise SystemExit(f"{wheel.name} lacks {missing}")
    metadata = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(metadata).decode()
    for needed in ("[pytest11]", "api_recorder = api_recorder.pytest_plugin", "api-recorder = api_recorder.cli:main"):
        if needed not in entry_points:
            raise SystemExit(f"{wheel.name}: entry point {needed!r} missing")


def run(python: Path, *args: str, env: dict[str, str] | None = None, cwd: Path) -> str:
    result = subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def main(wheel: Path, environment: Path) -> None:
    check_contents(wheel)
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    python = environment / "bin" / "python"
    outside = Path(tempfile.mkdtemp())  # nothing of the repository importable from here
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[openai,cli]", "pytest>=8", cwd=outside)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_STACK_TEST_", "OGX_TEST_", "OPENAI_"))}
    located = run(python, "-c", "import api_recorder; print(api_recorder.__file__)", env=clean, cwd=outside)
    if "site-packages" not in located:
        raise SystemExit(f"api_recorder imported from {located.strip()}, not from the installed wheel")
    print(run(python, str(ROOT / "examples" / "quickstart.py"), env=clean, cwd=outside), end="")
    recordings = str(ROOT / "recordings")
    replaying = {**clean, "LLAMA_STACK_TEST_INFERENCE_MODE": "replay", "LLAMA_STACK_TEST_RECORDING_DIR": recordings}
    print(run(python, "-c", AUTO_ACTIVATED, env=replaying, cwd=outside), end="")
    plugin = run(python, "-m", "pytest", "--help", env=clean, cwd=outside)
    if "--inference-mode" not in plugin:
        raise SystemExit("the pytest plugin is not registered by the wheel")
    print(run(environment / "bin" / "api-recorder", "verify", str(ROOT / "recordings"), env=clean, cwd=outside), end="")
    print(f"{wheel.name}: contents, quickstart, auto-activation, pytest plugin and command line all work")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
