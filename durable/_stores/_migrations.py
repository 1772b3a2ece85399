"""Numbered schema migrations shipped as ``migrations/NNNN_name.sql`` beside each store."""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

__all__ = ["migration_files"]

_MIGRATION_NAME: Final = re.compile(r"^(\d{4})_\w+\.sql$")


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of ``package``'s migrations, in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)
