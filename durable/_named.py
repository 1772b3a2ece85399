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
from collections.abc import Sequence
from typing import Any, Final, cast

import msgspec

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
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        pairs = zip(cast("tuple[str, ...]", getattr(obj, "_fields")), cast("tuple[Any, ...]", obj))
        return {name: named(value) for name, value in pairs}
    if isinstance(obj, (list, tuple)):
        return [named(v) for v in cast("Sequence[Any]", obj)]
    if isinstance(obj, dict):
        return {k: named(v) for k, v in cast("dict[Any, Any]", obj).items()}
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
    items: Any = cast("dict[str, Any]", data).get("history") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise HistoryError("not a durable history in JSON: \"history\" is not a list of events")
    try:
        return [msgspec.convert(_positional(item, i), Event)
                for i, item in enumerate(cast("list[Any]", items), 1)]
    except msgspec.ValidationError as exc:
        raise HistoryError(f"not a durable history in JSON: {exc}") from None


def _positional(item: Any, position: int) -> list[Any]:
    """One event object as the array its struct decodes from."""
    cls = _EVENTS.get(item.get("type")) if isinstance(item, dict) else None
    if cls is None:
        raise HistoryError(f"not a durable history in JSON: item {position} is not an event "
                           f"(an object with a \"type\" of {sorted(_EVENTS)})")
    return [cls.__struct_config__.tag, *_fields(cls, cast("dict[str, Any]", item))]


def _fields(cls: type[msgspec.Struct], obj: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for field in msgspec.structs.fields(cls):
        if field.name in obj:
            nested = _array_struct(field.type)
            value = obj[field.name]
            values.append(_fields(nested, value) if nested and isinstance(value, dict) else value)
        elif field.required:
            raise HistoryError(f"not a durable history in JSON: a {cls.__name__} has no "
                               f"{field.name!r}")
        else:
            values.append(field.default_factory() if field.default is msgspec.NODEFAULT
                          else field.default)
    return values


def _array_struct(annotation: Any) -> type[msgspec.Struct] | None:
    """The struct a field holds (``ErrorInfo``, ``ParentRef``; alone or or-None), if any."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) \
        else (annotation,)
    for option in options:
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            return option
    return None
