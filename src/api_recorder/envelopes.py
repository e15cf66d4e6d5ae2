"""Typed objects in and out of recording files: ``{"__type__": ..., "__data__": ...}``.

Objects are dumped with pydantic (``model_dump(mode="json", exclude_unset=True)``: exactly the
fields the server sent, so a replayed object dumps, and hashes when passed back in a later
request, like the live one did) and rebuilt into the very same class. A ``__type__`` is resolved
through an allow-list, never by importing whatever dotted path a file names: recordings come from
pull requests, and a file must not be able to run code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import importlib
import importlib.util
import inspect
import re
import sys
import threading
import types
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import msgspec

from .errors import RecordingFileError, TypeNotInstalledError
from .integrations import TYPE_PREFIXES

if TYPE_CHECKING:
    from types import MethodType

    import pydantic

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


_ClassT = TypeVar("_ClassT", bound=type)


class TypeRegistry:
    """The classes a recording may name: SDK types by module prefix, plus the user's own."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def register(self, cls: _ClassT) -> _ClassT:
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
    mro = cls.__mro__  # real subclasses only: no ABC registration can make a class pass
    if pydantic.BaseModel not in mro:
        return "not a pydantic model"
    base = getattr(sys.modules.get(root), "BaseModel", None)  # openai.BaseModel; tavily, genai have none
    if isinstance(base, type) and pydantic.BaseModel in base.__mro__ and base not in mro:
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


@functools.cache
def _envelope_list_adapter(cls: type, name: str) -> Any:
    """pydantic's validator of a list of envelopes of ``cls`` named ``name``: a batch in one call."""
    from typing import Literal

    from pydantic import TypeAdapter
    from typing_extensions import TypedDict

    # A TypedDict made at run time, of a class and a name known only then: no static type to check.
    typed_dict: Any = TypedDict
    literal: Any = Literal
    envelope: Any = typed_dict("envelope", {"__type__": literal[name], "__data__": cls})
    return TypeAdapter(list[envelope])


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while objects are rebuilt, then put back the state
    it had. Rebuilt objects hold no cycles: a collection in the middle of a rebuild only walks the
    objects being made. Pauses nest, also across threads (the collector is the process's): it
    resumes when the last one ends, if it was running when the first began."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


class Rehydrator:
    """Rebuilds envelopes into objects of the recorded classes.

    Two ways give the same objects (tests/test_rebuild_identity.py): the direct builder (below),
    which needs no validator, for the SDK classes whose pydantic validator is not built yet (the
    SDKs defer it; building it is the cold start, 2 ms to well over 100 ms a class family); and
    pydantic, once that validator exists or is worth building (see DirectBuilder.leaves_to_pydantic),
    a batch of envelopes of one class in a single call. A stream's chunks are rebuilt in batches
    that start small and double, so the first chunk is ready almost at once; the cyclic garbage
    collector is paused while a batch, or a whole body, is built.
    """

    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry

    def envelopes(self, raws: list[Any], *, source: object, consume: bool = False) -> Iterator[Any]:
        """The objects of a list of raw envelopes, in order, rebuilt lazily batch by batch.

        ``consume`` lets go of each batch's bytes in ``raws`` as it is taken (the list is emptied
        slot by slot), so that bytes and objects are never all held at once; it is for reading
        everything, so batches start at their largest.
        """
        for batch in self.batches(raws, source=source, consume=consume):
            yield from batch

    def batches(self, raws: list[Any], *, source: object, consume: bool = False) -> Iterator[list[Any]]:
        """:meth:`envelopes` a batch at a time: a replayed stream pays per batch, not per chunk,
        for what wraps the rebuild (error context, the collector's pause)."""
        start, size = 0, LARGEST_BATCH if consume else FIRST_BATCH
        while start < len(raws):
            batch = raws[start : start + size]
            if consume:
                raws[start : start + len(batch)] = [None] * len(batch)
            yield self._batch(batch, start, source)
            start += len(batch)
            size = min(size * 2, LARGEST_BATCH)

    def _batch(self, raws: list[msgspec.Raw], offset: int, source: object) -> list[Any]:
        """One batch's objects, built with the cyclic garbage collector paused (:func:`paused_gc`).

        A batch of envelopes of one class that pydantic validates (see DirectBuilder.build) is
        validated in a single call, class names included; otherwise envelopes are rebuilt one by
        one, by the direct builder when it can.
        """
        with paused_gc():
            name, cls = self._class_of_all(raws, source)
            if hasattr(cls, "model_validate_json") and _DIRECT.leaves_to_pydantic(cls, len(raws)):
                try:
                    envelopes = _envelope_list_adapter(cls, name).validate_json(b"[" + b",".join(raws) + b"]")
                    return [envelope["__data__"] for envelope in envelopes]
                except (ValueError, TypeError):
                    pass  # another class, the lenient path, an error: one by one
            return [self._item(raw, offset + index, source) for index, raw in enumerate(raws)]

    def _class_of_all(self, raws: list[msgspec.Raw], source: object) -> tuple[str, Any]:
        """The class named by the first and the last envelope of a batch when it is the same
        (then probably everyone's: the batch's validation checks it), else None."""
        try:
            name = _decode_envelope(raws[0]).type
            if len(raws) > 1 and _decode_envelope(raws[-1]).type != name:
                return name, None
            return name, self.registry.resolve(name, source=source)
        except (ValueError, UnicodeDecodeError):  # DecodeError, RecordingFileError
            return "", None

    def _item(self, raw: msgspec.Raw, index: int, source: object) -> Any:
        head: object = memoryview(raw)[:1]  # equal to bytes of the same content (mypy: "no overlap")
        if head != b"{":  # a plain JSON chunk (a string, a list): not an envelope
            return self.envelope(raw, source=f"{source} (item {index})")
        try:
            envelope = _decode_envelope(raw)
            cls: Any = self.registry.resolve(envelope.type, source=source)
            value = _DIRECT.build(cls, envelope.data)
            if value is _MISSING_OBJECT and hasattr(cls, "model_validate_json"):
                try:
                    value = cls.model_validate_json(bytes(envelope.data))
                except ValueError:
                    value = _DIRECT.rescue(cls, envelope.data)  # what the SDK-lenient repair would give
        except (ValueError, TypeError, UnicodeDecodeError):  # DecodeError, ValidationError...
            value = _MISSING_OBJECT
        if value is _MISSING_OBJECT:  # the lenient repair, or an error that names the item
            value = self.envelope(raw, source=f"{source} (item {index})", direct=False)
        return value

    def envelope(self, raw: msgspec.Raw | bytes, *, source: object, direct: bool = True) -> Any:
        """An object from one raw JSON value: envelopes (also in a list) become their class.

        ``direct=False``: pydantic validates the envelope (the direct builder already refused it).
        """
        try:
            return self._envelope(raw, source, direct)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise RecordingFileError(f"{source}: unreadable JSON in the response ({exc}); re-record it.") from exc

    def _envelope(self, raw: msgspec.Raw | bytes, source: object, direct: bool = True) -> Any:
        first = bytes(memoryview(raw)[:1])
        if first == b"[":
            return list(self.envelopes(decode_raw_list(raw), source=source))
        if first != b"{":
            return _decode_any(raw)
        try:
            envelope = _decode_envelope(raw)
        except msgspec.ValidationError:
            return self._nested(_decode_any(raw), source)
        return self.build(envelope.type, envelope.data, source=source, direct=direct)

    def _nested(self, value: Any, source: object) -> Any:
        """Plain JSON that may hold envelopes inside (a tool returning ``{"rows": [Row, ...]}``)."""
        if isinstance(value, list):
            return [self._nested(item, source) for item in value]
        if not isinstance(value, dict):
            return value
        if value.keys() == {"__type__", "__data__"} and isinstance(value["__type__"], str):
            return self.build(value["__type__"], _encode(value["__data__"]), source=source)
        return {key: self._nested(item, source) for key, item in value.items()}

    def build(self, name: str, data: msgspec.Raw | bytes, *, source: object, direct: bool = True) -> Any:
        cls = self.registry.resolve(name, source=source)
        try:
            if hasattr(cls, "model_validate_json"):
                return self._build_pydantic(cls, data, name, source, direct)
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

    def _build_pydantic(self, cls: Any, data: msgspec.Raw | bytes, name: str, source: object, direct: bool) -> Any:
        if direct:
            built = _DIRECT.build(cls, data)
            if built is not _MISSING_OBJECT:
                return built
        try:
            return cls.model_validate_json(bytes(data))
        except ValueError as strict_error:
            if not _is_sdk_lenient(cls):
                raise RecordingFileError(
                    f"{source}: the data of {name!r} does not validate: {_first_error(strict_error)}. "
                    "The class changed since the recording was written; re-record it "
                    "(LLAMA_STACK_TEST_INFERENCE_MODE=record)."
                ) from strict_error
            built = _DIRECT.rescue(cls, data)
            if built is not _MISSING_OBJECT:
                return built
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


def _is_sdk_lenient(cls: type[pydantic.BaseModel]) -> bool:
    """Whether ``cls.construct`` is the SDK's recursive, lenient one rather than pydantic's."""
    import pydantic

    construct = getattr(cls.construct, "__func__", None)
    return (
        cls.__module__.startswith(ALLOWED_MODULE_PREFIXES)
        and construct is not cast("MethodType", pydantic.BaseModel.construct).__func__  # a bound classmethod
    )


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0][:200]


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        location = ".".join(str(part) for part in first.get("loc", ()))
        return f"field {location!r}: {first.get('msg')}"
    return str(error)


# Direct construction ------------------------------------------------------------------------------
#
# pydantic builds a model's validator on its first use (the SDKs defer it): 2 ms for a chat
# completion, 30 ms for a Responses ``Response``, well over 100 ms for the classes of one
# Responses stream, all spent generating schemas in Python; the live SDK, which does not validate,
# pays none of it. The direct builder makes the very object validation would make, from the
# decoded JSON, for the models whose validation it can replay exactly: plain fields of JSON types,
# lists, dicts, literals, optionals, nested models, unions whose member is certain. Its plan of a
# class is cheap (read from the class's fields, never from a schema) and made when the class is
# first met. Whenever it cannot vouch for the result (a value of another type than the field's, an
# ambiguous union member, a validator on the class, a constraint on a field) it gives up on the
# whole envelope, and pydantic validates it as before: the objects are the same either way
# (tests/test_rebuild_identity.py compares them with pydantic's over every recording at hand).


class _Unsure(Exception):
    """The direct builder cannot vouch that its object is the one validation would give."""


class _Unsupported(Exception):
    """A class or annotation the direct builder has no exact plan for."""


_new_object = object.__new__
_NONE_TYPE = type(None)
_LARGEST_EXACT_FLOAT = 2**53  # larger ints may round differently when made floats: left to pydantic


def _refuse(data: Any) -> Any:
    raise _Unsure


# Config keys that do not change what validating JSON gives for the fields the builder handles
# (serialization, JSON schema, assignment, attribute input; aliases are read from the fields).
_NEUTRAL_CONFIG = frozenset(
    {
        "title", "model_title_generator", "field_title_generator", "json_schema_extra", "json_encoders",
        "json_schema_serialization_defaults_required", "json_schema_mode_override", "ser_json_timedelta",
        "ser_json_temporal", "ser_json_bytes", "ser_json_inf_nan", "serialize_by_alias",
        "polymorphic_serialization", "defer_build", "frozen", "validate_assignment", "arbitrary_types_allowed",
        "from_attributes", "loc_by_alias", "alias_generator", "ignored_types", "protected_namespaces",
        "hide_input_in_errors", "plugin_settings", "schema_generator", "cache_strings", "revalidate_instances",
        "validation_error_cause", "use_attribute_docstrings", "regex_engine", "url_preserve_empty_path",
        "validate_return", "populate_by_name", "validate_by_name", "use_enum_values", "val_json_bytes",
        "val_temporal_unit",
    }
)  # fmt: skip
# Config keys the builder follows only at these values (their defaults, or ``extra`` it handles).
_CONFIG_VALUES: dict[str, tuple[Any, ...]] = {
    "extra": (None, "allow", "ignore"),
    "strict": (None, False),
    "validate_default": (None, False),
    "coerce_numbers_to_str": (None, False),
    "str_strip_whitespace": (None, False),
    "str_to_lower": (None, False),
    "str_to_upper": (None, False),
    "str_min_length": (None, 0),
    "str_max_length": (None,),
    "validate_by_alias": (None, True),
    "allow_inf_nan": (None, True),
}


class _Spec:
    """How one annotation turns a JSON value into the field's value (or refuses it).

    ``kind``: any, type (str, int, bool: exact type), float, none, literal, optional, list, dict,
    model, union. ``convert`` returns the value or raises _Unsure; ``may_accept`` is False only
    when validation surely rejects the value (for union members); ``exact`` tells a scalar that
    the member takes as it is (smart unions return the first such member).
    """

    __slots__ = ("arg", "convert", "exact", "kind", "may_accept")

    def __init__(self, kind: str, arg: Any, convert: Any, may_accept: Any, exact: Any) -> None:
        self.kind, self.arg, self.convert, self.may_accept, self.exact = kind, arg, convert, may_accept, exact


def _identity(value: Any) -> Any:
    return value


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _null_or_container(value: Any) -> bool:
    return value is None or type(value) is dict or type(value) is list


def _not_container(value: Any) -> bool:
    return type(value) is not dict and type(value) is not list and value is not None


def _type_spec(kind_type: type) -> _Spec:
    def convert(value: Any) -> Any:
        if type(value) is not kind_type:
            raise _Unsure
        return value

    def exact(value: Any) -> bool:
        return type(value) is kind_type

    may_accept = exact if kind_type is str else _not_container  # lax int and bool take "1", 1.0, ...
    return _Spec("type", kind_type, convert, may_accept, exact)


def _to_float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        number: float = value
        return number
    if kind is int and -_LARGEST_EXACT_FLOAT <= value <= _LARGEST_EXACT_FLOAT:
        return float(value)
    raise _Unsure


def _is_float(value: Any) -> bool:
    return type(value) is float


def _none(value: Any) -> Any:
    if value is not None:
        raise _Unsure
    return None


def _is_none(value: Any) -> bool:
    return value is None


_ANY = _Spec("any", None, _identity, _always, _always)
_FLOAT = _Spec("float", None, _to_float, _not_container, _is_float)
_NONE = _Spec("none", None, _none, _is_none, _is_none)
_TYPES = {str: _type_spec(str), int: _type_spec(int), bool: _type_spec(bool)}


def _literal_spec(values: tuple[Any, ...]) -> _Spec:
    if not values or any(type(value) not in (str, int, bool) for value in values):
        raise _Unsupported(f"Literal{list(values)}")
    pairs = frozenset((type(value), value) for value in values)
    if all(type(value) is str for value in values):
        strings = frozenset(values)

        def matches(value: Any) -> bool:
            return type(value) is str and value in strings

        may_accept = matches  # a str literal takes nothing but one of its strings from JSON
    else:

        def matches(value: Any) -> bool:
            return type(value) in (str, int, bool) and (type(value), value) in pairs

        may_accept = _not_container

    def convert(value: Any) -> Any:
        if not matches(value):
            raise _Unsure
        return value

    return _Spec("literal", pairs, convert, may_accept, matches)


def _optional_spec(inner: _Spec) -> _Spec:
    inner_convert, inner_may, inner_exact = inner.convert, inner.may_accept, inner.exact

    def convert(value: Any) -> Any:
        return None if value is None else inner_convert(value)

    def may_accept(value: Any) -> bool:
        return value is None or inner_may(value)

    def exact(value: Any) -> bool:
        return value is None or inner_exact(value)

    return _Spec("optional", inner, convert, may_accept, exact)


def _is_list(value: Any) -> bool:
    return type(value) is list


def _is_dict(value: Any) -> bool:
    return type(value) is dict


def _list_spec(item: _Spec, direct: DirectBuilder) -> _Spec:
    if item.kind == "any":

        def convert(value: Any) -> Any:
            if type(value) is not list:
                raise _Unsure
            return value  # the decoded list is the file's own: nobody else holds it

    elif item.kind == "type":
        kind_type = item.arg

        def convert(value: Any) -> Any:
            if type(value) is not list or (value and set(map(type, value)) != {kind_type}):
                raise _Unsure
            return value

    elif item.kind == "float":

        def convert(value: Any) -> Any:
            if type(value) is not list:
                raise _Unsure
            kinds = set(map(type, value))
            if kinds <= {float}:
                return value
            if kinds <= {float, int}:
                return [_to_float(number) for number in value]
            raise _Unsure

    elif item.kind == "model":
        cls, builders, builder = item.arg, direct._builders, direct.builder

        def convert(value: Any) -> Any:
            if type(value) is not list:
                raise _Unsure
            build = builders.get(cls) or builder(cls)
            return [build(element) for element in value]

    else:
        item_convert = item.convert

        def convert(value: Any) -> Any:
            if type(value) is not list:
                raise _Unsure
            return [item_convert(element) for element in value]

    return _Spec("list", item, convert, _is_list, _never)


def _dict_spec(item: _Spec) -> _Spec:
    if item.kind == "any":

        def convert(value: Any) -> Any:
            if type(value) is not dict:
                raise _Unsure
            return value

    else:
        item_convert = item.convert

        def convert(value: Any) -> Any:
            if type(value) is not dict:
                raise _Unsure
            return {key: item_convert(element) for key, element in value.items()}

    return _Spec("dict", item, convert, _is_dict, _never)


def _union_spec(members: list[_Spec]) -> _Spec:
    members = list(members)

    def convert(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            # Several members may take an object (models are then ranked by fields set): only a
            # member that is certain, the one that can take it at all, is followed.
            chosen = None
            for member in members:
                if member.may_accept(value):
                    if chosen is not None:
                        raise _Unsure
                    chosen = member
            if chosen is None:
                raise _Unsure
            return chosen.convert(value)
        # A scalar: smart unions return the first member that takes it exactly.
        for member in members:
            if member.exact(value):
                return member.convert(value)
        raise _Unsure

    def may_accept(value: Any) -> bool:
        return any(member.may_accept(value) for member in members)

    def exact(value: Any) -> bool:
        return type(value) is not dict and type(value) is not list and any(member.exact(value) for member in members)

    return _Spec("union", members, convert, may_accept, exact)


def _inert_metadata(item: Any) -> bool:
    """Annotated metadata pydantic ignores: the SDKs' own markers (PropertyInfo, UnionDiscriminator)."""
    kind = type(item)
    return (
        kind.__module__.split(".", 1)[0] in ("openai", "anthropic")
        and not hasattr(kind, "__get_pydantic_core_schema__")
        and not hasattr(kind, "__get_pydantic_json_schema__")
        and not any(base.__module__.split(".", 1)[0] in ("pydantic", "annotated_types") for base in kind.__mro__)
    )


PYDANTIC_AFTER = 500
"""Objects of one class the direct builder makes before pydantic builds its validator (2 to 40 ms,
paid back after a few hundred objects: pydantic's compiled validation is about twice as fast)."""


class DirectBuilder:
    """Builds SDK model objects from decoded JSON as validation would, or refuses (see above)."""

    def __init__(self) -> None:
        self._builders: dict[type, Any] = {}
        self._lenient_builders: dict[type, Any] = {}
        self._sdk_lenient: dict[type, bool] = {}
        self._uses: dict[type, int] = {}
        self._specs: dict[Any, _Spec] = {}
        self._signatures: dict[type, Any] = {}

    def build(self, cls: type, data: msgspec.Raw | bytes) -> Any:
        """The object of class ``cls`` for the envelope data ``data``, or _MISSING_OBJECT when
        pydantic is to validate it: the builder cannot vouch for it, or pydantic is the faster."""
        if self.leaves_to_pydantic(cls, 1):
            return _MISSING_OBJECT
        return self._attempt(cls, data, strict=True)

    def rescue(self, cls: type, data: msgspec.Raw | bytes) -> Any:
        """For data pydantic rejected: the object the SDK-lenient repair would give, or _MISSING_OBJECT."""
        if self.builder(cls) is _refuse:
            return _MISSING_OBJECT
        return self._attempt(cls, data, strict=False)

    def _attempt(self, cls: Any, data: msgspec.Raw | bytes, *, strict: bool) -> Any:
        try:
            decoded = _decode_any(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return _MISSING_OBJECT
        if strict:
            try:
                return (self._builders.get(cls) or self.builder(cls))(decoded)
            except (_Unsure, RecursionError):
                pass
        if self._lenient(cls):
            try:
                return self.lenient_builder(cls)(decoded)
            except (_Unsure, RecursionError):
                pass
        return _MISSING_OBJECT

    def _lenient(self, cls: Any) -> bool:
        lenient = self._sdk_lenient.get(cls)
        if lenient is None:
            lenient = self._sdk_lenient[cls] = _is_sdk_lenient(cls)
        return lenient

    def leaves_to_pydantic(self, cls: Any, count: int) -> bool:
        """Whether pydantic validates the next ``count`` objects of ``cls`` rather than the builder.

        pydantic is faster once its validator of the class exists (about twice: compiled code),
        so the builder serves a class until pydantic has built that validator, or until the class
        has been met :data:`PYDANTIC_AFTER` times and building it is worth its cost (then it is
        built at once, here, for this class and the validation of lists of it).
        """
        build = self._builders.get(cls)
        if build is None:
            build = self.builder(cls)
        if build is _refuse or cls.__dict__.get("__pydantic_complete__"):
            return True
        uses = self._uses.get(cls, 0) + count
        self._uses[cls] = uses
        if uses <= PYDANTIC_AFTER:
            return False
        try:
            cls.__pydantic_validator__.validate_json  # noqa: B018 - pydantic builds a deferred validator when asked
        except Exception:  # pydantic cannot build it: its own validation reports that, as before
            pass
        return True

    def builder(self, cls: type) -> Any:
        """The build function of ``cls`` (``_refuse`` for a class without an exact plan)."""
        build = self._builders.get(cls)
        if build is None:
            build = self._builders[cls] = self._plan(cls, lenient=False)
        return build

    def lenient_builder(self, cls: type) -> Any:
        """The build function of ``cls`` that keeps what the SDK-lenient repair keeps (see
        :func:`_lenient_convert`), for data that pydantic rejects."""
        build = self._lenient_builders.get(cls)
        if build is None:
            build = self._lenient_builders[cls] = self._plan(cls, lenient=True)
        return build

    def _plan(self, cls: type, *, lenient: bool) -> Any:
        try:
            return self._compile(cls, lenient)
        except (_Unsupported, RecursionError):
            return _refuse
        except Exception:  # an annotation that typing cannot take apart: pydantic decides
            return _refuse

    # plans -------------------------------------------------------------------------------------

    def spec(self, annotation: Any) -> _Spec:
        try:
            found = self._specs.get(annotation)
        except TypeError:  # an unhashable annotation
            return self._make_spec(annotation)
        if found is None:
            found = self._specs[annotation] = self._make_spec(annotation)
        return found

    def _make_spec(self, annotation: Any) -> _Spec:
        import pydantic

        if annotation is Any or annotation is object:
            return _ANY
        if annotation is float:
            return _FLOAT
        if annotation is None or annotation is _NONE_TYPE:
            return _NONE
        simple = _TYPES.get(annotation) if isinstance(annotation, type) else None
        if simple is not None:
            return simple
        if annotation is list:
            return _list_spec(_ANY, self)
        if annotation is dict:
            return _dict_spec(_ANY)
        if isinstance(annotation, type) and pydantic.BaseModel in annotation.__mro__:  # no ABC subclass hook
            return self._model_spec(annotation)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            if not all(_inert_metadata(item) for item in annotation.__metadata__):
                raise _Unsupported(f"{annotation!r}")
            return self.spec(args[0])
        if origin is typing.Literal:
            values = tuple(value for value in args if value is not None)
            spec = _literal_spec(values)
            return _optional_spec(spec) if len(values) < len(args) else spec
        if origin is typing.Union or origin is types.UnionType:
            rest = [arg for arg in args if arg is not _NONE_TYPE and arg is not None]
            inner = self.spec(rest[0]) if len(rest) == 1 else _union_spec([self.spec(arg) for arg in rest])
            return _optional_spec(inner) if len(rest) < len(args) else inner
        if origin is list:
            return _list_spec(self.spec(args[0]) if args else _ANY, self)
        if origin is dict:
            if args and args[0] not in (str, Any):
                raise _Unsupported(f"{annotation!r}")
            return _dict_spec(self.spec(args[1]) if args else _ANY)
        raise _Unsupported(f"{annotation!r}")

    def _lenient_convert(self, spec: _Spec) -> Any:
        """What the SDK-lenient repair (:func:`_build_leniently`) makes of a field's value.

        The repair puts back the recorded value of each field whose error is one it repairs
        (a string literal's ``literal_error``; ``string_type``; ``int_type``, ``float_type`` or
        ``bool_type``, which pydantic raises for null, an array or an object), provided the error's
        location leads there through model fields and list items: not through a union (whose
        member's name is in the location), a dict or an alias. Anything else stays strict, and a
        strict failure sends the envelope to pydantic and the repair itself.
        """
        kind, strict = spec.kind, spec.convert
        if kind == "type" and spec.arg is str:
            keeps: Any = _always
        elif kind in ("type", "float"):
            keeps = _null_or_container
        elif kind == "literal" and all(kind_type is str and "'" not in value for kind_type, value in spec.arg):
            keeps = _always
        elif kind == "model":
            cls = spec.arg
            return lambda value: self.lenient_builder(cls)(value)
        elif kind == "list" and spec.arg.kind == "model":
            item_cls = spec.arg.arg

            def convert_list(value: Any) -> Any:
                if type(value) is not list:
                    raise _Unsure
                build = self.lenient_builder(item_cls)
                return [build(element) for element in value]

            return convert_list
        elif kind == "optional":
            inner = self._lenient_convert(spec.arg)
            if inner is None:
                return None
            return lambda value: None if value is None else inner(value)
        else:
            return None if kind == "any" else strict

        def convert(value: Any) -> Any:
            try:
                return strict(value)
            except _Unsure:
                if keeps(value):
                    return value
                raise

        return convert

    def _model_spec(self, cls: type) -> _Spec:
        builders, builder = self._builders, self.builder

        def convert(value: Any) -> Any:
            return (builders.get(cls) or builder(cls))(value)

        def may_accept(value: Any) -> bool:
            return type(value) is dict and self._signature(cls)(value)

        return _Spec("model", cls, convert, may_accept, _never)

    def _signature(self, cls: type) -> Any:
        """Whether an object may validate as ``cls`` at all: its required keys are there and its
        string literal fields (``type: "message"``) hold one of their values."""
        check = self._signatures.get(cls)
        if check is None:
            check = self._signatures[cls] = self._make_signature(cls)
        return check

    def _make_signature(self, cls: Any) -> Any:
        required: list[tuple[str, ...]] = []
        literals: list[tuple[tuple[str, ...], Any]] = []
        try:
            by_name = _validates_by_name(cls)
            for name, field in cls.__pydantic_fields__.items():
                key = _lookup_key(name, field)
                keys = (key, name) if by_name and key != name else (key,)
                if field.is_required():
                    required.append(keys)
                try:
                    spec = self.spec(field.annotation)
                except _Unsupported:
                    continue
                if spec.kind == "literal" or (spec.kind == "optional" and spec.arg.kind == "literal"):
                    literals.append((keys, spec.may_accept))
        except Exception:
            return _always  # no certainty either way

        def check(value: dict[str, Any]) -> bool:
            for keys in required:
                if not any(key in value for key in keys):
                    return False
            for keys, accepts in literals:
                for key in keys:
                    if key in value and not accepts(value[key]):
                        return False
            return True

        return check

    def _compile(self, cls: Any, lenient: bool) -> Any:
        """The build function of one class: a loop over its fields' plans (nothing is compiled,
        so that a class costs next to nothing the first time it is met)."""
        problem = _why_not_direct(cls)
        if problem:
            raise _Unsupported(problem)
        from pydantic_core import PydanticUndefined

        allow_extra = (cls.model_config.get("extra") or "ignore") == "allow"
        by_name = _validates_by_name(cls)
        plans, keys, aliases = [], set(), {}
        for name, field in cls.__pydantic_fields__.items():
            problem = _why_not_direct_field(field)
            if problem:
                raise _Unsupported(f"{name}: {problem}")
            key = _lookup_key(name, field)
            spec = self.spec(field.annotation)
            other = None
            keys.add(key)
            if key != name:
                aliases[key] = name
                if by_name:
                    other = name
                    keys.add(name)
            if field.default_factory is not None:
                missing, default = _FACTORY, field.default_factory
            elif field.default is PydanticUndefined:
                missing, default = _REQUIRED, None
            else:
                missing, default = _DEFAULT, field.default
                try:
                    hash(default)
                except TypeError:
                    missing = _COPIED  # pydantic-core deep-copies an unhashable default
            if lenient and key == name:  # the repair puts values back by name: aliased fields stay strict
                convert = self._lenient_convert(spec)
            else:
                convert = None if spec.kind == "any" else spec.convert
            plans.append((key, name, other, convert, missing, default))
        names = frozenset(cls.__pydantic_fields__)
        return _model_build(cls, tuple(plans), frozenset(keys), names, aliases, allow_extra)


_REQUIRED, _DEFAULT, _COPIED, _FACTORY = range(4)


@functools.cache
def _slot_setters() -> tuple[Any, Any, Any, Any]:
    """Setters of ``__dict__`` and pydantic's three slots, the attributes pydantic-core sets."""
    import pydantic

    slots = pydantic.BaseModel.__dict__
    return tuple(slots[name].__set__ for name in _SLOTS)


_SLOTS = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def _model_build(
    cls: type, plans: tuple[Any, ...], keys: frozenset[str], names: frozenset[str], aliases: dict[str, str], allow: bool
) -> Any:
    """What pydantic-core's model validator does with a dict, for fields planned in ``plans``:
    ``__dict__`` in field order (defaults for the missing ones), the fields set (with the extra
    keys, as pydantic counts them), the extra fields (``{}`` when allowed, None when ignored),
    no private attributes."""
    missing_marker, new, unsure = _MISSING_OBJECT, _new_object, _Unsure
    set_dict, set_fields_set, set_extra, set_private = _slot_setters()
    required, default_value, copied = _REQUIRED, _DEFAULT, _COPIED

    def build(data: Any) -> Any:
        if type(data) is not dict:
            raise unsure
        get = data.get
        values = {}
        present = 0
        for key, name, other, convert, missing, default in plans:
            value = get(key, missing_marker)
            if other is not None:
                if value is missing_marker:
                    value = get(other, missing_marker)
                elif other in data:
                    raise unsure  # both the alias and the name: which one pydantic keeps is not worth guessing
            if value is missing_marker:
                if missing is required:
                    raise unsure
                value = default if missing is default_value else _deepcopy(default) if missing is copied else default()
            else:
                present += 1
                if convert is not None:
                    value = convert(value)
            values[name] = value
        if present == len(data):
            fields_set = {aliases.get(key, key) for key in data} if aliases else set(data)
            extra: dict[str, Any] | None = {} if allow else None
        elif allow:
            extra = {key: value for key, value in data.items() if key not in keys}
            if not names.isdisjoint(extra):
                raise unsure  # an extra key named like a field
            fields_set = {aliases.get(key, key) for key in data} if aliases else set(data)
        else:  # ignored keys are dropped, and not counted as set
            fields_set = {aliases.get(key, key) for key in data if key in keys}
            extra = None
        built: Any = new(cls)
        set_dict(built, values)
        set_fields_set(built, fields_set)
        set_extra(built, extra)
        set_private(built, None)
        return built

    return build


def _deepcopy(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


_MISSING_OBJECT: Any = object()


def _lookup_key(name: str, field: Any) -> str:
    alias = field.validation_alias
    if alias is None:
        if field.alias is not None and field.alias != name:
            raise _Unsupported(f"alias {field.alias!r} without a validation alias")
        return name
    if not isinstance(alias, str) or (field.alias is not None and field.alias != alias):
        raise _Unsupported(f"validation alias {alias!r}")
    return alias


def _validates_by_name(cls: Any) -> bool:
    config = cls.model_config
    return bool(config.get("validate_by_name") or config.get("populate_by_name"))


_VALIDATOR_KINDS = ("validators", "field_validators", "root_validators", "model_validators")


def _why_not_direct(cls: Any) -> str | None:
    """Why validation of ``cls`` may do more than the builder does, or None."""
    import pydantic

    base = pydantic.BaseModel
    if not isinstance(cls, type) or base not in cls.__mro__ or cls is base:  # a real subclass (no ABC hook)
        return "not a pydantic model"
    cls = cast("type[pydantic.BaseModel]", cls)
    if getattr(cls, "__pydantic_root_model__", False):
        return "a root model"
    if getattr(cls, "__pydantic_custom_init__", True) or getattr(cls, "__pydantic_post_init__", None) is not None:
        return "its own __init__ or model_post_init"
    if cls.__private_attributes__:
        return "private attributes"
    if not getattr(cls, "__pydantic_fields_complete__", False):
        return "fields not complete"
    decorators = cls.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in _VALIDATOR_KINDS):
        return "validators"
    if cls.__new__ is not object.__new__:
        return "its own __new__"
    for method in ("__get_pydantic_core_schema__", "model_validate_json", "model_validate"):
        if getattr(getattr(cls, method), "__func__", None) is not getattr(base, method).__func__:
            return f"its own {method}"
    if getattr(cls, "__pydantic_generic_metadata__", {}).get("parameters"):
        return "a generic class"
    for klass in cls.__mro__:
        if klass is base:
            break
        if "__pydantic_extra__" in inspect.get_annotations(klass):
            return "typed extra fields"
    for key, value in cls.model_config.items():
        if key in _NEUTRAL_CONFIG:
            continue
        allowed = _CONFIG_VALUES.get(key, ())
        if not any(value is choice or (value == choice and type(value) is type(choice)) for choice in allowed):
            return f"config {key}={value!r}"
    return None


def _why_not_direct_field(field: Any) -> str | None:
    if not getattr(field, "_complete", True):
        return "annotation not complete"
    if field.discriminator is not None:
        return "a discriminator"
    if field.validate_default:
        return "validate_default"
    if not all(_inert_metadata(item) for item in field.metadata):
        return f"metadata {field.metadata!r}"
    if field.default_factory is not None and field.default_factory_takes_validated_data:
        return "a default factory of the validated data"
    return None


_DIRECT = DirectBuilder()
