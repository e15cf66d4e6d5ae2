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

import msgspec

REDACTED = "<redacted>"
SECRET_FIELD = re.compile(
    r"^(x[-_])?(api[-_]?key|apikey|secret|client[-_]secret|(access|refresh|auth|id|session|api|bearer)[-_]?token"
    r"|password|passwd|authorization|credentials?)$",
    re.IGNORECASE,
)  # a bare "token" is data (logprobs carry one per token), not a credential
FIELD_MARKERS = ('key"', 'secret"', 'token"', 'password"', 'passwd"', 'authorization"', "credential")
VALUE_MARKERS = ("sk-", "tvly-", "bearer")
SECRET_VALUES = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI keys (sk-..., sk-proj-...)
    re.compile(r"\btvly-[A-Za-z0-9_\-]{10,}"),  # Tavily keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),  # bearer tokens
)


class Redactor:
    """Scrubs requests and responses; built from the user's ``redact=[...]`` rules plus defaults."""

    def __init__(self, rules: Iterable[str | re.Pattern[str] | Callable[[Any], Any]] = ()) -> None:
        self.user_patterns: list[re.Pattern[str]] = []
        self.functions: list[Callable[[Any], Any]] = []
        for rule in rules:
            if isinstance(rule, (str, re.Pattern)):
                self.user_patterns.append(re.compile(rule))
            elif callable(rule):
                self.functions.append(rule)
            else:
                raise TypeError(f"redact rules are regexes or callables, not {type(rule).__name__}: {rule!r}")
        self.patterns = [*SECRET_VALUES, *self.user_patterns]

    def scrub(self, value: Any) -> Any:
        """``value`` (JSON data) with credentials replaced by ``<redacted>``, then the user's callables.

        The structure is walked only when its JSON text shows something to scrub: a 200-chunk
        stream is checked by a few regex scans in C rather than string by string in Python.
        """
        if self._might_hold_secrets(value):
            value = self._scrub(value)
        for function in self.functions:
            value = function(value)
        return value

    def _might_hold_secrets(self, value: Any) -> bool:
        """Whether the walk is needed: the user's rules always ask for it; the built-in ones only
        when the JSON text contains one of their markers (plain substring tests, no regex on the
        encoded text, whose escapes a pattern would not expect)."""
        if self.user_patterns:
            return True
        try:
            lowered = _encode(value).decode("utf-8").lower()
        except (TypeError, msgspec.EncodeError):
            return True
        return any(marker in lowered for marker in FIELD_MARKERS + VALUE_MARKERS)

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


_encode = msgspec.json.Encoder().encode


def _is_secret_field(name: Any, value: Any) -> bool:
    return isinstance(name, str) and isinstance(value, str) and bool(value) and bool(SECRET_FIELD.match(name))


def _is_secret_parameter(name: str) -> bool:
    """Query parameters: the credential field names, plus ``key`` (Google-style ``?key=``)."""
    return name.lower() in ("key", "sig", "signature") or bool(SECRET_FIELD.match(name))


def redact_query(parameters: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with credential-like values (``?key=``, ``?api_key=``) redacted."""
    return {name: REDACTED if _is_secret_parameter(str(name)) else value for name, value in parameters.items()}
