"""``durable.Saga``: undo the completed steps of a workflow, in reverse, when it fails."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._definitions import ActionDefinition, action_definition
from .errors import CompensationError

if TYPE_CHECKING:
    from ._replay._context import Context

__all__ = ["Saga"]


class _Compensation:
    __slots__ = ("fn", "args", "kwargs", "action")

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 action: ActionDefinition | None) -> None:
        self.fn, self.args, self.kwargs, self.action = fn, args, kwargs, action

    def __str__(self) -> str:
        name = self.action.name if self.action else getattr(self.fn, "__qualname__", repr(self.fn))
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


class Saga:
    """Compensations for the steps a workflow completed, run in reverse if it fails.

    After each step succeeds, register what undoes it; if the ``async with`` block then
    raises (or the workflow is cancelled), the compensations run last-in first-out and the
    original exception propagates::

        async with durable.Saga(ctx) as saga:
            hotel = await ctx.run(book_hotel, trip)
            saga.add_compensation(cancel_hotel, hotel)
            car = await ctx.run(rent_car, trip)
            saga.add_compensation(return_car, car)
            await ctx.run(charge, trip)          # fails: return_car, then cancel_hotel run

    A compensation is an action (function or registered name; run with ``ctx.run``, so it
    is recorded and retried by its policy) or any async function of the workflow. They run
    shielded from cancellation: a cancelled workflow compensates too, and a cancellation
    that arrives meanwhile takes effect once they are done. One that fails does not stop
    the others, and never hides the original error: it is logged, kept in
    :attr:`failures` and added as a note to the original exception.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.failures: list[tuple[str, BaseException]] = []  # (compensation, its error)
        self._stack: list[_Compensation] = []

    def add_compensation(self, compensation: Callable[..., Any] | str, /, *args: Any,
                         **kwargs: Any) -> None:
        """Register what undoes the step that just completed (called with ``args``)."""
        if isinstance(compensation, str) or hasattr(compensation, "__durable_action__"):
            defn = action_definition(compensation, self.ctx._calls.definitions)
            defn.params.dump(args, kwargs)  # bad arguments fail now, not when compensating
            self._stack.append(_Compensation(compensation, args, kwargs, defn))
        elif callable(compensation):
            self._stack.append(_Compensation(compensation, args, kwargs, None))
        else:
            raise TypeError(f"a compensation is an action or an async function, not "
                            f"{compensation!r}")

    async def compensate(self) -> None:
        """Run the registered compensations now, in reverse (each once).

        Raises ``CompensationError`` after all have run if any of them failed.
        """
        failed = await self._run_all()
        if failed:
            raise CompensationError(
                f"{len(failed)} compensation(s) failed: "
                + "; ".join(f"{step}: {type(exc).__name__}: {exc}" for step, exc in failed),
                failures=[(step, type(exc).__name__, str(exc)) for step, exc in failed])

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # Only a failure or a cancellation compensates: GeneratorExit (an evicted instance)
        # and durable's own replay stop must unwind without running workflow code.
        if exc is None or not isinstance(exc, (Exception, asyncio.CancelledError)):
            return
        for step, error in await self._run_all():
            exc.add_note(f"compensation {step} failed too: {type(error).__name__}: {error}")

    async def _run_all(self) -> list[tuple[str, BaseException]]:
        """Pop and run every compensation, shielded; a cancellation meanwhile is re-raised."""
        runner = asyncio.ensure_future(self._run_stack())
        cancelled: asyncio.CancelledError | None = None
        while not runner.done():
            try:
                await asyncio.shield(runner)
            except asyncio.CancelledError as exc:
                if runner.cancelled():
                    raise
                cancelled = exc  # finish compensating first
        failed = runner.result()
        if cancelled is not None:
            raise cancelled
        return failed

    async def _run_stack(self) -> list[tuple[str, BaseException]]:
        failed: list[tuple[str, BaseException]] = []
        while self._stack:
            step = self._stack.pop()
            try:
                await self._run(step)
            except Exception as exc:
                self.ctx.logger.warning("saga: compensation %s failed: %s: %s", step,
                                        type(exc).__name__, exc)
                self.failures.append((str(step), exc))
                failed.append((str(step), exc))
        return failed

    def _run(self, step: _Compensation) -> Awaitable[Any]:
        if step.action is not None:  # by definition: the worker runs its own under that name
            return self.ctx._calls.run(step.action, *step.args, **step.kwargs)
        result = step.fn(*step.args, **step.kwargs)
        if not inspect.isawaitable(result):
            return _done(result)
        return result


async def _done(value: Any) -> Any:
    return value
