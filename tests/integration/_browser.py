"""A headless Chromium for the UI's browser tests, driven by Playwright (async API).

The browser is Debian's ``chromium`` (``apt-get install chromium``, which ``scripts/test``
does on a machine that has apt), or ``$DURABLE_CHROMIUM``, or a browser Playwright installed
itself (``playwright install chromium``). Without Playwright or any of these, the tests skip
and say which is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """The browser binary to drive, or None to let Playwright use its own."""
    given = os.environ.get("DURABLE_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium; skips the test, saying why, when none can be had."""
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError:
        pytest.skip("no browser: the Python package 'playwright' is not installed "
                    "(pip install playwright; scripts/test installs it)")
    path = chromium_path()
    async with async_playwright() as p:
        try:
            launched = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        except Error as exc:
            pytest.skip(f"no browser: Chromium could not be started ({path or 'Playwright'}'s "
                        f"own; apt-get install chromium, or set DURABLE_CHROMIUM): "
                        f"{str(exc).splitlines()[0]}")
        try:
            yield launched
        finally:
            await launched.close()
