"""Numbered schema migrations shipped as ``migrations/NNNN_name.sql`` beside each store.

A database records each migration it applied (version and file name) in ``schema_version``.
Opening it applies every shipped migration it has not recorded, in order, not only those
above its highest: numbers are handed out in ranges to work that lands in any order, so a
database may have a later number before an earlier one ships. A migration is known by its
name: a record whose number differs from the shipped file of that name was renumbered since
(as main's were on 2026-12-02, from 0010, 0020, ... to one dense sequence per store), and is
recorded again under today's number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Final

__all__ = ["Migration", "migration_files", "pending", "renumbered"]

Migration = tuple[int, str, str]  # (version, file name, SQL)

_MIGRATION_NAME: Final = re.compile(r"^(\d{4})_\w+\.sql$")


def migration_files(package: str) -> list[Migration]:
    """``(version, file name, SQL)`` of ``package``'s migrations, in order."""
    found: list[Migration] = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def renumbered(recorded: Iterable[tuple[int, str]],
               migrations: Sequence[Migration]) -> list[tuple[int, int, str]]:
    """The records of migrations renumbered since they were applied: (the recorded version,
    today's version, today's file name)."""
    shipped = {name[5:]: (version, name) for version, name, _ in migrations}
    moves: list[tuple[int, int, str]] = []
    for version, name in recorded:
        now = shipped.get(name[5:])
        if now is not None and now[0] != version:
            moves.append((version, *now))
    return moves


def pending(migrations: Sequence[Migration], applied: Iterable[int]) -> list[Migration]:
    """The shipped migrations a database that recorded ``applied`` still needs, in order."""
    done = set(applied)
    return [m for m in migrations if m[0] not in done]
