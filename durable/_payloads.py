"""Converting arguments and results to payloads and back, validated against type hints.

A payload is what history stores: msgspec builtins (dicts, lists, str, int, float, bool,
None, bytes, datetime). Values go in through :func:`dump` (validate, then normalize) and come
back out through :meth:`Params.load` / :meth:`Result.load` (convert to the annotated types).
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from contextvars import ContextVar
from typing import Any, Callable, Final, Generator

import msgspec

from .errors import PayloadError, ValidationError

__all__ = ["MAX_METADATA_BYTES", "MAX_PAYLOAD_BYTES", "MAX_PAYLOAD_DEPTH", "Params", "Result",
           "check_metadata", "check_payload_limit", "check_size", "convert", "describe_error",
           "dump_value", "error_info", "payload_limit", "safe_text"]

MAX_PAYLOAD_BYTES: Final = 2 * 1024 * 1024  # the default of connect(max_payload_bytes=)
# What a store row can hold and a worker can hold in memory many times over: the most
# connect(max_payload_bytes=) may allow.
MAX_PAYLOAD_LIMIT: Final = 256 * 1024 * 1024
# The limit in force: a client's (``payload_limit``, around its calls) and a worker's (for
# the workflows and actions it runs), else the default.
_limit: ContextVar[int] = ContextVar("durable_payload_limit", default=MAX_PAYLOAD_BYTES)


@contextlib.contextmanager
def payload_limit(limit: int) -> Generator[None]:
    """Payloads checked inside (and in tasks created inside) are limited to ``limit`` bytes."""
    token = _limit.set(limit)
    try:
        yield
    finally:
        _limit.reset(token)


def check_payload_limit(limit: Any) -> int:
    """``connect(max_payload_bytes=)``: an int from 1 KiB to 256 MiB."""
    from ._validate import show
    from .errors import ArgumentTypeError, InvalidArgumentError

    if type(limit) is not int:
        raise ArgumentTypeError(f"max_payload_bytes is an int, not {show(limit)}",
                                parameter="max_payload_bytes")
    if not 1024 <= limit <= MAX_PAYLOAD_LIMIT:
        raise InvalidArgumentError(f"max_payload_bytes is from 1024 to {MAX_PAYLOAD_LIMIT} "
                                   f"(256 MiB), not {limit}", parameter="max_payload_bytes")
    return limit
MAX_METADATA_BYTES: Final = 16 * 1024  # an event's metadata: who sent it, not a payload
# How deeply lists and dicts may nest in a payload. msgspec encodes and decodes nesting on the
# Python stack: a value nested 900 deep encodes in a shallow caller and then fails to decode in
# a deeper one (a worker), which would leave its history unreadable. 100 levels leave room
# for any caller's stack below Python's default recursion limit (1,000).
MAX_PAYLOAD_DEPTH: Final = 100
# Datetimes become ISO strings (converted back by type hints), so every store returns the same.
_BUILTIN_TYPES: Final = (bytes, bytearray)
_size_encoder: Final = msgspec.msgpack.Encoder()
_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
# what msgspec raises for a value it cannot encode (OverflowError: an int beyond 64 bits)
_UNENCODABLE: Final = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


def dump_value(value: Any, where: str) -> Any:
    """Normalize ``value`` to payload builtins; raise PayloadError if msgspec cannot encode it."""
    try:
        return msgspec.to_builtins(value, builtin_types=_BUILTIN_TYPES)
    except _UNENCODABLE as exc:
        raise _unencodable(value, where, exc) from None


def _unencodable(value: Any, where: str, exc: BaseException) -> PayloadError:
    if isinstance(exc, RecursionError):
        reason = f"it nests more than {MAX_PAYLOAD_DEPTH} lists or dicts deep"
    elif isinstance(exc, UnicodeEncodeError):
        reason = "a str in it has a lone surrogate, which UTF-8 cannot encode"
    elif isinstance(exc, OverflowError):
        reason = "an int in it is outside the 64-bit range (-2**63 to 2**64 - 1)"
    else:
        reason = str(exc)
    return PayloadError(
        f"{where}: cannot encode {type(value).__name__} value ({reason}); use builtins, "
        "dataclasses, msgspec Structs or datetimes", where=where, reason=reason)


def same_payload(recorded: Any, value: Any) -> bool:
    """Whether ``value`` is what ``recorded`` (a payload read back from history) records:
    equal as they are (the common case, and cheap), or encoded to the same bytes (a tuple
    comes back a list, NaN is not equal to itself, a dataclass is recorded as a dict)."""
    try:
        return bool(recorded == value) or _encode(recorded) == _encode(value)
    except _UNENCODABLE:
        return False


_encode: Final = msgspec.msgpack.Encoder().encode


def convert(payload: Any, hint: Any, where: str) -> Any:
    """A recorded ``payload`` as ``hint`` (a type msgspec converts to); ``ValidationError``
    naming ``where`` if it does not fit."""
    converter = _converter(hint, where, None)
    if converter is None:
        return payload
    try:
        return converter(payload)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"{where}: {exc}", function=where) from None


def check_metadata(metadata: Any, where: str) -> dict[str, Any] | None:
    """``metadata`` as recorded: None, or a dict of non-empty ``str`` keys to encodable values
    in at most :data:`MAX_METADATA_BYTES` (a ``ValidationError`` or ``PayloadError`` if not)."""
    if metadata is None:
        return None
    keys: list[Any] = list(metadata) if isinstance(metadata, dict) else []  # pyright: ignore[reportUnknownArgumentType]
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and k for k in keys):
        raise ValidationError(f"{where}: metadata is a dict with non-empty str keys, not "
                              f"{metadata!r:.200}", parameter="metadata")
    payload: dict[str, Any] = dump_value(metadata, where)
    check_size(payload, where, MAX_METADATA_BYTES)
    return payload


def check_size(payload: Any, where: str, limit: int | None = None) -> None:
    """Raise PayloadError unless ``payload`` (builtins, from :func:`dump_value`) encodes, in
    at most ``limit`` bytes (default: the limit in force, see :func:`payload_limit`) and
    :data:`MAX_PAYLOAD_DEPTH` levels of nesting.

    Every payload passes here before it is recorded, so a value that could be written but not
    read back (a lone surrogate, an int beyond 64 bits, deep nesting) is refused at the call.
    """
    try:
        size = len(_size_encoder.encode(payload))
    except _UNENCODABLE as exc:
        raise _unencodable(payload, where, exc) from None
    if size > MAX_PAYLOAD_DEPTH and _deeper_than(payload, MAX_PAYLOAD_DEPTH):
        raise _unencodable(payload, where, RecursionError())
    if limit is None:
        limit = _limit.get()
    if size > limit:
        raise PayloadError(
            f"{where}: payload of {size} bytes exceeds the limit of {limit} bytes "
            "(durable.connect(max_payload_bytes=)); store large data elsewhere and pass a "
            "reference",
            where=where,
            size=size,
            limit=limit,
        )


def _deeper_than(payload: Any, limit: int) -> bool:
    """Whether lists and dicts nest more than ``limit`` deep in ``payload`` (builtins).

    Only called for payloads of more than ``limit`` bytes: each level takes a byte at least.
    """
    level: list[Any] = [payload]
    for _ in range(limit):
        level = [child for value in level if type(value) in _CONTAINERS
                 for child in (value.values() if type(value) is dict else value)  # pyright: ignore
                 if type(child) in _CONTAINERS]  # pyright: ignore[reportUnknownArgumentType]
        if not level:
            return False
    return True


_CONTAINERS: Final = (list, dict, tuple)


def safe_text(text: str) -> str:
    """``text`` as every store keeps it: lone surrogates replaced, NUL removed (for messages
    that durable writes itself, such as an exception's, which no caller validated)."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "") if "\x00" in text else text


_SCALARS: Final = (int, float, str, bool, bytes)


def _converter(hint: Any, where: str, parameter: str | None) -> Callable[[Any], Any] | None:
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return None
    _check_convertible(hint, where, parameter)

    if hint in _SCALARS:  # a value of exactly that type needs no conversion (the common case)
        def convert_scalar(value: Any) -> Any:
            if type(value) is hint:
                return value
            return msgspec.convert(value, hint, builtin_types=_BUILTIN_TYPES)

        return convert_scalar

    def convert(value: Any) -> Any:
        return msgspec.convert(value, hint, builtin_types=_BUILTIN_TYPES)

    return convert


def _check_convertible(hint: Any, where: str, parameter: str | None) -> None:
    """A type msgspec cannot convert to is refused at decoration, not at the first call."""
    try:
        msgspec.json.Decoder(hint)
    except TypeError as exc:
        advice = ("; a Union of dataclasses cannot be told apart: make them msgspec.Struct "
                  "classes with tag=True (msgspec's tagged unions), or use one type"
                  if "union" in str(exc).lower() else "; use a type msgspec supports")
        what = "the return annotation" if parameter is None else f"parameter {parameter!r}"
        raise ValidationError(f"{where}: {what} has the type {hint!r}, which msgspec cannot "
                              f"convert to ({exc}){advice}", function=where,
                              parameter=parameter) from None


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to no validation
        return {}


class Params:
    """The parameters of a workflow or action, for validating and converting arguments."""

    __slots__ = ("where", "names", "converters", "required", "defaults", "var_positional",
                 "_positional")

    def __init__(self, fn: Callable[..., Any], where: str, skip_first: bool = False) -> None:
        self.where = where
        hints = _hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        if skip_first:
            params = params[1:]
        self.names: tuple[str, ...] = tuple(p.name for p in params if p.kind in _POSITIONAL or
                                            p.kind is inspect.Parameter.KEYWORD_ONLY)
        self.converters = {p.name: _converter(hints.get(p.name, Any), where, p.name)
                           for p in params}
        self.required = {p.name for p in params if p.default is inspect.Parameter.empty and
                         p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        self.defaults = {p.name for p in params if p.default is not inspect.Parameter.empty}
        self.var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
        self._positional = sum(p.kind in _POSITIONAL for p in params)

    def dump(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Validate ``args``/``kwargs`` against the signature and return them as payloads."""
        if len(args) > self._positional and not self.var_positional:
            raise ValidationError(
                f"{self.where}() takes {self._positional} positional arguments but {len(args)} "
                "were given",
                function=self.where,
            )
        bound = dict(zip(self.names, args))
        for key in kwargs:
            if key in bound:
                raise ValidationError(f"{self.where}() got multiple values for argument {key!r}",
                                      function=self.where, parameter=key)
            if key not in self.converters:
                raise ValidationError(f"{self.where}() got an unexpected argument {key!r}",
                                      function=self.where, parameter=key)
        bound.update(kwargs)
        missing = [n for n in self.required if n not in bound]
        if missing:
            raise ValidationError(f"{self.where}() is missing argument(s) {', '.join(missing)}",
                                  function=self.where, parameter=missing[0])
        for name, value in bound.items():
            self._validate(name, value)
        payload = dump_value(list(args), self.where), dump_value(kwargs, self.where)
        check_size(list(payload), f"arguments of {self.where}")  # that they can be read back
        return payload

    def _validate(self, name: str, value: Any) -> None:
        convert = self.converters.get(name)
        if convert is None:
            return
        where = f"{self.where}({name}=…)"
        payload = dump_value(value, where)
        try:
            convert(payload)
        except msgspec.ValidationError as exc:
            raise ValidationError(f"{self.where}(): argument {name!r}: {exc}",
                                  function=self.where, parameter=name) from None
        except RecursionError as exc:
            raise _unencodable(payload, where, exc) from None

    def load(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Convert recorded payloads back to the annotated types."""
        try:
            out = [self._load(name, value) for name, value in zip(self.names, args)]
            out.extend(args[len(out):])
            return out, {k: self._load(k, v) for k, v in kwargs.items()}
        except msgspec.ValidationError as exc:
            raise ValidationError(f"{self.where}(): recorded arguments no longer fit the "
                                  f"signature: {exc}", function=self.where) from None

    def _load(self, name: str, value: Any) -> Any:
        convert = self.converters.get(name)
        return value if convert is None else convert(value)


class Result:
    """The return type of a workflow or action."""

    __slots__ = ("where", "convert", "exact")

    def __init__(self, fn: Callable[..., Any], where: str) -> None:
        self.where = where
        hint = _hints(fn).get("return", Any)
        # None: returned as is
        self.convert = _converter(hint, where, None)
        # a scalar type whose values ``convert`` returns as they are (replay skips the call)
        self.exact: type | None = hint if hint in _SCALARS else None

    def dump(self, value: Any) -> Any:
        """Validate a returned value and return it as a payload."""
        payload = dump_value(value, f"result of {self.where}")
        if self.convert is not None:
            try:
                self.convert(payload)
            except msgspec.ValidationError as exc:
                raise ValidationError(f"{self.where} returned a value that does not match its "
                                      f"return annotation: {exc}", function=self.where) from None
        check_size(payload, f"result of {self.where}")
        return payload

    def load(self, payload: Any) -> Any:
        """Convert a recorded result back to the annotated type (``ValidationError`` if it no
        longer fits: the annotation changed since it was recorded)."""
        if self.convert is None:
            return payload
        try:
            return self.convert(payload)
        except msgspec.ValidationError as exc:
            raise ValidationError(
                f"the recorded result of {self.where} does not match its return annotation "
                f"({exc}): was the annotation changed after it was recorded? Annotate a type "
                "that old and new results both fit", function=self.where) from None


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` of an exception, as a store keeps it (``task_error``, an action's
    ``last_error``)."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ raises
        message = "<str() failed>"
    return safe_text(f"{type(exc).__name__}: {message}")


def error_info(exc: BaseException) -> Any:
    """Describe an exception as history keeps it."""
    import traceback

    from ._history import ErrorInfo

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        message = str(exc)
    except Exception as broken:  # noqa: BLE001 - an exception whose __str__ raises
        message = f"<{type(exc).__qualname__}: str() raised {type(broken).__name__}>"
    return ErrorInfo(safe_text(type(exc).__qualname__), safe_text(message), safe_text(tb[-8000:]))
