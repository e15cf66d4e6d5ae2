"""One module per instrumented SDK; each is imported only once its SDK has been imported.

:data:`BUILTINS` is the catalog the engine reads instead of knowing any SDK: which import installs
which module, and which packages' classes a recording may name. An integration module provides
``install(recorder)``, and may provide ``rebuild_error(name, message, status_code, body, url)``
(its SDK's errors, raised again on replay) and ``render(recording)`` (a person's view of an
answer, for ``api-recorder show``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class BuiltinIntegration:
    """An SDK that api-recorder instruments, by name only: nothing is imported here."""

    package: str  # the import that installs it: "openai", "google.genai"
    module: str  # the integration module, imported once ``package`` is
    type_prefixes: tuple[str, ...]  # modules whose model classes recordings may name
    extra: str  # pip install 'api-recorder[<extra>]'


BUILTINS: tuple[BuiltinIntegration, ...] = (
    BuiltinIntegration("openai", "api_recorder.integrations.openai", ("openai.",), "openai"),
    BuiltinIntegration("anthropic", "api_recorder.integrations.anthropic", ("anthropic.",), "anthropic"),
    BuiltinIntegration("google.genai", "api_recorder.integrations.genai", ("google.genai.",), "genai"),
    BuiltinIntegration("tavily", "api_recorder.integrations.tavily", ("tavily.",), "tavily"),
)

TYPE_PREFIXES: tuple[str, ...] = tuple(prefix for builtin in BUILTINS for prefix in builtin.type_prefixes)
"""Module prefixes whose pydantic classes recordings may name (plus registered types)."""


def owner_of(module_name: str) -> BuiltinIntegration | None:
    """The integration whose SDK defines ``module_name`` (an error's or a class's module)."""
    for builtin in BUILTINS:
        if any(f"{module_name}.".startswith(prefix) for prefix in builtin.type_prefixes):
            return builtin
    return None


def loaded(builtin: BuiltinIntegration) -> ModuleType | None:
    """The integration module, or None where its SDK is not installed."""
    try:
        return importlib.import_module(builtin.module)
    except ImportError:
        return None
