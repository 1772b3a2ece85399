"""The PostgreSQL store: ``postgresql://…``, asyncpg with a pool, schema in numbered migrations."""

from ._connection import migrate
from ._store import PostgresStore

__all__ = ["PostgresStore", "migrate"]
