"""``durable migrate`` and ``durable bench``: the store's schema, and this machine's speed."""

from __future__ import annotations

import argparse
import asyncio

from .._bench import add_arguments as add_bench_arguments
from .._stores import migrate_store
from .._urls import redact
from ._options import Commands
from . import _render
from ._targets import refused_urls, store_url, wants_json

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Register ``bench`` and ``migrate``."""
    add_bench_arguments(commands.add(
        "bench", _bench, "measure replay speed on this machine, by workflow shape and history "
        "size, next to Python's and asyncio's floors"))
    commands.add("migrate", _migrate, "create or upgrade the store's schema and print its version")


async def _bench(args: argparse.Namespace) -> int:
    from .._bench._replay import run  # imported here: its workflows would join every registry

    await asyncio.to_thread(run, args)  # it runs event loops of its own (the floors)
    return 0


async def _migrate(args: argparse.Namespace) -> int:
    url = store_url(args)
    with refused_urls():
        version = await migrate_store(url)
    print(_render.json({"url": redact(url), "schema_version": version}) if wants_json(args)
          else f"schema version {version} at {redact(url)}")
    return 0
