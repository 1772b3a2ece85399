"""The PostgreSQL store: ``postgresql://…``, asyncpg with a pool, schema in numbered migrations."""

from ..._extras import require

require("asyncpg", "a PostgreSQL store (postgresql://...)")  # before the modules that import it

from ._connection import migrate
from ._store import PostgresStore

__all__ = ["PostgresStore", "migrate"]
