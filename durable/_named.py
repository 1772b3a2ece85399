"""Values with named fields, for JSON that people and scripts read (``durable ... --json``).

History events and their parts are MessagePack arrays on disk (``array_like``: compact, and
new fields go last); :func:`named` turns them, and any other struct or named tuple, into
objects keyed by field name, a tagged event with its class name under ``"type"``
(``{"type": "TimerFired", "seq": 7, "time": 1767603600.2, "cmd": 1}``).
:func:`events_from_named` reads such events back, so a history printed by
``durable show ID --json`` replays as the positional export does.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import msgspec

from . import _history
from ._history import Event
from .errors import HistoryError

__all__ = ["events_from_named", "is_named_history", "named"]


def named(obj: Any) -> Any:
    """``obj`` as JSON-ready builtins: each struct and named tuple an object of its fields (a
    tagged struct's tag under its tag field), each enum its value; other values as they are."""
    if isinstance(obj, msgspec.Struct):
        config = obj.__struct_config__
        fields = {f: named(getattr(obj, f)) for f in obj.__struct_fields__}
        return fields if config.tag is None else {config.tag_field: config.tag, **fields}
    if isinstance(obj, (list, tuple)):
        items = cast("Sequence[Any]", obj)
        names: tuple[str, ...] | None = getattr(items, "_fields", None)  # a named tuple
        if names is not None:
            return {name: named(value) for name, value in zip(names, items)}
        return [named(v) for v in items]
    if isinstance(obj, dict):
        mapping = cast("Mapping[Any, Any]", obj)
        return {k: named(v) for k, v in mapping.items()}
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


_EVENTS: Final = {cls.__struct_config__.tag: cls for cls in typing.get_args(Event)}


def is_named_history(text: bytes | str) -> bool:
    """Whether JSON text looks like a history with named fields: ``show --json``'s document
    (an object) or a list of event objects, not a list of arrays."""
    head = (text.encode() if isinstance(text, str) else text)[:4096].lstrip()
    return head.startswith(b"{") or (head.startswith(b"[") and head[1:].lstrip()[:1] == b"{")


def events_from_named(data: Any) -> list[Event]:
    """The events of a decoded history with named fields: a list of event objects, or an
    object with them under ``"history"``; ``HistoryError`` if it is not one."""
    items = cast("Mapping[str, Any]", data).get("history") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise HistoryError("not a durable history in JSON: \"history\" is not a list of events")
    events = cast("Sequence[Any]", items)
    try:
        return [msgspec.convert(_positional(item, i), Event) for i, item in enumerate(events, 1)]
    except msgspec.ValidationError as exc:
        raise HistoryError(f"not a durable history in JSON: {exc}") from None


def _positional(item: Any, position: int) -> list[Any]:
    """One event object as the array its struct decodes from."""
    fields: Mapping[str, Any] = cast("Mapping[str, Any]", item) if isinstance(item, dict) else {}
    cls = _EVENTS.get(fields.get("type"))
    if cls is None:
        raise HistoryError(f"not a durable history in JSON: item {position} is not an event "
                           f"(an object with a \"type\" of {sorted(_EVENTS)})")
    return [cls.__struct_config__.tag, *_fields(cls, fields)]


def _fields(cls: type[msgspec.Struct], obj: Mapping[str, Any]) -> list[Any]:
    values: list[Any] = []
    for name, nested, default in _shape(cls):
        if name in obj:
            value = obj[name]
            if nested is not None and isinstance(value, dict):  # ErrorInfo, ParentRef
                value = _fields(nested, cast("Mapping[str, Any]", value))
            values.append(value)
        elif default is _REQUIRED:
            raise HistoryError(f"not a durable history in JSON: a {cls.__name__} has no "
                               f"{name!r}")
        else:
            values.append(default.factory() if _is_factory(default) else default)
    return values


_REQUIRED: Final = object()
Shape = list[tuple[str, "type[msgspec.Struct] | None", Any]]  # name, nested struct, default
_shapes: dict[type[msgspec.Struct], Shape] = {}


def _shape(cls: type[msgspec.Struct]) -> Shape:
    """Each field of ``cls`` in order: its name, the struct it holds (if any), its default."""
    shape = _shapes.get(cls)
    if shape is None:
        # Resolved in _history's namespace: the public events say __module__ = "durable".
        hints = typing.get_type_hints(cls, globalns=_history.__dict__)
        names, defaults = cls.__struct_fields__, cls.__struct_defaults__
        padded = (_REQUIRED,) * (len(names) - len(defaults)) + defaults
        shape = _shapes[cls] = [(name, _array_struct(hints[name]), default)
                                for name, default in zip(names, padded)]
    return shape


def _is_factory(default: Any) -> bool:
    """Whether a struct default is msgspec's wrapper of a mutable one (``[]``, ``{}``)."""
    return type(default).__module__.startswith("msgspec") and hasattr(default, "factory")


def _array_struct(annotation: Any) -> type[msgspec.Struct] | None:
    """The struct a field holds (``ErrorInfo``, ``ParentRef``; alone or or-None), if any."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) \
        else (annotation,)
    for option in options:
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            return option
    return None
