"""Installing and removing wrapt wrappers, exactly and only the ones an integration declares."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import wrapt


class Patches:
    """The wrappers one integration installed, so that uninstall() undoes exactly those."""

    def __init__(self) -> None:
        self._applied: list[tuple[Any, str, Any]] = []

    def wrap(self, module: str, name: str, wrapper: Callable[..., Any]) -> None:
        """``wrapt.wrap_function_wrapper(module, "Class.method", wrapper)``, remembered."""
        owner: Any = importlib.import_module(module)
        *path, attribute = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = owner.__dict__[attribute]
        wrapt.wrap_function_wrapper(owner, attribute, wrapper)
        self._applied.append((owner, attribute, original))

    def uninstall(self) -> None:
        for owner, attribute, original in reversed(self._applied):
            setattr(owner, attribute, original)
        self._applied.clear()
