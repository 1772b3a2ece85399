"""Dispatch hints on the wire: a ``TaskRef`` in a stream entry's field, and the hints of an
``XREADGROUP`` reply."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import msgspec

from .._stores import TaskRef
from . import _keys
from ._fair import Hint

__all__ = ["encode_ref", "hints_of", "ref_of", "text"]

logger = logging.getLogger("durable.dispatch")

encode_ref = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(TaskRef).decode


def hints_of(reply: Any) -> list[Hint]:
    """The hints of an XREADGROUP reply."""
    items = cast(Iterable[tuple[Any, Any]],
                 reply.items() if isinstance(reply, dict) else (reply or []))
    found: list[Hint] = []
    for stream, entries in items:
        pairs: list[Any] = list(entries)
        found += [Hint(text(stream), pair[0], ref_of(pair[1])) for pair in pairs]
    return found


def ref_of(fields: Any) -> TaskRef | None:
    """The task an entry's fields name (None: trimmed away, or unreadable)."""
    data = fields.get(_keys.HINT_FIELD) if fields else None
    if data is None:
        return None
    try:
        return _decode(data)
    except msgspec.DecodeError:
        logger.warning("dropping an unreadable dispatch hint %r", data)
        return None


def text(value: Any) -> str:
    """A reply's bytes as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
