"""Optional packages: what each extra installs, and the error when one is missing.

The base install (``pip install durable``) runs the embedded SQLite and memory stores with
in-process dispatch; PostgreSQL, Redis dispatch and ``durable server`` each need an extra.
Every module that imports one of those packages at its top calls :func:`require` first, so
using the feature without the extra raises ``MissingExtraError`` naming the command to run,
and ``import durable`` never imports them.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from .errors import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: Final = {
    "asyncpg": "postgres",
    "redis": "redis",
    "aiohttp": "server",
    "prometheus_client": "server",
    "cryptography": "crypto",
}
"""The extra that installs each optional package (its import name)."""


def require(package: str, what: str) -> ModuleType:
    """Import ``package`` (a key of :data:`EXTRAS`) for ``what``; ``MissingExtraError`` if it
    is not installed. An import error from inside an installed package propagates."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != package:
            raise
        extra = EXTRAS[package]
        raise MissingExtraError(
            f"{what} needs the {package} package, which is not installed: run "
            f"pip install 'durable[{extra}]'", package=package, extra=extra) from None
