"""The web UI's executions page at 1,000,000 executions in PostgreSQL.

Creates a fresh database (dropped at the end), fills ``executions`` with one INSERT ...
SELECT over ``generate_series`` (10 tenants, 5 workflows, 30 days; 90 % completed, 7 %
running, 1 % held, 1 % failed, 1 % cancelled; 1 % continued as new), VACUUM ANALYZE, then
times, for each filter, the first page and a deep page (half a million rows in, by its
cursor: keyset paging) of 50 rows:

* ``store``: ``Store.page_executions`` alone, and the counts per status
  (``count_executions``, capped at 10,000 each);
* ``http``: ``GET /?...`` of the running UI (``durable._ui``), page and counts rendered,
  timed by the client on loopback: the server's time plus one local round trip.

Median and max of ``--repeat`` runs each, in ms. Target: under 100 ms each.

    python -m bench.ui --dsn postgresql://postgres@127.0.0.1:5432/postgres [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg

import durable
from durable._stores._listing import ExecutionQuery, encode_cursor
from durable._stores._records import ExecutionRecord
from durable._ui import UiServer

FILL = """
INSERT INTO executions (tenant, workflow_id, run_id, workflow, version, status, created_at,
                        updated_at, last_seq, data, result, task_error, runs)
SELECT 'tenant-' || ((g / 100) % 10), 'wf-' || lpad(g::text, 8, '0'), 'run-' || g,
       (ARRAY['Invoice', 'Order', 'Trip', 'Signup', 'Report'])[1 + (g / 7) % 5], '1',
       CASE WHEN g % 100 < 90 THEN 'completed' WHEN g % 100 < 98 THEN 'running'
            WHEN g % 100 = 98 THEN 'failed' ELSE 'cancelled' END,
       $2 - 30 * 86400 + g * (30 * 86400.0 / $1), $2, 10, '\\x80'::bytea, '\\xc0'::bytea,
       CASE WHEN g % 100 = 97 THEN 'NonDeterminismError: diverged' END,
       CASE WHEN g % 100 = 50 THEN 2 ELSE 1 END
FROM generate_series(1, $1) AS g
"""

FILTERS: list[dict[str, str]] = [
    {"tenant": "tenant-3"},
    {"tenant": "tenant-3", "status": "running"},
    {"tenant": "tenant-3", "status": "held"},
    {"tenant": "tenant-3", "workflow": "Order"},
    {"tenant": "tenant-3", "workflow": "Order", "status": "completed"},
    {"tenant": "tenant-3", "since": "2026-01-01", "status": "failed"},
    {"tenant": "tenant-3", "id_prefix": "wf-0042"},
    {},
]


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    await fn()  # warm: prepared statements, caches
    took: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took), max(took)


def _query(f: dict[str, str]) -> ExecutionQuery:
    since = time.mktime(time.strptime(f["since"], "%Y-%m-%d")) if "since" in f else None
    tenants = frozenset({f["tenant"]}) if "tenant" in f else None
    return ExecutionQuery(tenants, f.get("workflow"), f.get("status"), since, None,
                          f.get("id_prefix"))


async def _deep_cursor(client: durable.Client, query: ExecutionQuery, rows: int) -> str | None:
    """The cursor half-way through the filter's rows (found once, by OFFSET: not timed)."""
    total = sum((await client.store.count_executions(query, cap=rows)).values()) if \
        query.status is None else (await client.store.count_executions(query, cap=rows))[
            query.status]
    offset = max(0, min(total, rows) // 2)
    if offset < 100:
        return None
    store: Any = client.store
    from durable._stores.postgres._listing import _where  # pyright: ignore[reportPrivateUsage]

    where, params = _where(query, None)
    row = await store._fetchrow(  # pyright: ignore[reportPrivateUsage]
        f"SELECT created_at, workflow_id, tenant FROM executions WHERE {where} "
        f"ORDER BY created_at DESC, workflow_id DESC, tenant DESC OFFSET {offset} LIMIT 1",
        *params)
    record = ExecutionRecord(row[2], row[1], "", "", "", "running", row[0], 0.0, 0)
    return encode_cursor(record)


async def run(dsn: str, rows: int, repeat: int) -> None:
    name = f"durable_bench_ui_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    try:
        async with durable.connect(url, tenants="*") as client:
            conn = await asyncpg.connect(url)
            start = time.perf_counter()
            await conn.execute(FILL, rows, time.time())
            await conn.execute("VACUUM ANALYZE executions")
            print(f"filled {rows:,} executions in {time.perf_counter() - start:.1f} s "
                  f"({name}, dropped at the end)")
            await conn.close()
            await _measure(client, rows, repeat)
    finally:
        admin = await asyncpg.connect(dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _measure(client: durable.Client, rows: int, repeat: int) -> None:
    server = UiServer(client, port=0)
    serving = asyncio.create_task(server.run())
    await server.wait_started()
    print(f"{'filter':<48} {'page':>5}  {'store ms':>14}  {'counts ms':>14}  {'http ms':>14}")
    worst = 0.0
    try:
        async with aiohttp.ClientSession() as http:
            for f in FILTERS:
                query = _query(f)
                deep = await _deep_cursor(client, query, rows)
                for label, after in (("first", None), ("deep", deep)):
                    if label == "deep" and after is None:
                        continue
                    cursor = None if after is None else _decode(after)
                    store = await _timed(lambda: client.store.page_executions(
                        query, after=cursor, limit=51), repeat)
                    counts = await _timed(lambda: client.store.count_executions(
                        query, cap=10_000), repeat)
                    params = {**f, **({"after": after} if after else {})}

                    async def get() -> None:
                        async with http.get(f"{server.url}/?{urlencode(params)}") as r:
                            assert r.status == 200, await r.text()
                            await r.read()

                    page = await _timed(get, repeat)
                    worst = max(worst, page[0])
                    shown = " ".join(f"{k}={v}" for k, v in f.items()) or "(every tenant)"
                    print(f"{shown:<48} {label:>5}  {_ms(store)}  {_ms(counts)}  {_ms(page)}")
    finally:
        server.shutdown()
        await serving
    print(f"worst median http page: {worst:.1f} ms (target < 100 ms: "
          f"{'met' if worst < 100 else 'NOT met'})")


def _decode(text: str) -> Any:
    from durable._stores._listing import decode_cursor

    return decode_cursor(text)


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:6.1f} / {pair[1]:5.1f}"


def main() -> None:
    """``python -m bench.ui``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (a fresh database is made on it and dropped)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run(args.dsn, args.rows, args.repeat))


if __name__ == "__main__":
    main()
