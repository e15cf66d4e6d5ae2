"""API errors as recordings: which errors are kept, and how they are raised again on replay.

The keys are llama-stack's (``response.is_exception``, ``response.exception_data`` with
``category``, ``type``, ``message``, ``status_code``, ``body``, and ``response.exception_message``),
so its recorded errors replay too. Classes are rebuilt only from the allow-list (the openai and
tavily packages, Python's built-in exceptions, classes registered with ``register_type``); any
other recorded error comes back as :class:`RecordedError` carrying the original type's name.
"""

from __future__ import annotations

import builtins
import importlib
from typing import Any

from .envelopes import TypeRegistry


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
    """llama-stack's ``exception_data`` of an error, plus its module for an exact rebuild."""
    cls = type(error)
    status_code = getattr(error, "status_code", None)
    if cls.__module__ == "builtins":
        category = "builtin"
    elif isinstance(status_code, int) or cls.__module__.startswith(("openai.", "tavily.")):
        category = "provider_sdk"
    else:
        category = "unknown"
    data: dict[str, Any] = {
        "category": category,
        "provider": cls.__module__.split(".", 1)[0],
        "type": cls.__name__,
        "module": cls.__module__,
        "message": str(error),
    }
    if isinstance(status_code, int):
        data["status_code"] = status_code
    body = getattr(error, "body", None)
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
    if module.startswith("openai") or (data.get("provider") == "openai"):
        return _openai_error(type_short, message, status_code, body, url)
    cls = _allowed_exception_class(data, registry, module, type_short)
    if cls is not None:
        return _with_details(cls(message), status_code, body)
    return RecordedError(f"{module}.{type_short}" if module else type_short, message, status_code, body)


def _allowed_exception_class(
    data: dict[str, Any], registry: TypeRegistry, module: str, name: str
) -> type[Exception] | None:
    """The recorded class, if the allow-list holds it: registered, tavily's, or a built-in."""
    registered = registry.registered(f"{module}.{name}")
    if registered is not None and issubclass(registered, Exception):
        return registered
    if module.startswith("tavily."):
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


def _openai_error(name: str, message: str, status_code: Any, body: Any, url: str | None) -> Exception:
    import openai

    httpx2 = sdk_http_module()
    request = httpx2.Request("POST", url or "https://api.openai.com/v1")
    cls = getattr(openai, name, None)
    if not (isinstance(cls, type) and issubclass(cls, openai.APIError)):
        cls = openai.APIStatusError if isinstance(status_code, int) else openai.APIConnectionError
    if issubclass(cls, openai.APITimeoutError):
        return cls(request=request)
    if issubclass(cls, openai.APIConnectionError):
        return cls(message=message, request=request)
    if issubclass(cls, openai.APIStatusError):
        response = httpx2.Response(int(status_code or 500), request=request)
        return cls(message, response=response, body=body)
    return cls(message, request, body=body)


def sdk_http_module() -> Any:
    """The HTTP library the installed openai uses for its requests and responses (httpx2 from
    openai 3, httpx before): replayed errors and raw responses are built with it."""
    from openai import _base_client

    return getattr(_base_client, "httpx2", None) or importlib.import_module("httpx")
