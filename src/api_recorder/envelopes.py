"""Typed objects in and out of recording files: ``{"__type__": ..., "__data__": ...}``.

Objects are dumped with pydantic (``model_dump(mode="json", exclude_unset=True)``: exactly the
fields the server sent, so a replayed object dumps, and hashes when passed back in a later
request, like the live one did) and rebuilt into the very same class. A ``__type__`` is resolved
through an allow-list, never by importing whatever dotted path a file names: recordings come from
pull requests, and a file must not be able to run code.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from typing import Any

import msgspec

from .errors import RecordingFileError, TypeNotInstalledError
from .integrations import TYPE_PREFIXES

ALLOWED_MODULE_PREFIXES = TYPE_PREFIXES
NORMALIZED_CREATED_AT = "1970-01-01T00:00:00.000000Z"
NESTED_ANSWERS = ("response", "message")
"""Fields of stream events that carry the whole answer, whose id is the answer's: OpenAI's
Responses events (``response``), Anthropic's ``message_start`` (``message``)."""


class Envelope(msgspec.Struct):
    """One stored object; ``data`` stays raw JSON until a class validates it in one pass."""

    type: str = msgspec.field(name="__type__")
    data: msgspec.Raw = msgspec.field(name="__data__")


_decode_envelope = msgspec.json.Decoder(Envelope).decode
_decode_any = msgspec.json.Decoder().decode
decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


def envelope_data(raw: msgspec.Raw | bytes) -> bytes:
    """The ``__data__`` JSON of one stored envelope (what the server sent); other JSON as it is.

    Cheap: no object is built. Raw-response replays serve these bytes as the HTTP body.
    """
    try:
        return bytes(_decode_envelope(raw).data)
    except msgspec.DecodeError:  # not an envelope (ValidationError is a DecodeError)
        return bytes(raw)


class TypeRegistry:
    """The classes a recording may name: SDK types by module prefix, plus the user's own."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Allow ``cls`` in recordings (usable as a class decorator)."""
        self._classes[type_name(cls)] = cls
        return cls

    def registered(self, name: str) -> type | None:
        """The class registered under ``name``, if any (no import is attempted)."""
        return self._classes.get(name)

    def resolve(self, name: str, *, source: object = "a recording") -> type:
        """The class named ``name``, or a RecordingFileError if the allow-list does not hold it."""
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        if not name.startswith(ALLOWED_MODULE_PREFIXES) or "[" in name:
            _raise_if_package_missing(name, source)
            raise RecordingFileError(_not_allowed(name, source))
        cls = _import_allowed(name, source)
        self._classes[name] = cls
        return cls


def _import_allowed(name: str, source: object) -> type:
    """Import the longest module prefix of ``name`` and walk the rest as attributes (nested classes)."""
    _raise_if_package_missing(name, source)
    root = _package_of(name)
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts) or parts[-1].startswith("_"):  # checked before any import
        raise RecordingFileError(_not_allowed(name, source, "a private or malformed name"))
    if any(part.startswith("_") for part in parts):  # ollama._types.ChatResponse: only as re-exported
        return _reexported(name, root, source)
    target: Any = None
    for split in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:split])
        try:
            target = importlib.import_module(module)
        except (ImportError, ValueError):
            continue
        except Exception as exc:  # a module of the package that fails to import here (an optional dependency)
            raise RecordingFileError(
                f"{source}: type {name!r} cannot be looked up: importing {module} fails "
                f"({type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1][:200]}). Re-record the file."
            ) from exc
        try:
            for part in parts[split:]:
                target = getattr(target, part)
        except Exception:  # AttributeError, or a lazy proxy that fails when touched
            target = None
        break
    if not (isinstance(target, type) and hasattr(target, "model_validate_json")):
        raise RecordingFileError(
            f"{source}: type {name!r} is not a pydantic model that exists in the installed {root} "
            f"{_package_version(root)}; it was recorded with another version. Re-record the file "
            f"(LLAMA_STACK_TEST_INFERENCE_MODE=record) or install the version that wrote it."
        )
    problem = _why_not_a_concrete_model(target, root)
    if problem:
        raise RecordingFileError(_not_allowed(name, source, problem))
    return target


def _reexported(name: str, root: str, source: object) -> type:
    """A class named by its private module (``ollama._types.ChatResponse``, as llama-stack writes
    it) is allowed when its package exports it publicly (``ollama.ChatResponse``) as that class."""
    try:
        target = getattr(importlib.import_module(root), name.rsplit(".", 1)[1], None)
    except ImportError:
        target = None
    if not (isinstance(target, type) and type_name(target) == name and hasattr(target, "model_validate_json")):
        raise RecordingFileError(_not_allowed(name, source, f"a private name that {root} does not export"))
    problem = _why_not_a_concrete_model(target, root, reexported=True)
    if problem:
        raise RecordingFileError(_not_allowed(name, source, problem))
    return target


def _not_allowed(name: str, source: object, why: str = "") -> str:
    return (
        f"{source}: type {name!r} is not allowed in recordings{f' ({why})' if why else ''}. Only the concrete "
        f"model classes of the SDKs api-recorder covers ({', '.join(p.rstrip('.') for p in ALLOWED_MODULE_PREFIXES)}) "
        "and types registered with "
        "api_recorder.register_type() are rebuilt; register the class if it is yours, or re-record the file."
    )


def _why_not_a_concrete_model(cls: type, root: str, *, reexported: bool = False) -> str | None:
    """Why ``cls`` (found under the ``root`` package) is not a class a recording may name, or None.

    Attribute walks reach more than the SDK's answers: ``openai.BaseModel`` and the generic bases
    behind it (re-exported by every types module), pydantic's own classes. Only concrete
    subclasses of the package's model base, defined in its public modules, are rebuilt.
    """
    import pydantic

    where = f"{cls.__module__}.{cls.__qualname__}"
    if not (cls.__module__ == root or cls.__module__.startswith(f"{root}.")):
        return f"it is {where}, not a class of the {root} package"
    if not reexported and not all(part.isidentifier() and not part.startswith("_") for part in where.split(".")):
        return f"it is {where}, a private class"
    if not issubclass(cls, pydantic.BaseModel):
        return "not a pydantic model"
    base = getattr(sys.modules.get(root), "BaseModel", None)  # openai.BaseModel; tavily, genai have none
    if isinstance(base, type) and issubclass(base, pydantic.BaseModel) and not issubclass(cls, base):
        return f"not a subclass of {root}.BaseModel"
    if cls is base:
        return "the base class of every model, not a model"
    if getattr(cls, "__pydantic_generic_metadata__", {}).get("parameters") or inspect.isabstract(cls):
        return "a generic or abstract base class"
    return None


def _raise_if_package_missing(name: str, source: object) -> None:
    """Tell "this package is not installed here" apart from a bad type (verify skips the former).

    ``find_spec`` of a top-level name only searches the path; it runs no code of the package.
    """
    root = _package_of(name)
    if root and all(part.isidentifier() for part in root.split(".")) and root not in sys.modules:
        try:
            missing = importlib.util.find_spec(root) is None
        except ImportError:  # a parent package (``google`` of ``google.genai``) is missing
            missing = True
        if missing:
            raise TypeNotInstalledError(
                f"{source}: type {name!r} belongs to the {root!r} package, which is not installed here. "
                f"Install it (and, unless api-recorder covers it, register its types with "
                f"api_recorder.register_type) to replay this recording."
            )


def _package_of(name: str) -> str:
    """The package a class name belongs to: its covered SDK (``google.genai``) or first part."""
    for prefix in ALLOWED_MODULE_PREFIXES:
        if name.startswith(prefix):
            return prefix.rstrip(".")
    return name.split(".", 1)[0]


def _package_version(package: str) -> str:
    module = sys.modules.get(package)
    return f"version {getattr(module, '__version__', 'unknown')}"


def type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_pydantic(value: object) -> bool:
    return hasattr(value, "model_dump") and hasattr(type(value), "model_validate")


def dump_object(value: Any) -> Any:
    """A JSON-able form of ``value``: pydantic and dataclass objects in envelopes, the rest as is."""
    if is_pydantic(value):
        return {
            "__type__": type_name(type(value)),
            "__data__": value.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type_name(type(value)), "__data__": dataclasses.asdict(value)}
    if isinstance(value, (list, tuple)):
        return [dump_object(item) for item in value]
    if isinstance(value, dict):
        return {key: dump_object(item) for key, item in value.items()}
    return value


def normalize_ids(data: Any, normalized_id: str) -> Any:
    """Make per-call ids and timestamps constant so that re-recording gives no diff noise.

    Model objects keep theirs: there the id is the model's name. Some stream events carry the
    answer one level down (:data:`NESTED_ANSWERS`), and chained calls (previous_response_id) need
    its id stable.
    """
    if not isinstance(data, dict):
        return data
    if not is_model_object(data):
        if "id" in data:
            data["id"] = normalized_id
        if "created" in data:
            data["created"] = 0
        if "created_at" in data and data["created_at"] is not None:
            data["created_at"] = 0 if isinstance(data["created_at"], (int, float)) else NORMALIZED_CREATED_AT
    for name in NESTED_ANSWERS:
        nested = data.get(name)
        if isinstance(nested, dict) and "id" in nested:
            normalize_ids(nested, normalized_id)
    return data


def is_model_object(data: dict[str, Any]) -> bool:
    """A model's description (OpenAI ``object: model``, Anthropic ``type: model``): its id is a name."""
    return data.get("object") == "model" or data.get("type") == "model"


FIRST_BATCH = 4
LARGEST_BATCH = 256


class Rehydrator:
    """Rebuilds envelopes into objects of the recorded classes.

    A stream's chunks are rebuilt in batches: consecutive envelopes of one class are validated by
    pydantic in a single call (per-object overhead is most of the cost otherwise). Batches start
    small and double, so the first chunk is ready almost at once.
    """

    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry
        self._list_adapters: dict[type, Any] = {}

    def envelopes(self, raws: list[Any], *, source: object, consume: bool = False) -> Iterator[Any]:
        """The objects of a list of raw envelopes, in order, rebuilt lazily batch by batch.

        ``consume`` lets go of each batch's bytes in ``raws`` as it is taken (the list is emptied
        slot by slot), so that bytes and objects are never all held at once.
        """
        start, size = 0, FIRST_BATCH
        while start < len(raws):
            batch = raws[start : start + size]
            if consume:
                raws[start : start + len(batch)] = [None] * len(batch)
            yield from self._batch(batch, start, source)
            start += len(batch)
            size = min(size * 2, LARGEST_BATCH)

    def _batch(self, raws: list[msgspec.Raw], offset: int, source: object) -> list[Any]:
        try:
            envelopes = [_decode_envelope(raw) for raw in raws]
            names = {envelope.type for envelope in envelopes}
            cls = self.registry.resolve(names.pop(), source=source) if len(names) == 1 else None
        except (msgspec.DecodeError, RecordingFileError, UnicodeDecodeError):
            cls = None
        if cls is not None and hasattr(cls, "model_validate_json"):
            payload = b"[" + b",".join(bytes(envelope.data) for envelope in envelopes) + b"]"
            try:
                return self._list_adapter(cls).validate_json(payload)
            except (ValueError, TypeError):
                pass  # one of them needs the lenient path (or fails): rebuild them one by one
        return [self.envelope(raw, source=f"{source} (item {offset + index})") for index, raw in enumerate(raws)]

    def _list_adapter(self, cls: type) -> Any:
        adapter = self._list_adapters.get(cls)
        if adapter is None:
            from pydantic import TypeAdapter

            adapter = self._list_adapters[cls] = TypeAdapter(list[cls])  # type: ignore[valid-type]
        return adapter

    def envelope(self, raw: msgspec.Raw | bytes, *, source: object) -> Any:
        """An object from one raw JSON value: envelopes (also in a list) become their class."""
        try:
            return self._envelope(raw, source)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise RecordingFileError(f"{source}: unreadable JSON in the response ({exc}); re-record it.") from exc

    def _envelope(self, raw: msgspec.Raw | bytes, source: object) -> Any:
        first = bytes(memoryview(raw)[:1])
        if first == b"[":
            return list(self.envelopes(decode_raw_list(raw), source=source))
        if first != b"{":
            return _decode_any(raw)
        try:
            envelope = _decode_envelope(raw)
        except msgspec.ValidationError:
            return self._nested(_decode_any(raw), source)
        return self.build(envelope.type, envelope.data, source=source)

    def _nested(self, value: Any, source: object) -> Any:
        """Plain JSON that may hold envelopes inside (a tool returning ``{"rows": [Row, ...]}``)."""
        if isinstance(value, list):
            return [self._nested(item, source) for item in value]
        if not isinstance(value, dict):
            return value
        if value.keys() == {"__type__", "__data__"} and isinstance(value["__type__"], str):
            return self.build(value["__type__"], _encode(value["__data__"]), source=source)
        return {key: self._nested(item, source) for key, item in value.items()}

    def build(self, name: str, data: msgspec.Raw | bytes, *, source: object) -> Any:
        cls = self.registry.resolve(name, source=source)
        try:
            if hasattr(cls, "model_validate_json"):
                return self._build_pydantic(cls, data, name, source)
            if dataclasses.is_dataclass(cls):  # only registered classes get here
                return cls(**_decode_any(data))
        except (RecordingFileError, RecursionError):  # RecursionError: storage names the file as too deep
            raise
        except Exception as exc:  # pydantic's usage errors (TypeError), a constructor refusing the data...
            raise RecordingFileError(
                f"{source}: {name!r} cannot be rebuilt from its data ({type(exc).__name__}: {_first_line(exc)}); "
                "re-record the file (LLAMA_STACK_TEST_INFERENCE_MODE=record)."
            ) from exc
        raise RecordingFileError(f"{source}: {name!r} is neither a pydantic model nor a dataclass.")

    def _build_pydantic(self, cls: Any, data: msgspec.Raw | bytes, name: str, source: object) -> Any:
        try:
            return cls.model_validate_json(bytes(data))
        except ValueError as strict_error:
            if not _is_sdk_lenient(cls):
                raise RecordingFileError(
                    f"{source}: the data of {name!r} does not validate: {_first_error(strict_error)}. "
                    "The class changed since the recording was written; re-record it "
                    "(LLAMA_STACK_TEST_INFERENCE_MODE=record)."
                ) from strict_error
            return _build_leniently(cls, _decode_any(data), strict_error, name, source)


def _build_leniently(cls: Any, fields: Any, error: Any, name: str, source: object) -> Any:
    """What the SDK does with an answer its own types reject (``created: null``, ``object: ""``).

    The SDK keeps such values as they came. Fast path: validate a copy in which each rejected value
    is replaced by one the type accepts, then put the recorded values back where they were. When a
    rejection cannot be repaired that way, the SDK's own (slow, recursive) ``construct`` builds it.
    """
    if not isinstance(fields, dict):
        raise RecordingFileError(f"{source}: the data of {name!r} is not an object; re-record it.")
    repairs = _repairs(error, fields)
    if repairs is not None:
        repaired = _with_values(fields, [(loc, placeholder) for loc, placeholder, _ in repairs])
        try:
            built = cls.model_validate(repaired)
            for loc, _, recorded in repairs:
                _put_back(built, loc, recorded)
            return built
        except (ValueError, LookupError, AttributeError, TypeError):
            pass
    try:
        return cls.construct(**fields)
    except Exception as construct_error:
        raise RecordingFileError(
            f"{source}: the data of {name!r} cannot be rebuilt ({construct_error!r}); re-record it."
        ) from construct_error


_PLACEHOLDERS = {"int_type": 0, "int_parsing": 0, "float_type": 0.0, "string_type": "", "bool_type": False}
_QUOTED = re.compile(r"'([^']*)'")


def _repairs(error: Any, fields: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any, Any]] | None:
    """(location, accepted placeholder, recorded value) for each rejection, or None if one cannot be."""
    repairs = []
    for item in error.errors():
        loc, kind = tuple(item.get("loc", ())), item.get("type")
        if kind == "literal_error":
            match = _QUOTED.search(str(item.get("ctx", {}).get("expected", "")))
            if match is None:
                return None
            placeholder: Any = match.group(1)
        elif kind in _PLACEHOLDERS:
            placeholder = _PLACEHOLDERS[kind]
        else:
            return None
        try:
            recorded = _value_at(fields, loc)
        except (LookupError, TypeError):
            return None
        repairs.append((loc, placeholder, recorded))
    return repairs


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


def _with_values(data: Any, replacements: list[tuple[tuple[Any, ...], Any]]) -> Any:
    copy = msgspec.json.decode(msgspec.json.encode(data))
    for loc, value in replacements:
        _value_at(copy, loc[:-1])[loc[-1]] = value
    return copy


def _put_back(built: Any, loc: tuple[Any, ...], recorded: Any) -> None:
    parent = built
    for part in loc[:-1]:
        parent = parent[part] if isinstance(part, int) else getattr(parent, part)
    last = loc[-1]
    if isinstance(parent, (list, dict)):
        parent[last] = recorded
    else:
        parent.__dict__[last] = recorded


def _is_sdk_lenient(cls: type) -> bool:
    """Whether ``cls.construct`` is the SDK's recursive, lenient one rather than pydantic's."""
    import pydantic

    construct = getattr(cls.construct, "__func__", None)
    return cls.__module__.startswith(ALLOWED_MODULE_PREFIXES) and construct is not pydantic.BaseModel.construct.__func__


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:200]


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        return f"field {location!r}: {first.get('msg')}"
    return str(error)
