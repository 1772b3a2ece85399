"""What a command acts on: the store, Redis, the tenant, the workflows' modules, a worker target.

Each comes from the command line, else from the environment (``DURABLE_DB``,
``DURABLE_REDIS``, ``DURABLE_REDIS_PREFIX``, ``DURABLE_TENANTS``, ``DURABLE_MODULES``), else
from a default. The tenants follow ``durable.connect``'s rule: ``--tenant NAME`` is the tenant
acted for and ``--tenants`` the scope (comma-separated names, or ``*``); without a scope the
command may act for ``--tenant`` alone, and ``--all-tenants`` needs ``--tenants '*'``. Modules
are imported with the current directory on ``sys.path``, as ``python -m`` does. Anything that
cannot be resolved is a ``durable.errors`` error (``UsageError`` for the command line itself).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import AsyncGenerator, Generator, Iterable
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Final, cast

import durable

from .._codecs import load_codec
from ..errors import DurableError, StoreUnavailableError, UnknownWorkflowError, UsageError
from .._definitions import definitions_in, workflow_definition
from ._render import Times

__all__ = [
    "DEFAULT_DB", "DEFAULT_TENANT", "build_worker", "connect", "global_options", "import_module",
    "import_modules", "iso_moment", "load_target", "local_times", "module_names", "redis_url", "refused_urls",
    "resolve_workflow", "store_url", "tenant_scope", "times", "wants_json", "when_available",
]

DEFAULT_DB = "sqlite:///durable.db"
DEFAULT_TENANT = "default"
_MOST_WAIT: Final = 5.0  # seconds between a service's tries to reach an unavailable store


def global_options() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help=f"store URL (env DURABLE_DB, default {DEFAULT_DB})")
    common.add_argument("--redis", metavar="URL", default=argparse.SUPPRESS,
                        help="dispatch through Redis Streams at URL (env DURABLE_REDIS)")
    common.add_argument("--prefix", metavar="NAME", default=argparse.SUPPRESS,
                        help="prefix of the Redis keys (env DURABLE_REDIS_PREFIX)")
    common.add_argument("--codec", metavar="MODULE:ATTR", default=argparse.SUPPRESS,
                        help="the payload codec the store's payloads were written with (a "
                        "durable.Codec, or a function returning one; env DURABLE_CODEC): "
                        "without it, encoded payloads show as \"<encoded>\"")
    common.add_argument("--tenant", default=argparse.SUPPRESS,
                        help="tenant of the executions (default: the first of --tenants, "
                        f"else {DEFAULT_TENANT!r})")
    common.add_argument("--tenants", metavar="A,B|*", default=argparse.SUPPRESS,
                        help="tenants the command may act for: comma-separated names, or * "
                        "for every tenant, which --all-tenants needs (env DURABLE_TENANTS; "
                        "default: --tenant only)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON with named fields: one object, or one "
                        "object per line (NDJSON) for a list")
    common.add_argument("--local", action="store_true", default=argparse.SUPPRESS,
                        help="show times, and read times without a zone, in local time "
                        "(default UTC)")
    return common


def wants_json(args: argparse.Namespace) -> bool:
    """``--json``: print JSON with named fields (NDJSON for lists)."""
    return bool(getattr(args, "json", False))


def local_times(args: argparse.Namespace) -> bool:
    """``--local``: times are shown, and read without a zone, in local time (else UTC)."""
    return bool(getattr(args, "local", False))


def times(args: argparse.Namespace) -> Times:
    """How the command shows times: UTC, or local with ``--local``."""
    return Times(local=local_times(args))


def iso_moment(text: str, local: bool = False) -> datetime | None:
    """An ISO 8601 date or date and time (``2026-01-05``, ``2026-01-05T10:31:34Z``) as an
    aware datetime; one without a zone is UTC, or ``local`` time. None if it is not ISO 8601."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.astimezone() if local else when.replace(tzinfo=timezone.utc)
    return when


def tenant_scope(args: argparse.Namespace) -> dict[str, Any]:
    """``tenant=`` and ``tenants=`` for ``durable.connect`` from ``--tenant``, ``--tenants``
    and ``DURABLE_TENANTS``."""
    text = getattr(args, "tenants", None) or os.environ.get("DURABLE_TENANTS") or ""
    tenants: str | list[str] | None = None
    if text.strip() == "*":
        tenants = "*"
    elif text.strip():
        tenants = [t.strip() for t in text.split(",")]
    return {"tenant": getattr(args, "tenant", None), "tenants": tenants}


# ---- the store and Redis --------------------------------------------------------------------


def store_url(args: argparse.Namespace) -> str:
    """``--db``, else ``DURABLE_DB``, else the embedded default."""
    return getattr(args, "db", None) or os.environ.get("DURABLE_DB") or DEFAULT_DB


def redis_url(args: argparse.Namespace) -> str | None:
    """``--redis``, else ``DURABLE_REDIS``, else None (in-process dispatch)."""
    return getattr(args, "redis", None) or os.environ.get("DURABLE_REDIS") or None


@asynccontextmanager
async def connect(args: argparse.Namespace, *, redis: bool = True, read_only: bool = False,
                  service: str | None = None) -> AsyncGenerator[durable.Client]:
    """A client on ``--db``; with ``redis`` and ``--redis``, one that publishes through Redis.
    A ``read_only`` command refuses a SQLite file that does not exist (a mistyped path would
    otherwise create an empty database and show nothing). A ``service`` (``durable worker``,
    ``server``, ``ui``) started while its PostgreSQL is unavailable waits for it (see
    ``when_available``); a command, or a SQLite file that cannot be opened, fails at once."""
    db = store_url(args)
    if read_only:
        _refuse_missing_sqlite(db)
    options = tenant_scope(args)
    if codec := getattr(args, "codec", None) or os.environ.get("DURABLE_CODEC"):
        options["codec"] = load_codec(codec)
    if redis and (url := redis_url(args)):
        options["redis_url"] = url
        if prefix := getattr(args, "prefix", None) or os.environ.get("DURABLE_REDIS_PREFIX"):
            options["prefix"] = prefix
    with refused_urls():
        if service is not None and db.lower().startswith(("postgres://", "postgresql://")):
            client = await when_available(service, db, **options)
        else:
            client = await durable.connect(db, **options)
    try:
        yield client
    finally:
        await client.close()


async def when_available(service: str, db: str, **options: Any) -> durable.Client:
    """``durable.connect(db, **options)`` for service ``service`` ("worker", "server", "ui"),
    again while the store is unavailable (a database still starting next to the service, or
    restarting), with a warning in the service's log each time, every 0.5 s at first and every
    5 s at most; a store that refuses the setup (``StoreConfigurationError``: no such
    database, a wrong password) fails at once, as waiting would not help."""
    delay = 0.5
    while True:
        try:
            return await durable.connect(db, **options)
        except StoreUnavailableError as exc:
            logging.getLogger(f"durable.{service}").warning(
                "durable %s: %s; trying again in %gs (Ctrl-C stops)", service, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MOST_WAIT)


def _refuse_missing_sqlite(db: str) -> None:
    """A command that only reads does not create a database at a mistyped path."""
    if not db.lower().startswith("sqlite:///") or db.lower() == "sqlite:///:memory:":
        return
    path = db[len("sqlite:///"):]
    if not os.path.exists(path):
        raise UsageError(
            f"no SQLite database at {os.path.abspath(path)!r} (from --db or DURABLE_DB {db!r}): "
            "this command only reads, so it creates none. Check the path; to create the "
            f"database, run: durable --db {db} migrate", path=os.path.abspath(path), url=db)


@contextmanager
def refused_urls() -> Generator[None]:
    """A URL that a driver refuses with a bare ``ValueError`` is a ``UsageError``.

    (asyncpg does so for a port that is not a number; durable's own checks raise
    ``InvalidArgumentError``, which passes through.)
    """
    try:
        yield
    except DurableError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


# ---- modules and workflows ------------------------------------------------------------------


def module_names(args: argparse.Namespace) -> list[str]:
    """``--module`` options, then ``DURABLE_MODULES`` (comma-separated), each once."""
    env = [m.strip() for m in os.environ.get("DURABLE_MODULES", "").split(",") if m.strip()]
    return list(dict.fromkeys([*args.module, *env]))


def import_modules(args: argparse.Namespace) -> list[ModuleType]:
    """The modules of :func:`module_names`, imported (which registers their workflows)."""
    return [import_module(name) for name in module_names(args)]


def import_module(name: str) -> ModuleType:
    """Import module ``name`` from the current directory or ``sys.path``."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise  # the module exists; something it imports does not
        raise UsageError(f"cannot import module {name!r}: {exc} (run from the directory that "
                         "contains it, or set PYTHONPATH)") from None


def resolve_workflow(name: str, modules: list[str]) -> Any:
    """The workflow function registered as ``name`` by ``modules`` (or already imported)."""
    found, _ = definitions_in(import_module(m) for m in modules)
    if name in found:
        return found[name]
    try:  # registered by a module imported along the way
        return workflow_definition(name).fn
    except UnknownWorkflowError:
        pass
    imported = ", ".join(modules) or "none"
    known = ", ".join(sorted(found)) or "none"
    raise UnknownWorkflowError(
        f"no workflow named {name!r} (modules imported: {imported}; workflows found: {known}); "
        "pass the module that defines it with --module MOD or DURABLE_MODULES=mod1,mod2",
        name=name)


# ---- worker targets -------------------------------------------------------------------------


def load_target(spec: str) -> tuple[str, Any]:
    """``MODULE:ATTR`` (``MODULE`` alone means ``MODULE:worker``): its full name and object."""
    module_name, _, attr = spec.partition(":")
    obj: Any = import_module(module_name)
    attr = attr or "worker"
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    return f"{module_name}:{attr}", obj


async def build_worker(name: str, target: Any, client: durable.Client,
                       options: dict[str, Any]) -> durable.Worker:
    """The worker that ``target`` (loaded from ``name``) describes, with ``options``."""
    functions = _listed_functions(target)
    if functions is not None:
        workflows, actions = _split(functions, name)
        return durable.Worker(client, workflows, actions, **options)
    if not callable(target):
        raise UsageError(f"{name} is not a worker target: see `durable worker --help`")
    worker = target(client, **options)
    if asyncio.iscoroutine(worker):
        worker = await worker
    if not isinstance(worker, durable.Worker):
        raise UsageError(f"{name} returned {worker!r}, not a durable.Worker")
    return worker


def _listed_functions(target: Any) -> list[Any] | None:
    """The workflows and actions that ``target`` lists; None if it is a factory (or nothing).

    A list, one decorated function, or an object or dict with ``workflows``/``actions``.
    """
    if isinstance(target, (list, tuple)):
        return list(cast("Iterable[Any]", target))
    if _is_durable(target):
        return [target]
    workflows, actions = _member(target, "workflows"), _member(target, "actions")
    if workflows is None and actions is None:
        return None
    return [*(workflows or ()), *(actions or ())]


def _member(target: Any, name: str) -> Any:
    """``target[name]`` of a dict, else ``target.name``; None if there is none."""
    if isinstance(target, dict):
        return cast("dict[str, Any]", target).get(name)
    return getattr(target, name, None)


def _is_durable(fn: Any) -> bool:
    return hasattr(fn, "__durable_workflow__") or hasattr(fn, "__durable_action__")


def _split(functions: Iterable[Any], where: str) -> tuple[list[Any], list[Any]]:
    workflows: list[Any] = []
    actions: list[Any] = []
    for fn in functions:
        if hasattr(fn, "__durable_workflow__"):
            workflows.append(fn)
        elif hasattr(fn, "__durable_action__"):
            actions.append(fn)
        else:
            raise UsageError(f"{where}: {fn!r} is neither a @durable.workflow nor a "
                             "@durable.action")
    return workflows, actions
