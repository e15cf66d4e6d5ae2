"""Keeping credentials out of recordings, which are committed and reviewed in public.

Headers are never stored at all. What remains is scrubbed before it is hashed and written, and
requests and answers are scrubbed differently:

- a request (body, tool arguments, URL) loses the values of fields named like credentials
  (:func:`is_credential_name`: ``api_key``, ``openai_api_key``, ``clientSecret``, ``X-Api-Key``,
  ``refresh_token``, ``password``...), URL user-info and credential-like query parameters, and
  every key-shaped string;
- an answer (response body, tool result, recorded error) loses key-shaped strings only, never a
  value because of its field's name: what replays is what the caller got live (a tool result's
  ``"credentials": "MD, PhD"`` is data).

Key-shaped strings (:data:`KEY_SHAPES`: OpenAI keys, Tavily keys, bearer tokens) are replaced in
values and in dict keys alike. The user's rules run on both sides: regexes, the opt-in presets
of :class:`Redact` (AWS key ids, JWTs, DSN passwords, raw 40-character tokens) and callables.
Hashing the scrubbed request means a recording made with one key replays with another.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

REDACTED = "<redacted>"


# -- key-shaped strings --------------------------------------------------------------------------


class KeyShape:
    """A rule finding strings shaped like a credential: a regex for candidates, a check for each.

    The part of a match named ``secret`` (the whole match when the pattern has no such group, or
    it did not take part) becomes ``<redacted>``. ``check(token)`` sees the ``token`` group (else
    the secret) and keeps candidates that only look like keys (a slug, a voice name). Presets are
    passed in ``redact=[...]`` as these objects, never by name: a string there is a regex.
    """

    __slots__ = ("_compiled", "_source", "check", "marker", "name")

    def __init__(
        self, name: str, pattern: str, check: Callable[[str], bool] | None = None, *, marker: str | None = None
    ) -> None:
        self.name = name
        self._source = pattern
        self._compiled: re.Pattern[str] | None = None
        self.check = check
        self.marker = marker
        """Lower-case text that every match holds: text without it is not searched (and the regex
        is not even compiled: most texts, URLs included, never pay for it)."""

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled regex, compiled when first needed (not at import: start-up stays short)."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self._source)
        return compiled

    def sub(self, text: str, lowered: str | None = None) -> str:
        """``text`` with this shape's matches redacted; ``lowered`` is ``text.lower()`` when the
        caller already has it."""
        if self.marker is not None and self.marker not in (text.lower() if lowered is None else lowered):
            return text
        if self.pattern.search(text) is None:
            return text
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        groups = self.pattern.groupindex
        secret = "secret" if "secret" in groups and match.group("secret") is not None else 0
        token = "token" if "token" in groups and match.group("token") is not None else secret
        if self.check is not None and not self.check(match.group(token)):
            return match.group(0)
        start, end = match.span(secret)
        whole, offset = match.group(0), match.start()
        return whole[: start - offset] + REDACTED + whole[end - offset :]

    def __repr__(self) -> str:
        return f"<api_recorder redaction rule {self.name}>"


_WORD_LIKE = r"[a-z]+[0-9]{0,2}|(?:[A-Z][a-z]+)+[0-9]{0,2}|[A-Z]{1,4}|[0-9]{1,8}"  # compiled on first use


def looks_generated(token: str) -> bool:
    """Whether ``token`` looks machine-made rather than written: not a run of words.

    ``learn-version-2-released`` or ``SK-ViktoriaMultilingualNeural2`` (every part a word,
    lower-case or capitalized, camel-cased words, a short acronym, a number) is written; one
    unbroken run (``HEADERFAKEKEY5555``) or random parts (``Ab3x_9Qz...``) are not.
    """
    parts = [part for part in re.split(r"[-_./~+=]+", token) if part]
    return len(parts) < 2 or not all(re.fullmatch(_WORD_LIKE, part) for part in parts)


def _looks_like_openai_key(token: str) -> bool:
    """A digit (or 40 characters and more, as legacy keys have), not a run of words, and not a
    Slovak voice name (``sk-SK-...``: no OpenAI key starts so)."""
    if token.startswith("SK-"):
        return False
    return (len(token) >= 40 or any(char.isdigit() for char in token)) and looks_generated(token)


def _has_letter_and_digit(token: str) -> bool:
    return any(char.isdigit() for char in token) and any(char.isalpha() for char in token)


_NOT_AFTER = r"(?<![A-Za-z0-9_-])"  # sk- inside task-sk-force or desk-... is no key's start

OPENAI_KEYS = KeyShape(
    "OPENAI_KEYS",
    _NOT_AFTER + r"sk-(?:(?:proj|svcacct|admin)-)?(?P<token>[A-Za-z0-9_-]{20,})",
    _looks_like_openai_key,
    marker="sk-",
)
"""OpenAI keys: ``sk-`` (``sk-proj-``, ``sk-svcacct-``, ``sk-admin-``) and 20 or more of
``[A-Za-z0-9_-]`` with a digit (or 40 and more), not a run of words (``sk-SK-ViktoriaNeural``,
``sk-learn-version-2-notes`` stay). Anthropic's ``sk-ant-...`` keys have this shape too."""

TAVILY_KEYS = KeyShape("TAVILY_KEYS", _NOT_AFTER + r"tvly-(?:(?:dev|prod)-)?[A-Za-z0-9]{20,}", marker="tvly-")
"""Tavily keys: ``tvly-`` (``tvly-dev-``, ``tvly-prod-``) and 20 or more letters and digits."""

BEARER_TOKENS = KeyShape(
    "BEARER_TOKENS",
    r"(?i)(?<![A-Za-z0-9])bearer\s+(?P<token>[A-Za-z0-9._~+/-]{16,}=*)",
    looks_generated,
    marker="bearer",
)
"""``Bearer`` and a token of 16 or more token characters that is not a run of words ("the bearer
of bad news" stays)."""

GOOGLE_API_KEYS = KeyShape("GOOGLE_API_KEYS", _NOT_AFTER + r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])", marker="aiza")
"""Google API keys (Gemini API, Vertex express mode): ``AIza`` and 35 of ``[0-9A-Za-z_-]``."""

KEY_SHAPES: tuple[KeyShape, ...] = (OPENAI_KEYS, TAVILY_KEYS, BEARER_TOKENS, GOOGLE_API_KEYS)
"""Always scrubbed, in requests and answers, values and dict keys."""

VALUE_MARKERS = tuple(shape.marker for shape in KEY_SHAPES if shape.marker)  # each shape's, lower-case
_VALUE_MARKER_BYTES = tuple(marker.encode() for marker in VALUE_MARKERS)


class Redact:
    """Opt-in redaction presets, for shapes too common in ordinary data to scrub by default.

    Pass the objects themselves: ``enable(redact=[Redact.AWS_KEYS, Redact.JWTS])``, or every
    one with ``redact=[*Redact.ALL]``. A string in ``redact`` is always a regex; a string that
    names a preset (``"aws"``, ``"jwt"``...) is refused rather than taken as the literal text.
    """

    AWS_KEYS = KeyShape(
        "AWS_KEYS",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Z0-9])"
        r"|(?i:aws.?secret.?access.?key)[\s\"':=]{1,6}(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    )
    """AWS access key ids (``AKIA...``, ``ASIA...``: 4 letters and 16 more), and the 40-character
    secret that follows ``aws_secret_access_key`` in text (``= ``, ``": "``); a secret alone
    is a raw 40-character token: :attr:`TOKENS_40`."""

    JWTS = KeyShape("JWTS", _NOT_AFTER + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
    """JSON Web Tokens: ``eyJ...`` header, ``.eyJ...`` payload, ``.`` signature (base64url)."""

    DSN_PASSWORDS = KeyShape("DSN_PASSWORDS", r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\"']*:(?P<secret>[^\s/?#@\"']+)@")
    """The password of a URL or DSN with user-info: ``postgres://user:<redacted>@host/db``."""

    TOKENS_40 = KeyShape(
        "TOKENS_40", r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+_-]{40}(?![A-Za-z0-9/+=_-])", _has_letter_and_digit
    )
    """Any token of exactly 40 letters, digits and ``/+_-`` with a letter and a digit: AWS
    secret keys, GitHub classic tokens, 40-hex tokens, and git commit ids too (hence opt-in)."""

    ALL: tuple[KeyShape, ...] = (AWS_KEYS, JWTS, DSN_PASSWORDS, TOKENS_40)
    """Every preset: ``redact=[*Redact.ALL]``."""


PRESETS: dict[str, KeyShape] = {preset.name: preset for preset in Redact.ALL}
_PRESET_ALIASES = {"aws", "awskeys", "jwt", "jwts", "dsn", "dsns", "dsnpasswords", "hex40", "tokens40", "token40"}


# -- credential names ----------------------------------------------------------------------------

_NAME_WORD = r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+"  # compiled on first use
ALWAYS_WORDS = (
    "secret",
    "secrets",
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "credential",
    "credentials",
    "authorization",
)  # a word equal to or ending in one of these (clientsecret, dbpassword) names a credential
LAST_WORDS = frozenset({"auth", "cookie", "cookies", "jwt"})  # credentials when they end the name
SERVICES = frozenset(
    {"openai", "tavily", "anthropic", "cohere", "mistral", "groq", "gemini", "google", "azure", "aws", "gcp"}
    | {"github", "gh", "gitlab", "hf", "huggingface", "npm", "pypi", "slack", "bot", "discord", "telegram"}
    | {"stripe", "notion", "pinecone", "langsmith", "wandb", "serpapi", "together", "fireworks", "replicate"}
)
KEY_QUALIFIERS = SERVICES | {
    "api",
    "private",
    "secret",
    "access",
    "signing",
    "encryption",
    "master",
    "client",
    "subscription",
    "account",
    "session",
    "auth",
    "shared",
    "app",
    "service",
    "license",
    "admin",
    "webhook",
}  # "<qualifier> key": api_key, private_key, aws_secret_access_key; a bare "key" is data
TOKEN_QUALIFIERS = SERVICES | {
    "access",
    "refresh",
    "auth",
    "id",
    "session",
    "api",
    "bearer",
    "private",
    "oauth",
    "csrf",
    "xsrf",
    "security",
    "secret",
    "client",
    "app",
    "service",
    "personal",
}  # "<qualifier> token": access_token, idToken, GITHUB_TOKEN; token, max_tokens, prompt_tokens are data
NAME_MARKERS = ("secret", "passw", "passphrase", "credential", "auth", "cookie", "jwt", "key", "token")
"""Substrings one of which a credential name always holds (lower-cased): the pre-check's."""


@functools.lru_cache(maxsize=4096)
def is_credential_name(name: str) -> bool:
    """Whether a field named ``name`` holds a credential.

    The name is split into words (snake, camel, kebab case, acronyms: ``X-Api-Key``, ``APIKey``,
    ``OPENAI_API_KEY``, ``clientSecret``), and names a credential when a word is or ends in one
    of :data:`ALWAYS_WORDS` (secret, password, passwd, passphrase, credential(s),
    authorization), when it ends in ``auth``, ``cookie`` or ``jwt``, or when ``key(s)`` or
    ``token(s)`` follows a qualifier (``api_key``, ``private_key``, ``access_token``,
    ``github_token``; fused too: ``apikey``, ``accessToken``). ``token``, ``tokens``,
    ``max_tokens``, ``token_count``, ``key``, ``primary_key``, ``page_token`` are data.
    """
    words = [word.lower() for word in re.findall(_NAME_WORD, name) if not word.isdigit()]
    if not words:
        return False
    if words[-1] in LAST_WORDS or any(word.endswith(ALWAYS_WORDS) for word in words):
        return True
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        for nouns, qualifiers in ((("key", "keys"), KEY_QUALIFIERS), (("token", "tokens"), TOKEN_QUALIFIERS)):
            if word in nouns:
                if previous in qualifiers:
                    return True
            elif any(word.endswith(noun) and word[: -len(noun)] in qualifiers for noun in nouns):
                return True
    return False


# -- the redactor --------------------------------------------------------------------------------

RedactRule: TypeAlias = "str | re.Pattern[str] | KeyShape | Callable[[Any], Any]"
"""One ``redact=[...]`` rule: a regex (text or compiled), a preset of :class:`Redact`, or a
callable taking and returning JSON data."""


class Redactor:
    """Scrubs requests and answers; built from the user's ``redact=[...]`` rules plus defaults.

    Rules: regexes (strings or compiled; every match becomes ``<redacted>``), presets of
    :class:`Redact`, and callables (JSON data in, JSON data out, run last).
    """

    def __init__(self, rules: Iterable[Any] = ()) -> None:
        self.user_patterns: list[re.Pattern[str]] = []
        self.presets: list[KeyShape] = []
        self.functions: list[Callable[[Any], Any]] = []
        if isinstance(rules, (str, bytes, re.Pattern, KeyShape)) or callable(rules):
            raise TypeError(
                f"redact takes a list of rules, not one rule: write redact=[{rules!r}] "
                "(a string alone would be read as one regex per character)."
            )
        for rule in rules:
            if isinstance(rule, KeyShape):
                self.presets.append(rule)
            elif isinstance(rule, str):
                _refuse_preset_name(rule)
                self.user_patterns.append(re.compile(rule))
            elif isinstance(rule, re.Pattern):
                self.user_patterns.append(rule)
            elif callable(rule):
                self.functions.append(rule)
            else:
                raise TypeError(
                    "redact rules are regexes, presets of api_recorder.Redact or callables, "
                    f"not {type(rule).__name__}: {rule!r}"
                )
        self.shapes: list[KeyShape] = [*KEY_SHAPES, *self.presets]

    def scrub_request(self, value: Any) -> Any:
        """A request (body, tool arguments) as it is hashed and stored: values of fields named like
        credentials, key-shaped strings (values and dict keys) and the user's rules scrubbed."""
        return self._scrub(value, by_name=True)

    def scrub_answer(self, value: Any) -> Any:
        """An answer (response body, tool result, error) as it is stored and replayed: key-shaped
        strings (values and dict keys) and the user's rules scrubbed, nothing by field name."""
        return self._scrub(value, by_name=False)

    def scrub_answer_chunks(self, chunks: list[bytes], start: int = 0, stop: int | None = None) -> None:
        """Stream chunks, each the compact JSON of one answer, scrubbed in place (``chunks[start:stop]``)
        as :meth:`scrub_answer` would scrub them; a chunk with nothing to scrub keeps its bytes.

        The user's callables are not run: they see a stream's whole answer, not chunk by chunk.
        The chunks are checked together for the built-in shapes' markers, then one by one where
        one was seen. The check lower-cases bytes, ASCII only: no other character lower-cases into
        a marker that a built-in shape would then match (they match the ASCII text literally, and
        bearer's ``(?i)`` has no non-ASCII equivalents for its letters).
        """
        stop = len(chunks) if stop is None else stop
        if not (self.user_patterns or self.presets) and not _has_marker(b"\n".join(chunks[start:stop])):
            return
        for index in range(start, stop):
            data = chunks[index]
            if self.user_patterns or self.presets or _has_marker(data):
                chunks[index] = _encode(self._walk(_decode(data), False))

    def scrub(self, value: Any) -> Any:
        """The request-side scrubbing (:meth:`scrub_request`), under its former name."""
        return self._scrub(value, by_name=True)

    def _scrub(self, value: Any, *, by_name: bool) -> Any:
        """The structure is walked only when its JSON text shows something to scrub: a 200-chunk
        stream is checked by a few substring scans in C rather than string by string in Python.
        When only a credential name may be there, the walk looks at dict keys, not at strings."""
        texts, names = self._might_hold(value, by_name)
        if texts or names:
            value = self._walk(value, by_name, texts=texts)
        for function in self.functions:
            value = function(value)
        return value

    def _might_hold_secrets(self, value: Any, by_name: bool) -> bool:
        """Whether the walk is needed at all (see :meth:`_might_hold`)."""
        return any(self._might_hold(value, by_name))

    def _might_hold(self, value: Any, by_name: bool) -> tuple[bool, bool]:
        """Whether strings must be scrubbed, and whether names must be looked at.

        The user's regexes and presets always ask for strings; the built-in rules only when the
        JSON text holds one of their markers (plain substring tests, no regex on the encoded text,
        whose escapes a pattern would not expect): each key shape starts with a literal marker
        (VALUE_MARKERS), and each credential name holds one of NAME_MARKERS.
        """
        if self.user_patterns or self.presets:
            return True, by_name
        try:
            lowered = _encode(value).decode("utf-8").lower()
        except (TypeError, UnicodeDecodeError, msgspec.EncodeError):
            return True, by_name
        texts = any(marker in lowered for marker in VALUE_MARKERS)
        return texts, by_name and any(marker in lowered for marker in NAME_MARKERS)

    def _walk(self, value: Any, by_name: bool, *, texts: bool = True) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value) if texts else value
        if isinstance(value, dict):
            items = {
                key: _redacted(item) if by_name and isinstance(key, str) and is_credential_name(key) else item
                for key, item in value.items()
            }
            walked = {key: self._walk(item, by_name, texts=texts) for key, item in items.items()}
            return self._with_keys_scrubbed(walked) if texts else walked
        if isinstance(value, list):
            return [self._walk(item, by_name, texts=texts) for item in value]
        return value

    def scrub_text(self, text: str) -> str:
        """One string with every key-shaped part and every match of the user's regexes redacted."""
        lowered = text.lower()
        for shape in self.shapes:
            scrubbed = shape.sub(text, lowered)
            if scrubbed is not text:
                text, lowered = scrubbed, scrubbed.lower()
        for pattern in self.user_patterns:
            if pattern.search(text):
                text = pattern.sub(REDACTED, text)
        return text

    def _with_keys_scrubbed(self, value: dict[Any, Any]) -> dict[Any, Any]:
        """``value`` with key-shaped dict keys redacted; two that collide stay two
        (``<redacted>``, ``<redacted-2>``), and never take the name of a key left as it was."""
        renamed = {key: self.scrub_text(key) for key in value if isinstance(key, str)}
        if all(renamed[key] == key for key in renamed):
            return value
        taken = {key for key in value if renamed.get(key, key) == key}
        result: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = renamed.get(key, key)
            if new_key != key:
                new_key = _unique(new_key, taken)
                taken.add(new_key)
            result[new_key] = item
        return result

    def url(self, url: str) -> str:
        """A URL without user-info and with credential-like query values redacted.

        A URL with no secret to remove is kept as written (``vertexai:///generate_content`` keeps
        the empty host that joining its parts again would drop).
        """
        parts = urlsplit(url)
        if "@" not in parts.netloc and not parts.query:
            return self.scrub_text(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        query = urlencode(
            [(name, REDACTED if _is_secret_parameter(name) else value) for name, value in parse_qsl(parts.query)]
        )
        return self.scrub_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _has_marker(data: bytes) -> bool:
    """Whether JSON text holds a built-in shape's marker (see :meth:`Redactor.scrub_answer_chunks`)."""
    lowered = data.lower()
    return any(marker in lowered for marker in _VALUE_MARKER_BYTES)


def _redacted(value: Any) -> Any:
    """The value of a credential-named field: every non-empty string in it redacted."""
    if isinstance(value, str):
        return REDACTED if value else value
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def _unique(name: str, taken: set[Any]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        marker = f"<redacted-{number}>"
        candidate = name.replace(REDACTED, marker, 1) if REDACTED in name else f"{name}-{number}"
    return candidate


def _refuse_preset_name(rule: str) -> None:
    if rule.lower().replace("_", "").replace("-", "") in _PRESET_ALIASES:
        raise ValueError(
            f"redact rule {rule!r} is a string, and a string is a regex matching that very text; for the "
            f"preset pass the object, one of {', '.join('api_recorder.Redact.' + name for name in PRESETS)}, "
            f"or re.compile({rule!r}) if the regex is what you mean."
        )


def _is_secret_parameter(name: str) -> bool:
    """Query parameters: the credential field names, plus ``key`` (Google-style ``?key=``)."""
    return name.lower() in ("key", "sig", "signature") or is_credential_name(name)


def redact_query(parameters: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with credential-like values (``?key=``, ``?api_key=``) redacted."""
    return {name: REDACTED if _is_secret_parameter(str(name)) else value for name, value in parameters.items()}
