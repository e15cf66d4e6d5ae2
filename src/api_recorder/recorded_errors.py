"""API errors as recordings: which errors are kept, and how they are raised again on replay.

The keys are llama-stack's (``response.is_exception``, ``response.exception_data`` with
``category``, ``type``, ``message``, ``status_code``, ``body``, and ``response.exception_message``),
so its recorded errors replay too. Classes are rebuilt only from the allow-list (the SDKs of
:data:`~api_recorder.integrations.BUILTINS`, each by its integration's ``rebuild_error`` where it
has one, Python's built-in exceptions, classes registered with ``register_type``); any other
recorded error comes back as :class:`RecordedError` carrying the original type's name.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any

from .envelopes import TypeRegistry
from .integrations import BUILTINS, TYPE_PREFIXES, loaded, owner_of


class RecordedError(RuntimeError):
    """A recorded error whose class is not rebuilt: its name, status and body are kept.

    ``str()`` is the recorded message alone, as llama-stack's replay gives it (it raises a bare
    ``Exception(message)``); the original class's name is in ``original_type`` and the repr.
    """

    def __init__(self, original_type: str, message: str, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.original_type = original_type
        self.status_code = status_code
        self.body = body

    def __repr__(self) -> str:
        return f"RecordedError({self.original_type}: {self.args[0]!r})"


def describe_error(error: BaseException) -> dict[str, Any]:
    """llama-stack's ``exception_data`` of an error, plus its module for an exact rebuild.

    Status and body are the error's ``status_code`` and ``body`` (Stainless SDKs), or what its
    integration's ``error_details(error)`` says they are.
    """
    cls = type(error)
    status_code = getattr(error, "status_code", None)
    body = getattr(error, "body", None)
    owner = owner_of(cls.__module__)
    details = getattr(loaded(owner), "error_details", None) if owner is not None else None
    described = details(error) if details is not None else None
    if described is not None:  # SDKs whose errors keep them elsewhere (genai's code, MCP's data)
        status_code, body = described
    if cls.__module__ == "builtins":
        category = "builtin"
    elif isinstance(status_code, int) or f"{cls.__module__}.".startswith(TYPE_PREFIXES):
        category = "provider_sdk"
    else:
        category = "unknown"
    owner = owner_of(cls.__module__)
    data: dict[str, Any] = {
        "category": category,
        "provider": owner.package if owner else cls.__module__.split(".", 1)[0],
        "type": cls.__name__,
        "module": cls.__module__,
        "message": str(error),
    }
    if isinstance(status_code, int):
        data["status_code"] = status_code
    if body is not None:
        data["body"] = body
    return data


def rebuild_error(data: dict[str, Any], registry: TypeRegistry, url: str | None = None) -> Exception:
    """The exception to raise on replay, as close to the recorded one as the allow-list permits."""
    try:
        return _rebuild(data, registry, url)
    except (TypeError, ValueError):  # a class whose constructor wants more than was recorded
        return RecordedError(
            str(data.get("type") or "Exception"),
            str(data.get("message") or ""),
            data.get("status_code") if isinstance(data.get("status_code"), int) else None,
            data.get("body"),
        )


def _rebuild(data: dict[str, Any], registry: TypeRegistry, url: str | None) -> Exception:
    type_short = str(data.get("type") or "Exception")
    module = str(data.get("module") or data.get("provider") or "")
    message = str(data.get("message") or "")
    status_code = data.get("status_code")
    body = data.get("body")
    rebuild = _integration_rebuilder(module, data.get("provider"))
    if rebuild is not None:
        return rebuild(type_short, message, status_code, body, url)  # type: ignore[no-any-return]
    cls = _allowed_exception_class(data, registry, module, type_short)
    if cls is not None:
        return _with_details(cls(message), status_code, body)
    return RecordedError(f"{module}.{type_short}" if module else type_short, message, status_code, body)


def _allowed_exception_class(
    data: dict[str, Any], registry: TypeRegistry, module: str, name: str
) -> type[Exception] | None:
    """The recorded class, if the allow-list holds it: registered, a covered SDK's, or a built-in."""
    registered = registry.registered(f"{module}.{name}")
    if registered is not None and issubclass(registered, Exception):
        return registered
    if owner_of(module) is not None:
        return _exception_class(module, name)
    if data.get("category") == "builtin" or module == "builtins":
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls
    return None


def _with_details(error: Exception, status_code: Any, body: Any) -> Exception:
    """Put back the recorded status code and body that a one-argument constructor did not take."""
    try:
        if isinstance(status_code, int) and getattr(error, "status_code", None) != status_code:
            error.status_code = status_code  # type: ignore[attr-defined]
        if body is not None and getattr(error, "body", None) is None:
            error.body = body  # type: ignore[attr-defined]
    except AttributeError:  # a read-only property of the class: it keeps its own
        pass
    return error


def _exception_class(module: str, name: str) -> type[Exception] | None:
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, Exception) else None


def _integration_rebuilder(module: str, provider: Any) -> Any:
    """The ``rebuild_error`` of the integration whose SDK raised the error, if it has one.

    llama-stack's files may name only the provider (``"provider": "openai"``) with a short module.
    """
    owner = owner_of(module) or next((b for b in BUILTINS if b.package == provider), None)
    integration = loaded(owner) if owner is not None else None
    return getattr(integration, "rebuild_error", None)
