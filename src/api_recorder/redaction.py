"""Keeping credentials out of recordings, which are committed and reviewed in public.

Headers are never stored at all. What remains is scrubbed before it is hashed and written:
values of fields named like credentials (``api_key``, ``token``, ``authorization``...), URL
user-info and credential-like query parameters, strings that look like OpenAI or Tavily keys or
bearer tokens, and whatever the user's own rules (regexes or callables) catch. Hashing the
scrubbed request means a recording made with one key replays with another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
SECRET_FIELD = re.compile(
    r"^(x[-_])?(api[-_]?key|apikey|secret|client[-_]secret|(access|refresh|auth|id|session)?[-_]?token"
    r"|password|passwd|authorization|credentials?)$",
    re.IGNORECASE,
)
SECRET_VALUES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI keys (sk-..., sk-proj-...)
    re.compile(r"\btvly-[A-Za-z0-9_\-]{10,}"),  # Tavily keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),  # bearer tokens
)


class Redactor:
    """Scrubs requests and responses; built from the user's ``redact=[...]`` rules plus defaults."""

    def __init__(self, rules: Iterable[str | re.Pattern[str] | Callable[[Any], Any]] = ()) -> None:
        self.patterns: list[re.Pattern[str]] = list(SECRET_VALUES)
        self.functions: list[Callable[[Any], Any]] = []
        for rule in rules:
            if isinstance(rule, (str, re.Pattern)):
                self.patterns.append(re.compile(rule))
            elif callable(rule):
                self.functions.append(rule)
            else:
                raise TypeError(f"redact rules are regexes or callables, not {type(rule).__name__}: {rule!r}")

    def scrub(self, value: Any) -> Any:
        """``value`` (JSON data) with credentials replaced by ``<redacted>``, then the user's callables."""
        value = self._scrub(value)
        for function in self.functions:
            value = function(value)
        return value

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for pattern in self.patterns:
                if pattern.search(value):
                    value = pattern.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            return {key: REDACTED if _is_secret_field(key, item) else self._scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        return value

    def url(self, url: str) -> str:
        """A URL without user-info and with credential-like query values redacted."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        query = urlencode(
            [(name, REDACTED if _is_secret_parameter(name) else value) for name, value in parse_qsl(parts.query)]
        )
        return self._scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _is_secret_field(name: Any, value: Any) -> bool:
    return isinstance(name, str) and isinstance(value, str) and bool(value) and bool(SECRET_FIELD.match(name))


def _is_secret_parameter(name: str) -> bool:
    """Query parameters: the credential field names, plus ``key`` (Google-style ``?key=``)."""
    return name.lower() in ("key", "sig", "signature") or bool(SECRET_FIELD.match(name))


def redact_query(parameters: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with credential-like values (``?key=``, ``?api_key=``) redacted."""
    return {name: REDACTED if _is_secret_parameter(str(name)) else value for name, value in parameters.items()}
