"""The determinism guard at run time: calls that break replay, caught as workflow code runs live.

The static check (``_guard``) reads the source and resolves names through the module's
globals; what it cannot resolve (a clock passed in as an argument, ``from random import
choice as pick`` inside a helper of another module, a ``getattr``) is caught here, as it
happens. ``watch(mode)`` installs a profile function (``sys.setprofile``: this thread only)
for one live activation, the part of a workflow task that runs new code; replay, which re-runs
recorded batches, is never watched, so it costs replay nothing; nor is code run under a
profiler (``cProfile``: it owns the profile function then). Nothing is patched: the
profile function sees every call the thread makes and reports those that ``_guard`` bans
(``datetime.now`` / ``utcnow`` / ``today``, ``time.time`` / ``monotonic`` and the other
clocks, the ``random`` module's shared generator, ``uuid.uuid1`` / ``uuid4``, ``os.getenv``
and ``os.environ`` reads, ``secrets``) when the code that made the call is the user's: not
the standard library's (``logging`` reads the clock for its records), not an installed
package's (a library's garbage-collector callback, which runs wherever a collection starts) and
not durable's.

``mode`` is the worker's ``determinism=``: ``"warn"`` (a ``NondeterministicCallWarning`` per
call site, with its ``file:line`` and the ``ctx.`` replacement, once per process),
``"error"`` (the call raises ``IllegalWorkflowOperationError`` in the workflow, which fails
the run unless the code catches it) or ``"off"``. A live activation costs more while watched
(each call made in it passes through the profile function: a quarter of a plain 3-action
workflow's throughput, ``bench/RESULTS.md``), so ``"warn"`` watches samples (``Sampler``):
each code path's first activations in the process, then one in ``SAMPLE_EVERY``; a call site
on a path that runs again and again is reported soon all the same. ``"error"`` watches every
activation.
"""

from __future__ import annotations

import _collections_abc
import os
import random
import secrets
import sys
import sysconfig
import types
import uuid
import warnings
from typing import Any, Final, Literal

from ._guard import OUTSIDE, RANDOM, SHARED, UUID, NondeterministicCallWarning, advice
from .errors import IllegalWorkflowOperationError, InvalidArgumentError

__all__ = ["DETERMINISM_MODES", "DeterminismMode", "Sampler", "check_mode", "watch"]

DeterminismMode = Literal["warn", "error", "off"]
DETERMINISM_MODES: Final = ("warn", "error", "off")

_INTERNAL: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB: Final = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep
# The files of the modules that implement what is banned (as their code names them): a call
# they make (secrets' os.urandom, the environ mapping's __getitem__) is part of a banned call
# that was reported where the user's code made it.
_ENTRIES: tuple[Any, ...] = (os.getenv, getattr(_collections_abc.Mapping, "get"),
                             random.Random.randint, secrets.token_hex, uuid.uuid4)
_IMPLEMENTING: Final = frozenset(fn.__code__.co_filename for fn in _ENTRIES)
# Python functions that are banned, by code object: what they are, and what to use instead.
_PY_CALLS: Final[dict[types.CodeType, tuple[str, str]]] = {
    uuid.uuid1.__code__: ("uuid.uuid1()", UUID), uuid.uuid4.__code__: ("uuid.uuid4()", UUID),
    os.getenv.__code__: ("os.getenv()", OUTSIDE),
    **{fn.__code__: (f"secrets.{name}()", RANDOM) for name, fn in vars(secrets).items()
       if isinstance(fn, types.FunctionType) and fn.__module__ == "secrets"},
}
# Methods of os.environ's mapping: banned when called on os.environ itself.
_ENVIRON_METHODS: Final[dict[types.CodeType, str]] = {
    fn.__code__: name for klass in type(os.environ).__mro__ for name, fn in vars(klass).items()
    if isinstance(fn, types.FunctionType) and name in (
        "__getitem__", "__contains__", "__iter__", "get", "keys", "items", "values", "copy")}
# Methods of random.Random written in Python: banned when called on the shared generator.
_RANDOM_METHODS: Final[dict[types.CodeType, str]] = {
    fn.__code__: name for klass in random.Random.__mro__ for name, fn in vars(klass).items()
    if isinstance(fn, types.FunctionType)}
_SEEN: set[tuple[str, int, str]] = set()  # call sites reported in this process
# C functions seen, by (id of their module, class or generator, name): what to use instead.
_C_CALLS: dict[tuple[int, str], str | None] = {}
_mode: DeterminismMode = "off"


def check_mode(mode: Any) -> DeterminismMode:
    """``mode`` if it is one; ``InvalidArgumentError`` otherwise."""
    if mode not in DETERMINISM_MODES:
        raise InvalidArgumentError(
            f"determinism= is one of {', '.join(map(repr, DETERMINISM_MODES))}, not {mode!r}",
            parameter="determinism")
    return mode  # type: ignore[no-any-return]


class Sampler:
    """Which live activations a worker's guard watches, by code path: the workflow and the
    line it resumes from (``suspended_at``). ``"warn"``: a path's first ``SAMPLE_FIRST``
    activations, then one in ``SAMPLE_EVERY``; another mode: every activation, or none."""

    SAMPLE_FIRST: Final = 8
    SAMPLE_EVERY: Final = 64
    _PATHS: Final = 100_000  # paths counted; beyond that, a new path is always watched

    def __init__(self, mode: DeterminismMode) -> None:
        self.mode: DeterminismMode = mode
        self._runs: dict[tuple[str, str | None], int] = {}

    def mode_for(self, workflow: str, resumes_at: str | None) -> DeterminismMode:
        """The guard's mode for the next live activation of this path."""
        if self.mode != "warn":
            return self.mode
        key = (workflow, resumes_at)
        runs = self._runs.get(key, 0) + 1
        if runs > 1 or len(self._runs) < self._PATHS:
            self._runs[key] = runs
        return "warn" if runs <= self.SAMPLE_FIRST or runs % self.SAMPLE_EVERY == 0 else "off"


class watch:  # noqa: N801 - used as a function: ``with watch(mode):``
    """Watch the calls of one live activation (this thread; nothing when ``mode`` is off)."""

    __slots__ = ("mode",)
    mode: DeterminismMode

    def __init__(self, mode: DeterminismMode) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        global _mode
        if self.mode != "off" and sys.getprofile() is None:  # a profiler running: leave it be
            _mode = self.mode
            sys.setprofile(_profile)
        else:
            self.mode = "off"

    def __exit__(self, *exc: object) -> None:
        global _mode
        if self.mode != "off":
            sys.setprofile(None)
            _mode = "off"


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    if event == "c_call":
        if frame.f_code.co_filename in _IMPLEMENTING:
            return
        owner = getattr(arg, "__self__", None)
        if owner is not None and (owner in SHARED or isinstance(owner, (type, types.ModuleType))):
            key = (id(owner), arg.__name__)
            if key in _C_CALLS:
                found = _C_CALLS[key]
            else:
                found = _C_CALLS[key] = advice(arg)
            if found is not None:
                _report(frame, _name(arg), found)
    elif event == "call":
        code, caller = frame.f_code, frame.f_back
        if caller is None or caller.f_code.co_filename in _IMPLEMENTING:
            return
        hit = _PY_CALLS.get(code)
        if hit is not None:
            _report(caller, *hit)
        elif code in _RANDOM_METHODS and frame.f_locals.get("self") in SHARED:
            _report(caller, f"random.{_RANDOM_METHODS[code]}()", RANDOM)
        elif code in _ENVIRON_METHODS and frame.f_locals.get("self") is os.environ:
            name = _ENVIRON_METHODS[code]
            _report(caller, "os.environ[...]" if name == "__getitem__" else
                    f"os.environ.{name}()", OUTSIDE)


def _name(fn: Any) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        prefix = f"{owner.__module__}.{owner.__qualname__}"
    else:
        prefix = getattr(owner, "__name__", None) or "random"
    return f"{prefix}.{getattr(fn, '__name__', '?')}()"


def _report(frame: types.FrameType, call: str, instead: str) -> None:
    """Report the call at the line that made it, if that is the user's code (not durable's,
    the standard library's or an installed package's)."""
    file = frame.f_code.co_filename
    if file.startswith(("<", _INTERNAL, _STDLIB)) or "-packages" + os.sep in file:
        return
    line = frame.f_lineno
    message = (f"{call} is not deterministic: {instead} (called while the workflow ran live, "
               f"at {file}:{line})")
    if _mode == "error":
        raise IllegalWorkflowOperationError(f"workflow code called {message}", operation=call)
    if (file, line, call) not in _SEEN:
        _SEEN.add((file, line, call))
        warnings.warn_explicit(message, NondeterministicCallWarning, file, line)
