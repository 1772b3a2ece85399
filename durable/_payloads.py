"""Converting arguments and results to payloads and back, validated against type hints.

A payload is what history stores: msgspec builtins (dicts, lists, str, int, float, bool,
None, bytes, datetime). Values go in through :func:`dump` (validate, then normalize) and come
back out through :meth:`Params.load` / :meth:`Result.load` (convert to the annotated types).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Final

import msgspec

from .errors import PayloadError, ValidationError

__all__ = ["MAX_PAYLOAD_BYTES", "Params", "Result", "dump_value", "error_info"]

MAX_PAYLOAD_BYTES: Final = 2 * 1024 * 1024
# Datetimes become ISO strings (converted back by type hints), so every store returns the same.
_BUILTIN_TYPES: Final = (bytes, bytearray)
_size_encoder: Final = msgspec.msgpack.Encoder()
_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def dump_value(value: Any, where: str) -> Any:
    """Normalize ``value`` to payload builtins; raise PayloadError if msgspec cannot encode it."""
    try:
        return msgspec.to_builtins(value, builtin_types=_BUILTIN_TYPES)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise PayloadError(
            f"{where}: cannot encode {type(value).__name__} value ({exc}); use builtins, "
            "dataclasses, msgspec Structs or datetimes",
            where=where,
        ) from exc


def check_size(payload: Any, where: str, limit: int = MAX_PAYLOAD_BYTES) -> None:
    """Raise PayloadError if ``payload`` encodes to more than ``limit`` bytes."""
    size = len(_size_encoder.encode(payload))
    if size > limit:
        raise PayloadError(
            f"{where}: payload of {size} bytes exceeds the limit of {limit} bytes; store large "
            "data elsewhere and pass a reference",
            where=where,
            size=size,
            limit=limit,
        )


_SCALARS: Final = (int, float, str, bool, bytes)


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return None

    if hint in _SCALARS:  # a value of exactly that type needs no conversion (the common case)
        def convert_scalar(value: Any) -> Any:
            if type(value) is hint:
                return value
            return msgspec.convert(value, hint, builtin_types=_BUILTIN_TYPES)

        return convert_scalar

    def convert(value: Any) -> Any:
        return msgspec.convert(value, hint, builtin_types=_BUILTIN_TYPES)

    return convert


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
        self.converters = {p.name: _converter(hints.get(p.name, Any)) for p in params}
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
        return dump_value(list(args), self.where), dump_value(kwargs, self.where)

    def _validate(self, name: str, value: Any) -> None:
        convert = self.converters.get(name)
        if convert is None:
            return
        try:
            convert(dump_value(value, f"{self.where}({name}=…)"))
        except msgspec.ValidationError as exc:
            raise ValidationError(f"{self.where}(): argument {name!r}: {exc}",
                                  function=self.where, parameter=name) from None

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

    __slots__ = ("where", "convert")

    def __init__(self, fn: Callable[..., Any], where: str) -> None:
        self.where = where
        self.convert = _converter(_hints(fn).get("return", Any))  # None: returned as is

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
        """Convert a recorded result back to the annotated type."""
        return payload if self.convert is None else self.convert(payload)


def error_info(exc: BaseException) -> Any:
    """Describe an exception as history keeps it."""
    import traceback

    from ._history import ErrorInfo

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorInfo(type(exc).__qualname__, str(exc), tb[-8000:])
