"""How commands are declared, and the values they share (JSON arguments, modules, durations).

Every command group adds its commands to a :class:`Commands` registrar.

A command's handler is a coroutine function that takes the parsed arguments and returns the
exit status. Every command repeats the global options of its registrar, so they may go before
or after the command's name.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

from ..errors import UsageError

__all__ = ["UNITS", "Commands", "Handler", "add_module_option", "json_value", "json_values",
           "parse_duration"]

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds per unit of a duration or an age (``90s``, ``5m``, ``2h``, ``1d``, ``1w``)."""

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$")


class Commands:
    """Adds commands, each with the global options ``common`` and its handler as a default."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser],
                 common: argparse.ArgumentParser) -> None:
        self._sub = sub  # what add_subparsers() returned
        self._common = common

    def add(self, name: str, handler: Handler, help: str, *, epilog: str | None = None,
            raw: bool = False) -> argparse.ArgumentParser:
        """Add command ``name``; ``raw`` keeps the layout of ``epilog``."""
        formatter = argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter
        parser = self._sub.add_parser(
            name, parents=[self._common], help=help, description=help, epilog=epilog,
            formatter_class=formatter)
        parser.set_defaults(handler=handler)
        return parser

    def group(self, name: str, help: str, description: str, dest: str) -> Commands:
        """Add command ``name`` whose own commands (``durable NAME ACTION``) go to the result."""
        parser = self._sub.add_parser(name, parents=[self._common], help=help,
                                      description=description)
        return Commands(parser.add_subparsers(dest=dest, required=True, metavar="ACTION"),
                        self._common)


def add_module_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--module MOD`` (repeatable): a module that defines ``what``."""
    parser.add_argument("--module", "-m", action="append", default=[], metavar="MOD",
                        help=f"module that defines {what} (repeatable; env DURABLE_MODULES, "
                        "comma-separated)")


def json_value(text: str, what: str) -> Any:
    """``text`` decoded as JSON; a ``UsageError`` that shows how to quote a string if not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        bare = text and text[0] not in "\"[{"  # likely a string without its quotes
        hint = f" (a string needs JSON quotes: '\"{text}\"')" if bare else ""
        raise UsageError(f"{what} {text!r} is not valid JSON: {exc.msg}{hint}") from None


def json_values(texts: Sequence[str]) -> list[Any]:
    """Positional arguments, one JSON value each."""
    return [json_value(text, f"argument {i}") for i, text in enumerate(texts, 1)]


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d``, ``1w`` in seconds (an argparse ``type``)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds or a number with s, m, h, d or w (5m)")
    return float(match.group(1)) * UNITS.get(match.group(2), 1)
