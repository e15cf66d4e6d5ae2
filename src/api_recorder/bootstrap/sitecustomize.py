"""api-recorder's ``sitecustomize``, first on ``PYTHONPATH`` in a command started by ``api-recorder run``.

Python imports ``sitecustomize`` at start-up even where no ``.pth`` file is read (``pip install
--target`` on ``PYTHONPATH``, zipapps, pex), so this does what ``api_recorder.pth`` would: it calls
``_api_recorder_boot.install()``, which reads the mode from the environment and waits for ``openai``
or ``tavily`` to be imported. Then it runs the ``sitecustomize`` that Python would have run without
us, the next one on ``sys.path``, so a user's or a distribution's own keeps working.

It imports no SDK and not api_recorder itself; a failure to activate is one line on stderr, never
a broken interpreter. Errors in the user's ``sitecustomize`` go to Python, which reports them as
it always does ("Error in sitecustomize ...") and goes on.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no typing import at start-up; type checkers read the block below
if TYPE_CHECKING:
    from types import ModuleType

_HERE = os.path.dirname(os.path.abspath(__file__))


def _warn(message: str) -> None:
    sys.stderr.write(f"api-recorder: {message}; this process runs unrecorded. Set API_RECORDER_AUTO=0 to skip it.\n")


def _boot_module() -> ModuleType | None:
    """``_api_recorder_boot``, from the path (it sits beside ``api_recorder/``) or from our own install.

    The second place covers an interpreter that cannot import it at start-up (the application's
    packages come later, from a zipapp, say) while this file still belongs to an installed copy.
    """
    try:
        import _api_recorder_boot

        return _api_recorder_boot
    except ImportError:
        pass
    path = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "_api_recorder_boot.py")
    if not os.path.isfile(path):
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("_api_recorder_boot", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_api_recorder_boot"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["_api_recorder_boot"]
        raise
    return module


def _activate() -> None:
    """Install the boot hook's import finder, unless switched off; a second call adds nothing."""
    if os.environ.get("API_RECORDER_AUTO", "1") == "0":
        return
    try:
        boot = _boot_module()
        if boot is None:
            _warn("_api_recorder_boot was not found (is api-recorder installed for this Python?)")
            return
        boot.install()  # idempotent: the finder goes in once, even if api_recorder.pth ran first
    except Exception as exc:
        _warn(f"auto-activation failed ({exc!r})")


def _is_here(entry: str) -> bool:
    try:
        return os.path.normcase(os.path.abspath(entry or os.curdir)) == os.path.normcase(_HERE)
    except (TypeError, ValueError):
        return False


def _chain_to_next_sitecustomize() -> None:
    """Import the next ``sitecustomize`` on sys.path as ``sitecustomize``, as Python would have.

    This folder leaves sys.path and this module leaves sys.modules while the import runs, then
    the folder goes back where it was. If none is found this module stays ``sitecustomize``;
    if the user's raises, the error reaches Python's own handler in ``site``.
    """
    ours = sys.modules.get("sitecustomize")
    positions = [index for index, entry in enumerate(sys.path) if _is_here(entry)]
    for index in reversed(positions):
        del sys.path[index]
    sys.modules.pop("sitecustomize", None)
    try:
        import importlib

        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":  # the test site.py itself makes: this one was found, and failed
            raise
        if ours is not None:
            sys.modules["sitecustomize"] = ours
    finally:
        for index in positions:
            sys.path.insert(min(index, len(sys.path)), _HERE)


_activate()
_chain_to_next_sitecustomize()
