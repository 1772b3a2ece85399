"""The PostgreSQL store's schedules (``ScheduleStore``), one statement per call."""

from __future__ import annotations

from typing import Final

from .._schedule_records import ScheduleRecord, decode_schedule, encode_schedule
from ._connection import PostgresBase

__all__ = ["PostgresSchedules"]

# $1 tenant, $2 schedule_id, $3 revision, $4 next_check, $5 body. Returns the stored body and
# whether this call inserted it.
_CREATE: Final = """
WITH inserted AS (
    INSERT INTO schedules (tenant, schedule_id, revision, next_check, body)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, schedule_id) DO NOTHING
    RETURNING body
)
SELECT body, true FROM inserted
UNION ALL
SELECT body, false FROM schedules
WHERE tenant = $1 AND schedule_id = $2 AND NOT EXISTS (SELECT FROM inserted)
"""
_SELECT: Final = "SELECT body FROM schedules WHERE tenant = $1 AND schedule_id = $2"
_LIST_TENANT: Final = ("SELECT body FROM schedules WHERE tenant = $1 "
                       "ORDER BY tenant, schedule_id LIMIT $2")
_LIST_ALL: Final = "SELECT body FROM schedules ORDER BY tenant, schedule_id LIMIT $1"
# $1 revision, $2 next_check, $3 body, $4 tenant, $5 schedule_id, $6 expected revision,
# $7 owner (NULL: any; else it must hold the lease), $8 whether the owner's lease is released
_UPDATE: Final = """
UPDATE schedules SET revision = $1, next_check = $2, body = $3,
    owner = CASE WHEN $7::text IS NOT NULL AND $8 THEN NULL ELSE owner END,
    lease_until = CASE WHEN $7::text IS NOT NULL AND $8 THEN 0 ELSE lease_until END
WHERE tenant = $4 AND schedule_id = $5 AND revision = $6
  AND ($7::text IS NULL OR owner = $7)
RETURNING true
"""
_DELETE: Final = ("DELETE FROM schedules WHERE tenant = $1 AND schedule_id = $2 "
                  "RETURNING true")
# $1 owner, $2 lease_until, $3 now, $4 limit, $5/$6 one key (NULL: any)
_CLAIM: Final = """
UPDATE schedules AS s SET owner = $1, lease_until = $2
FROM (SELECT tenant, schedule_id FROM schedules
      WHERE due <= $3 AND ($5::text IS NULL OR (tenant = $5 AND schedule_id = $6))
      ORDER BY due LIMIT $4 FOR UPDATE SKIP LOCKED) AS picked
WHERE s.tenant = picked.tenant AND s.schedule_id = picked.schedule_id
RETURNING s.body
"""
_NEXT_CHECK: Final = "SELECT min(due) FROM schedules"


class PostgresSchedules(PostgresBase):
    """Schedules in the ``schedules`` table (migration 0005)."""

    async def create_schedule(self, record: ScheduleRecord, *,
                              next_check: float | None) -> tuple[ScheduleRecord, bool]:
        """Insert the schedule unless its id is taken (see ``ScheduleStore``)."""
        while True:
            row = await self._fetchrow(_CREATE, record.tenant, record.schedule_id,
                                       record.revision, next_check, encode_schedule(record))
            if row is not None:  # None: deleted between the insert and the read; try again
                return decode_schedule(row[0]), bool(row[1])

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        """The schedule, or None."""
        body = await self._fetchval(_SELECT, tenant, schedule_id)
        return None if body is None else decode_schedule(body)

    async def list_schedules(self, tenant: str | None = None, *,
                             limit: int = 100) -> list[ScheduleRecord]:
        """Schedules by tenant and id; all tenants when ``tenant`` is None."""
        rows = (await self._fetch(_LIST_ALL, limit) if tenant is None
                else await self._fetch(_LIST_TENANT, tenant, limit))
        return [decode_schedule(row[0]) for row in rows]

    async def update_schedule(self, record: ScheduleRecord, *, next_check: float | None,
                              owner: str | None = None, release: bool = True) -> bool:
        """Compare-and-set on the revision (and the lease, with ``owner``)."""
        return bool(await self._fetchval(
            _UPDATE, record.revision, next_check, encode_schedule(record), record.tenant,
            record.schedule_id, record.revision - 1, owner, release))

    async def delete_schedule(self, tenant: str, schedule_id: str) -> bool:
        """Delete the schedule; False if there was none."""
        return bool(await self._fetchval(_DELETE, tenant, schedule_id))

    async def claim_schedules(self, owner: str, *, lease: float, now: float, limit: int,
                              key: tuple[str, str] | None = None) -> list[ScheduleRecord]:
        """Lease due schedules no live lease holds (``FOR UPDATE SKIP LOCKED``)."""
        if limit <= 0:
            return []
        tenant, schedule_id = key if key is not None else (None, None)
        rows = await self._fetch(_CLAIM, owner, now + lease, now, limit, tenant, schedule_id)
        return [decode_schedule(row[0]) for row in rows]

    async def next_schedule_check(self) -> float | None:
        """The earliest time a schedule needs a scheduler."""
        due: float | None = await self._fetchval(_NEXT_CHECK)
        return due
