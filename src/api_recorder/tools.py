"""Recording any tool call: Tavily's client methods, your own functions, a library's methods.

A tool call is keyed like llama-stack keys tool invocations, ``{"provider", "tool_name",
"kwargs"}`` (positional arguments named), plus the test id for isolation; llama-stack's own tool
files, hashed without the test id, are found too. Results are stored as returned: dicts stay
dicts, pydantic objects and dataclasses go in envelopes. What cannot be stored that way is
refused when recording, naming the argument, so no file is written that could not be replayed.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from .envelopes import is_pydantic, type_name
from .errors import ApiRecorderError, RecordingFileError, UnrecordableValueError, UnsupportedCallError
from .hashing import legacy_tool_hash, tool_hash
from .patching import Patches
from .recorder import Integration, Recorder, RequestKey
from .storage import Recording


class ToolCall:
    """One intercepted tool call: its key, and how its result is stored and given back."""

    normalizes_ids = False  # a tool's ids are its data (Tavily's request_id aside, see volatile_fields)

    def __init__(
        self,
        recorder: Recorder,
        provider: str,
        tool_name: str,
        wrapped: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        volatile_fields: Mapping[str, Any] | None = None,
    ) -> None:
        self.wrapped = wrapped
        self.args = args
        self.kwargs = kwargs
        self.recorder = recorder
        self.volatile_fields = dict(volatile_fields or {})
        arguments = arguments_as_json(named_arguments(wrapped, args, kwargs), tool_name)
        test_id = recorder.current_test_id()
        arguments = recorder.prepare_body(arguments)
        request_hash = tool_hash(provider, tool_name, arguments, test_id)
        self.key = RequestKey(
            hash=request_hash,
            request={"test_id": test_id, "provider": provider, "tool_name": tool_name, "kwargs": arguments},
            label=f"{provider}.{tool_name}",
            test_id=test_id,
            filenames=[f"{request_hash}.json", f"{legacy_tool_hash(provider, tool_name, arguments)}.json"],
        )

    def invoke(self) -> Any:
        return self.wrapped(*self.args, **self.kwargs)

    def replay(self, recording: Recording) -> Any:
        return recording.response.body

    def capture(self, result: Any, save: Callable[[Any, bool], Any]) -> Any:
        check_replayable(result, self.recorder, f"the result of {self.key.label}")
        save(self._stored_form(result), False)
        return result

    def _stored_form(self, result: Any) -> Any:
        """The result with per-call fields (request ids, timings) made constant."""
        if not (self.volatile_fields and isinstance(result, dict)):
            return result
        stored = dict(result)
        for name, value in self.volatile_fields.items():
            if name in stored:
                stored[name] = value.format(hash=self.key.hash[:12]) if isinstance(value, str) else value
        return stored

    def filename_for(self, body: Any) -> str:
        return self.key.filenames[0]

    def is_recordable_error(self, error: Exception) -> bool:
        """A tool's own errors (Tavily's UsageLimitExceededError...) replay; ours never do."""
        return not isinstance(error, ApiRecorderError)

    def answer_despite(self, error: Exception) -> Any:
        return None


def tool_wrapper(
    recorder: Recorder,
    provider: str,
    tool_name: str,
    *,
    is_async: bool,
    volatile_fields: Mapping[str, Any] | None = None,
    refuse: Callable[[dict[str, Any]], str | None] | None = None,
) -> Callable[..., Any]:
    """A wrapt wrapper recording one tool: passes through when the recorder is not intercepting."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not recorder.intercepting:
            return wrapped(*args, **kwargs)
        if refuse is not None:
            reason = refuse(kwargs)
            if reason:
                raise UnsupportedCallError(reason)
        call = ToolCall(recorder, provider, tool_name, wrapped, args, kwargs, volatile_fields=volatile_fields)
        if is_async:
            return recorder.run_async(call, call.invoke)
        return recorder.run(call, call.invoke)

    return wrapper


def tool(provider: str, *, name: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a function or method (sync or async) so its calls are recorded and replayed."""
    from .recorder import RECORDER

    def decorate(function: Callable[..., Any]) -> Any:
        tool_name = name or function.__qualname__
        wrapper = tool_wrapper(RECORDER, provider, tool_name, is_async=inspect.iscoroutinefunction(function))
        return wrapt.FunctionWrapper(function, wrapper)

    return decorate


_WRAPPED_TARGETS: dict[str, tuple[str, str]] = {}  # "module:Class.method" -> (provider, tool name)


def wrap_tool(target: str, *, provider: str, name: str | None = None) -> None:
    """Record ``"module:Class.method"`` (or ``"module:function"``) without editing its code.

    Installed through the same import hooks as the SDK integrations: when ``module`` is imported
    (or at once if it was, and again if it is imported anew); inert while the recorder is not
    enabled. Wrapping the same target again is a no-op; under another provider or name, an error.
    """
    from .recorder import RECORDER

    module, separator, attribute = target.partition(":")
    if not separator or not module or not attribute:
        raise ValueError(f"wrap_tool needs 'module:Class.method' or 'module:function', not {target!r}.")
    recorded_as = (provider, name or attribute)
    earlier = _WRAPPED_TARGETS.setdefault(target, recorded_as)
    if earlier != recorded_as:
        raise ValueError(
            f"{target} is already recorded as provider {earlier[0]!r}, tool {earlier[1]!r}: wrap it once, "
            "with one provider and name (their recordings are keyed by them)."
        )
    if earlier is not recorded_as:
        return

    def install(recorder: Recorder) -> Patches:
        patches = Patches()
        function = _resolve(module, attribute)
        wrapper = tool_wrapper(recorder, provider, name or attribute, is_async=inspect.iscoroutinefunction(function))
        patches.wrap(module, attribute, wrapper)
        return patches

    RECORDER.add_integration(Integration(module, install))


def _resolve(module: str, attribute: str) -> Any:
    import importlib

    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def named_arguments(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (positional ones named, ``**kwargs`` flattened)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return {**{f"arg{index}": value for index, value in enumerate(args)}, **kwargs}
    bound = signature.bind_partial(*args, **kwargs)
    named: dict[str, Any] = {}
    for parameter_name, value in bound.arguments.items():
        kind = signature.parameters[parameter_name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            named[parameter_name] = list(value)
        else:
            named[parameter_name] = value
    return named


def arguments_as_json(arguments: dict[str, Any], tool_name: str) -> dict[str, Any]:
    return {name: _as_json(value, f"argument {name!r} of {tool_name}") for name, value in arguments.items()}


def _as_json(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _as_json(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if is_pydantic(value):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _as_json(dataclasses.asdict(value), where)
    raise UnrecordableValueError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be recorded: "
        "tool arguments must be JSON values, pydantic models or dataclasses. Pass plain data, or "
        "keep that argument out of the recorded function."
    )


def check_replayable(value: Any, recorder: Recorder, where: str) -> None:
    """Refuse, while recording, a result that could not be rebuilt on replay."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnrecordableValueError(f"{where} has a non-string key {key!r}; JSON keys are strings.")
            check_replayable(item, recorder, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_replayable(item, recorder, f"{where}[{index}]")
        return
    if is_pydantic(value) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        name = type_name(type(value))
        try:
            recorder.registry.resolve(name, source=where)
        except RecordingFileError:
            raise UnrecordableValueError(
                f"{where} is a {name}, which replay could not rebuild: register the class with "
                "@api_recorder.register_type (in a module your tests import) and record again."
            ) from None
        return
    raise UnrecordableValueError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be recorded: "
        "tool results must be JSON values, pydantic models or registered dataclasses."
    )
