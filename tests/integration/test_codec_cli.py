"""``durable show`` and ``durable list`` on a store written with a payload codec: payloads
show as ``<encoded>`` unless the command is given the codec (``--codec MODULE:ATTR``)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import durable
from durable._cli import main

KEY = os.urandom(32)


def codec() -> durable.Codec:
    """The codec the store was written with (what ``--codec`` names)."""
    return durable.AesGcmCodec({"k1": KEY})


@durable.action(name="codec_cli_echo")
async def echo(text: str) -> str:
    return text.upper()


@durable.workflow(name="CodecCli")
async def shout(ctx: durable.Context, text: str) -> str:
    return await ctx.run(echo, text)


async def _run(db: str) -> None:
    async with durable.connect(db, codec=codec()) as client:
        handle = await client.start(shout, "very private", id="cli-1")
        async with durable.Worker(client, [shout], [echo], poll_interval=0.01):
            assert await handle.result(timeout=20) == "VERY PRIVATE"


def test_show_prints_encoded_payloads_unless_given_the_codec(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'codec.db'}"
    asyncio.run(_run(db))
    capsys.readouterr()

    assert main(["--db", db, "show", "cli-1"]) == 0
    out = capsys.readouterr().out
    assert "<encoded>" in out and "private" not in out.lower()
    assert main(["--db", db, "show", "cli-1", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)["history"]
    assert events[0]["type"] == "WorkflowStarted" and events[0]["args"] == ["<encoded>"]

    assert main(["--db", db, "--codec", f"{__name__}:codec", "show", "cli-1"]) == 0
    out = capsys.readouterr().out
    assert "<encoded>" not in out and '"very private"' in out and '"VERY PRIVATE"' in out

    os.environ["DURABLE_CODEC"] = f"{__name__}:codec"
    try:
        assert main(["--db", db, "show", "cli-1", "--json"]) == 0
    finally:
        del os.environ["DURABLE_CODEC"]
    assert "very private" in capsys.readouterr().out

    assert main(["--db", db, "--codec", "no_such_module:codec", "show", "cli-1"]) == 1
    assert "--codec no_such_module:codec" in capsys.readouterr().err
    # Another key: a typed error on one line, nothing changed.
    assert main(["--db", db, "--codec", f"{__name__}:other", "show", "cli-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "the payload was encrypted with key 'k1'" in err


def other() -> durable.Codec:
    """A codec with another key than the one the store was written with."""
    return durable.AesGcmCodec({"k2": os.urandom(32)})
