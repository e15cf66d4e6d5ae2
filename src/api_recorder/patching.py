"""Installing and removing wrapt wrappers, exactly and only the ones an integration declares.

Each wrapper is applied when its module is imported, or at once if it already was, and again if
the module is imported anew (new classes): instrumenting the OpenAI SDK never imports a resource
module the application does not use (``openai.resources.responses`` alone costs a quarter of a
second to import).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import wrapt

from .imports import IMPORTS

_INHERITED = object()  # marks a wrapper set on a class whose method it inherited


def _has(owner: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(owner, part):
            return False
        owner = getattr(owner, part)
    return True


class Patches:
    """The wrappers one integration installs, so that uninstall() undoes exactly those."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any]] = []
        self._active = True

    def wrap(self, module: str, name: str, wrapper: Callable[..., Any], *, optional: bool = False) -> None:
        """``wrapt.wrap_function_wrapper(module, "Class.method", wrapper)`` once ``module`` is imported.

        ``optional``: a method that only some versions of the SDK have is skipped quietly where
        it is missing (a missing non-optional one is warned about: its calls are not recorded).
        """

        def apply(imported: Any) -> None:
            if not self._active or (optional and not _has(imported, name)):
                return
            try:
                self._apply(imported, name, wrapper)
            except Exception as error:  # never break the import of someone else's module
                warnings.warn(
                    f"api-recorder could not wrap {module}:{name} ({error!r}); it is not recorded.",
                    RuntimeWarning,
                    stacklevel=2,
                )

        IMPORTS.on_import(module, apply)

    def _apply(self, module: Any, name: str, wrapper: Callable[..., Any]) -> None:
        owner = module
        *path, attribute = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        if any(applied_owner is owner and applied == attribute for applied_owner, applied, _ in self._applied):
            return  # this class is wrapped already (the module was seen again, its classes were not)
        original = owner.__dict__.get(attribute, _INHERITED)  # an inherited method is wrapped on owner
        wrapt.wrap_function_wrapper(owner, attribute, wrapper)
        self._applied.append((owner, attribute, original))

    def uninstall(self) -> None:
        """Put every original back; hooks of modules not imported yet will do nothing."""
        self._active = False
        for owner, attribute, original in reversed(self._applied):
            if original is _INHERITED:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
        self._applied.clear()
