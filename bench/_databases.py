"""A database of its own for one benchmark run: on the PostgreSQL server that a URL names (a
new database, dropped after the run), or a SQLite file in a temporary directory."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

__all__ = ["throwaway"]


@contextmanager
def throwaway(db: str) -> Iterator[str]:
    """The URL of a new, empty database like ``db``'s, for the block (``memory://`` as is)."""
    if db.startswith(("postgresql:", "postgres:")):
        url, name = _create(db)
        try:
            yield url
        finally:
            _drop(db, name)
    elif db.startswith("sqlite:"):
        with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
    else:
        yield db


def _server(dsn: str) -> list[str]:
    parts = urlsplit(dsn)
    return ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
            "-U", parts.username or "postgres"]


def _create(dsn: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", *_server(dsn), name], check=True)
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}")), name


def _drop(dsn: str, name: str) -> None:
    subprocess.run(["dropdb", *_server(dsn), "--force", name], check=False)
