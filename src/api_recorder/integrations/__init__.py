"""One module per instrumented SDK; each is imported only once its SDK has been imported.

:data:`BUILTINS` is the catalog the engine reads instead of knowing any SDK: which import installs
which module, and which packages' classes a recording may name. An integration module provides
``install(recorder)`` (or the function ``installer`` names), and may provide
``rebuild_error(name, message, status_code, body, url)`` (its SDK's errors, raised again on
replay), ``error_details(error)`` (the status and body of its SDK's errors, where they are not
``status_code`` and ``body``) and ``render(recording)`` (a person's view of an answer, for
``api-recorder show``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import NamedTuple


class BuiltinIntegration(NamedTuple):
    """An SDK that api-recorder instruments, by name only: nothing is imported here.

    (A named tuple: immutable like a frozen dataclass, and a quarter of its cost at start-up.)
    """

    package: str  # the import that installs it: "openai", "google.genai"
    module: str  # the integration module, imported once ``package`` is
    type_prefixes: tuple[str, ...]  # modules whose model classes recordings may name
    extra: str  # pip install 'api-recorder[<extra>]'
    marks: tuple[tuple[str, str], ...] = ()  # (header, text in it) of requests its clients send
    installer: str = "install"  # the module's function that installs the wrappers


_MODULE = "api_recorder.integrations."
BUILTINS: tuple[BuiltinIntegration, ...] = (
    BuiltinIntegration("openai", _MODULE + "openai", ("openai.",), "openai", (("user-agent", "OpenAI/Python"),)),
    BuiltinIntegration(
        "anthropic", _MODULE + "anthropic", ("anthropic.",), "anthropic", (("user-agent", "Anthropic/Python"),)
    ),
    BuiltinIntegration(
        "google.genai", _MODULE + "genai", ("google.genai.",), "genai", (("x-goog-api-client", "google-genai-sdk/"),)
    ),
    BuiltinIntegration("ollama", _MODULE + "ollama", ("ollama.",), "ollama", (("user-agent", "ollama-python/"),)),
    BuiltinIntegration("mcp", _MODULE + "mcp", ("mcp.", "mcp_types."), "mcp"),
    BuiltinIntegration("tavily", _MODULE + "tavily", ("tavily.",), "tavily"),
    # Raw HTTP, for the URL prefixes opted in with enable(http=[...]) (api_recorder.integrations.raw_http).
    BuiltinIntegration("httpx", _MODULE + "raw_http", (), "http", installer="install_httpx"),
    BuiltinIntegration("httpx2", _MODULE + "raw_http", (), "http", installer="install_httpx2"),
    BuiltinIntegration("aiohttp", _MODULE + "raw_http_aiohttp", (), "http"),
)

TYPE_PREFIXES: tuple[str, ...] = tuple(prefix for builtin in BUILTINS for prefix in builtin.type_prefixes)
"""Module prefixes whose pydantic classes recordings may name (plus registered types)."""


def sent_by_covered_sdk(headers: Mapping[str, str]) -> bool:
    """Whether a request comes from a client whose SDK integration records it already (so raw
    HTTP recording leaves it alone): its headers carry that SDK's mark."""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    return any(text in lowered.get(header, "") for builtin in BUILTINS for header, text in builtin.marks)


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
