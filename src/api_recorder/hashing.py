"""From a request to the hash that names its recording file.

The hash must be the one llama-stack (now OGX) computes for the same call, byte for byte, or a
llama-stack recording would not be found: sha256 over ``json.dumps(..., sort_keys=True)`` (the
standard library's separators and ASCII escaping) of ``{"method", "endpoint", "body", "test_id"}``,
with no test id for model-list endpoints. The body is normalized first, and llama-stack has
changed how over time; both rule sets are kept so that files written under either are found:

- ``NEWEST`` (written here): floats rounded to 5 places and decimal numbers inside strings
  likewise; inside every string, file-search scores (``score: __NORMALIZED__``), attribute dicts
  (removed), UUID document ids (``document_id: __NORMALIZED__``) and UUID citations
  (``<|__NORMALIZED__|>``); ``project_id`` dropped from an ``extra_body`` or ``extra_query`` dict.
- ``OLDER``: the float rounding alone.

User normalizers run before either, on the body that is both stored and hashed; the rules above
are applied to the hashed copy only (as llama-stack does), and they are idempotent, so a recording
file always re-hashes to its own name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import msgspec

FLOAT_IN_STRING = re.compile(r"(-?\d+\.\d{4,})")
SHARED_ENDPOINTS = frozenset({"/api/tags", "/v1/models", "/v1/openai/v1/models"})

_UUID = r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
FILE_SEARCH_RULES = (  # (pattern, replacement), in llama-stack's order
    (re.compile(r"score:\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?"), "score: __NORMALIZED__"),
    (re.compile(r",?\s*attributes:\s*\{[^}]*\}"), ""),
    (re.compile(rf"document_id:\s*{_UUID}"), "document_id: __NORMALIZED__"),
    (re.compile(rf"<\|{_UUID}\|>"), "<|__NORMALIZED__|>"),
)
PROVIDER_CONFIG_KEYS = ("extra_body", "extra_query")  # their project_id differs between record and replay


def _round_floats_in_string(text: str) -> str:
    return FLOAT_IN_STRING.sub(lambda m: f"{float(m.group(0)):.5f}", text)


def _normalize_file_search_metadata(text: str) -> str:
    """Vector-search scores, attributes, document ids and citations pasted into prompts vary per run."""
    for pattern, replacement in FILE_SEARCH_RULES:
        text = pattern.sub(replacement, text)
    return text


def stabilize(value: Any, *, drop_stream_options: bool = False) -> Any:
    """The older rules: round floats (and decimals written inside strings).

    Search scores pasted into prompts by tools differ in their last digits from run to run.
    """
    return _stabilized(value, newest=False, drop_stream_options=drop_stream_options, is_root=True)


def stabilize_newest(value: Any, *, drop_stream_options: bool = False) -> Any:
    """The newest rules, as llama-stack's ``_normalize_body_for_hash`` applies them.

    Its quirks are kept for byte-exact hashes: ``project_id`` is dropped from the provider-config
    dicts of the top-level body *and* of every dict that is a list item (llama-stack treats both
    as a root), and ``stream_options`` only at the top.
    """
    return _stabilized(value, newest=True, drop_stream_options=drop_stream_options, is_root=True)


def _stabilized(value: Any, *, newest: bool, drop_stream_options: bool, is_root: bool) -> Any:
    if isinstance(value, dict):
        out = {
            key: _stabilized(item, newest=newest, drop_stream_options=False, is_root=False)
            for key, item in value.items()
        }
        if drop_stream_options:
            out.pop("stream_options", None)
        if newest and is_root:
            for name in PROVIDER_CONFIG_KEYS:
                extra = out.get(name)
                if isinstance(extra, dict):
                    extra.pop("project_id", None)
        return out
    if isinstance(value, (list, tuple)):
        return [_stabilized(item, newest=newest, drop_stream_options=False, is_root=True) for item in value]
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, str):
        return _round_floats_in_string(_normalize_file_search_metadata(value) if newest else value)
    return value


NEWEST = stabilize_newest
OLDER = stabilize


_sha256 = hashlib.sha256  # OpenSSL looks the digest up on its first use (about 50 µs): done here, as
_sha256(b"")  # the engine loads, rather than in the first replayed call of the process


def sha256_of(document: dict[str, Any]) -> str:
    return _sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


_encode = msgspec.json.Encoder().encode
# Whatever either rule set could change shows in the body's JSON text (msgspec's, where neither
# "." nor these words are ever escaped): a float, or a decimal inside a string, is a digit then "."
# or an exponent; the file-search rules need their literal words; NEWEST drops project_id.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NUMBER_MARK = re.compile(rb"0[.eE]").search  # on the text with every digit made 0
_RULE_WORD = re.compile(rb"score:|attributes:|document_id:|<\||project_id").search
_ANY_DIGIT_POINT = re.compile(r"\d\.").search  # FLOAT_IN_STRING's \d takes every script's digits


def untouched_by_rules(body: Any, *, drop_stream_options: bool = False) -> bool:
    """Whether neither ``NEWEST`` nor ``OLDER`` can change ``body``: a few substring scans of its
    JSON (in C) instead of two walks of it in Python. False when unsure (the rules then run)."""
    try:
        text = _encode(body)
    except (TypeError, ValueError, OverflowError, RecursionError):  # msgspec.EncodeError is a ValueError
        return False
    if drop_stream_options and b"stream_options" in text:
        return False
    if _NUMBER_MARK(text.translate(_DIGITS_AS_ZERO)) is not None or _RULE_WORD(text) is not None:
        return False
    return text.isascii() or _ANY_DIGIT_POINT(text.decode()) is None


@lru_cache(maxsize=256)
def _url_parts(url: str) -> tuple[str, bool]:
    """The endpoint (the URL's path) and whether Bedrock's stream_options are dropped."""
    parsed = urlparse(url)
    # Bedrock's OpenAI endpoint adds stream_options that vary run to run (as llama-stack found).
    return parsed.path, "bedrock" in parsed.netloc


def _hashed_bodies(body: Any, bedrock: bool, rule_sets: tuple[Any, ...]) -> list[Any]:
    """``body`` under each rule set; a body no rule can change is hashed as it is."""
    if untouched_by_rules(body, drop_stream_options=bedrock):
        return [body] * len(rule_sets)
    return [rules(body, drop_stream_options=bedrock) for rules in rule_sets]


def _document_hash(method: str, endpoint: str, body: Any, test_id: str | None, with_test_id: bool) -> str:
    document: dict[str, Any] = {"method": method.upper(), "endpoint": endpoint, "body": body}
    if with_test_id:
        document["test_id"] = test_id
    return sha256_of(document)


def inference_hash(
    method: str,
    url: str,
    body: dict[str, Any],
    test_id: str | None,
    *,
    shared: bool = False,
    rules: Any = NEWEST,
) -> str:
    """llama-stack's ``normalize_inference_request``: the hash of one HTTP-level call.

    ``shared`` calls (model lists) leave the test id out, so that every test finds them.
    ``rules`` is ``NEWEST`` (what is written) or ``OLDER`` (files written before it).
    """
    endpoint, bedrock = _url_parts(url)
    (hashed,) = _hashed_bodies(body, bedrock, (rules,))
    return _document_hash(method, endpoint, hashed, test_id, not shared and endpoint not in SHARED_ENDPOINTS)


def inference_hashes(
    method: str, url: str, body: dict[str, Any], test_id: str | None, *, shared: bool = False
) -> list[str]:
    """The newest hash first, then the older one when it differs: every name a file may have."""
    return request_hashes(method, url, body, test_id, shared=shared, with_test_id_too=False)


def request_hashes(
    method: str, url: str, body: dict[str, Any], test_id: str | None, *, shared: bool, with_test_id_too: bool
) -> list[str]:
    """:func:`inference_hashes`, and for a shared call with ``with_test_id_too`` the names it has
    when hashed with the test id after them (llama-stack's model-list files): the rules run and
    the body is encoded once, and a body they leave alone is hashed once per document."""
    endpoint, bedrock = _url_parts(url)
    bodies = _hashed_bodies(body, bedrock, (NEWEST, OLDER))
    always_shared = endpoint in SHARED_ENDPOINTS
    variants = [not shared and not always_shared]
    if shared and with_test_id_too and not always_shared:
        variants.append(True)
    names: list[str] = []
    for with_test_id in variants:
        newest = _document_hash(method, endpoint, bodies[0], test_id, with_test_id)
        names.append(newest)
        if bodies[1] is not bodies[0] and bodies[1] != bodies[0]:
            names.append(_document_hash(method, endpoint, bodies[1], test_id, with_test_id))
    return list(dict.fromkeys(names))


def tool_hash(provider: str, tool_name: str, kwargs: dict[str, Any], test_id: str | None) -> str:
    """The hash of a tool call: llama-stack's document plus the test id for isolation."""
    stable = kwargs if untouched_by_rules(kwargs) else stabilize(kwargs)
    document: dict[str, Any] = {"provider": provider, "tool_name": tool_name, "kwargs": stable}
    if test_id is not None:
        document["test_id"] = test_id
    return sha256_of(document)


def http_hash(url: str, method: str, payload: Any, test_id: str | None) -> str:
    """llama-stack's ``normalize_http_request``: raw HTTP calls (``/v1/messages``, rerankers)."""
    stable = payload if untouched_by_rules(payload) else NEWEST(payload)
    return sha256_of({"test_id": test_id, "url": url, "method": method.upper(), "payload": stable})


def legacy_tool_hash(provider: str, tool_name: str, kwargs: dict[str, Any]) -> str:
    """llama-stack's ``normalize_tool_request``, which has no test id: its files replay too."""
    return sha256_of({"provider": provider, "tool_name": tool_name, "kwargs": kwargs})


@dataclass(frozen=True)
class Normalizer:
    """A rule that makes a request value that varies run to run hash the same every time.

    Build one with :meth:`regex` (every match in every string becomes ``placeholder``) or
    :meth:`ignore` (a dotted path into the body, ``*`` matching any key or list item, whose value
    is removed). Normalized values are what the recording file stores, so a file always
    re-hashes to its own name.
    """

    pattern: re.Pattern[str] | None = None
    placeholder: str = ""
    path: tuple[str, ...] = ()

    @classmethod
    def regex(cls, pattern: str | re.Pattern[str], placeholder: str = "<normalized>") -> Normalizer:
        return cls(pattern=re.compile(pattern), placeholder=placeholder)

    @classmethod
    def ignore(cls, path: str) -> Normalizer:
        if not path.strip():
            raise ValueError("Normalizer.ignore needs a dotted path such as 'metadata.request_id'.")
        return cls(path=tuple(path.split(".")))

    def apply(self, value: Any) -> Any:
        if self.pattern is not None:
            return _replace_matches(value, self.pattern, self.placeholder)
        return _drop_path(value, self.path)


def _replace_matches(value: Any, pattern: re.Pattern[str], placeholder: str) -> Any:
    if isinstance(value, str):
        return pattern.sub(placeholder, value)
    if isinstance(value, dict):
        return {key: _replace_matches(item, pattern, placeholder) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_matches(item, pattern, placeholder) for item in value]
    return value


def _drop_path(value: Any, path: tuple[str, ...]) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if head in ("*", key):
                if not rest:
                    continue
                item = _drop_path(item, rest)
            out[key] = item
        return out
    if isinstance(value, list) and (head == "*" or head.isdigit()):
        picked = None if head == "*" else int(head)
        return [
            _drop_path(item, rest) if rest and picked in (None, index) else item
            for index, item in enumerate(value)
            if rest or picked not in (None, index)
        ]
    return value


def apply_normalizers(body: dict[str, Any], normalizers: Iterable[Normalizer]) -> dict[str, Any]:
    for normalizer in normalizers:
        body = normalizer.apply(body)
    return body
