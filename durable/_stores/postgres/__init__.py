"""The PostgreSQL store: ``postgresql://…``, asyncpg with a pool, schema in numbered migrations."""

from ._store import PostgresStore, migrate

__all__ = ["PostgresStore", "migrate"]
