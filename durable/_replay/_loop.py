"""A private, deterministic asyncio event loop for workflow code.

Callbacks run in the order they were scheduled, time is the workflow's recorded clock, and
``call_later`` / ``call_at`` start durable timers. Anything that would do real I/O raises
``IllegalWorkflowOperationError``.

Sets are the other source of difference between a run and its replay: asyncio keeps tasks in
sets (``TaskGroup``, ``as_completed``) and ``asyncio.wait`` returns sets, and a set of objects
hashed by memory address is iterated in another order by every process. So every task the
loop makes hashes by its creation number on that loop (see ``_Task``), ``asyncio.wait``
returns sets that iterate in the order of its arguments, and ``wait`` / ``as_completed`` turn
their awaitables into tasks in that order instead of a set's (see ``_ordered_wait``). Then
``gather``, ``wait``, ``as_completed``, ``TaskGroup``, ``shield``, ``Queue``, ``Event``,
``Condition``, ``Semaphore``, ``Lock``, ``asyncio.sleep`` and ``asyncio.timeout`` behave
identically on every replay. (Futures stay ``asyncio.Future``: a task awaits one of those on
the C fast path, which a subclass would leave, at a cost on every step; replay's look-ahead,
``_ahead``, makes its own only where it saves that step.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import sys
import zlib
from typing import Any, Callable, Generator, Iterable, Iterator, NoReturn, Protocol

from .._validate import MAX_DURATION, check_timer_delay
from ..errors import IllegalWorkflowOperationError

__all__ = ["TimerHost", "WorkflowLoop"]


class TimerHost(Protocol):
    """What the loop's timers are: durable timers of a workflow run (``_timers.Timers``)."""

    @property
    def replaying(self) -> bool: ...

    @property
    def workflow_id(self) -> str: ...

    def start_timer(self, handle: asyncio.TimerHandle, delay: float) -> None: ...

    def cancel_timer(self, handle: asyncio.TimerHandle) -> None: ...

logger = logging.getLogger("durable.workflow")

_active = False  # True while workflow code runs in this thread (read by the audit hook)
_entered: WorkflowLoop | None = None  # the workflow loop that is running, if any

# Audit events that mean real I/O; raised while workflow code runs, anything goes elsewhere.
_BLOCKED_EVENTS = frozenset({
    "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.spawn",
    "urllib.Request", "http.client.connect", "open",
})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _active or event not in _BLOCKED_EVENTS:
        return
    if asyncio.events._get_running_loop() is not _entered:
        return  # another thread (the store's, an action's) while workflow code runs: its own I/O
    if event == "open" and isinstance(args[0], str) and args[0].endswith((".py", ".pyc", ".so")):
        return  # importing a module lazily is fine
    raise IllegalWorkflowOperationError(
        f"workflow code attempted I/O ({event} {args[0]!r}); workflow code must be "
        "deterministic: move this into an action and call it with ctx.run(action, ...)",
        operation=event,
    )


sys.addaudithook(_audit)


class _Handle(asyncio.Handle):
    """An ``asyncio.Handle`` made without the debug-mode checks (a workflow loop never runs in
    debug mode), and without an ``__init__``: ``call_soon`` fills it in, and one is made for
    every step a workflow takes. Its ``repr`` and traceback are never set (class defaults)."""

    __slots__ = ()
    __init__ = object.__init__  # pyright: ignore[reportAssignmentType]  # made empty, filled by call_soon
    _callback: Callable[..., Any]
    _context: contextvars.Context
    _loop: Any
    _repr = None
    _source_traceback = None


class _TimerHandle(asyncio.TimerHandle):
    """An ``asyncio.TimerHandle`` made like ``_Handle``, which also carries the number of the
    command that started its durable timer (``_cmd``; -1: none)."""

    __slots__ = ("_cmd",)
    __init__ = object.__init__  # pyright: ignore[reportAssignmentType]
    _callback: Callable[..., Any]
    _context: contextvars.Context
    _loop: Any
    _when: float
    _scheduled: bool
    _cmd: int
    _repr = None
    _source_traceback = None

    def cancel(self) -> None:
        """``TimerHandle.cancel`` in one frame, not three: a durable timer that has not fired
        (``_scheduled``; ``Timers`` clears it when it fires) is cancelled with ``CancelTimer``;
        ``asyncio.sleep`` cancels its handle after every sleep, fired or not."""
        if not self._cancelled:
            if self._scheduled:
                self._loop._timer_handle_cancelled(self)
            self._cancelled = True
            self._callback = self._args = None  # type: ignore[assignment]  # as Handle.cancel


class _Task(asyncio.Task[Any]):
    """A task of a workflow loop, hashed by its creation number on that loop.

    Invariant: ``_n`` is set before anything can hash the task, and a replay creates the
    same tasks in the same order as the run it replays, so sets of them iterate alike. The
    numbers start at a base taken from the run id (the same live and on replay), so that the
    tasks of different runs do not share hashes in asyncio's registry of all tasks.
    """

    __slots__ = ("_n",)
    _n: int

    def __hash__(self) -> int:
        return self._n


class WorkflowLoop(asyncio.AbstractEventLoop):
    """The loop one workflow instance runs on. It only ever runs inside ``activate``."""

    def __init__(self, timers: TimerHost, run_id: str) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._time = 0.0
        self.timers = timers
        # The last task's number (see _Task): a base from the run id, plus the tasks made.
        self._base = self.made = zlib.crc32(run_id.encode()) << 24
        self._tasks: list[asyncio.Task[Any]] = []  # those not done, and some done since
        self._prune_at = 64

    # ---- running -----------------------------------------------------------------------

    def run_ready(self) -> None:
        """Run callbacks until none is ready; the loop is "running" only in here (or for all
        of an :meth:`entered` block)."""
        global _active, _entered
        if _entered is not self:
            # entered(), inlined: a live activation pays no context manager
            outer, outer_entered = asyncio.events._get_running_loop(), _entered
            asyncio.events._set_running_loop(self)
            _active, _entered = True, self
            try:
                self.run_ready()
            finally:
                _active, _entered = outer_entered is not None, outer_entered
                asyncio.events._set_running_loop(outer)
            return
        ready = self._ready
        while ready:
            handle = ready.popleft()
            if not handle._cancelled:
                try:  # Handle._run, inlined: one frame less per step
                    handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # noqa: BLE001 - as asyncio's loops do
                    self.call_exception_handler({"message": f"Exception in callback {handle}",
                                                 "exception": exc, "handle": handle})

    @contextlib.contextmanager
    def entered(self) -> Generator[None]:
        """Make this the running loop for a block of several activations (a replay): entering
        a loop costs more than a short activation does."""
        outer = self.enter()
        try:
            yield
        finally:
            self.leave(outer)

    def enter(self) -> tuple[Any, WorkflowLoop | None]:
        """:meth:`entered` without a context manager (``replay`` pays no generator): make this
        the running loop; return what :meth:`leave` puts back."""
        global _active, _entered
        outer = asyncio.events._get_running_loop(), _entered
        asyncio.events._set_running_loop(self)
        _active, _entered = True, self
        return outer

    def leave(self, outer: tuple[Any, WorkflowLoop | None]) -> None:
        """Put back the running loop that :meth:`enter` found."""
        global _active, _entered
        _active, _entered = outer[1] is not None, outer[1]
        asyncio.events._set_running_loop(outer[0])

    def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` now as workflow code (this loop running, I/O blocked)."""
        with self.entered():
            return fn(*args)

    def time(self) -> float:
        return self._time

    def is_running(self) -> bool:
        return _active

    def is_closed(self) -> bool:
        return False

    # Never in debug mode. A builtin, not a method: every Future and Task the workflow makes
    # asks (from C), and calling bool() costs a fraction of calling a Python function.
    get_debug = bool  # pyright: ignore[reportAssignmentType]

    def close(self) -> None:
        self._ready.clear()
        self._tasks = []

    # ---- scheduling --------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                  context: Any = None) -> asyncio.Handle:
        handle: _Handle = _Handle()  # pyright: ignore[reportCallIssue]
        handle._callback = callback
        handle._args = args
        handle._loop = self
        handle._context = contextvars.copy_context() if context is None else context
        handle._cancelled = False
        self._ready.append(handle)
        return handle

    call_soon_threadsafe = call_soon  # type: ignore[assignment]

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                   context: Any = None) -> asyncio.TimerHandle:
        return self._timer(self._time + delay, delay, callback, args, context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: Any = None) -> asyncio.TimerHandle:
        return self._timer(when, when - self._time, callback, args, context)

    def _timer(self, when: float, delay: float, callback: Callable[..., Any], args: Any,
               context: Any) -> asyncio.TimerHandle:
        if type(delay) is not float or not -MAX_DURATION <= delay <= MAX_DURATION:
            delay = check_timer_delay(delay)  # NaN, infinite, too long: a ValidationError here
        handle: _TimerHandle = _TimerHandle()  # pyright: ignore[reportCallIssue]
        handle._callback = callback
        handle._args = args
        handle._loop = self
        handle._context = contextvars.copy_context() if context is None else context
        handle._cancelled = False
        handle._when = when
        handle._cmd = -1
        if delay <= 0:  # due now: no durable timer, just the next turn of the loop
            handle._scheduled = False
            self._ready.append(handle)
        else:
            handle._scheduled = True
            self.timers.start_timer(handle, delay)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.timers.cancel_timer(handle)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: str | None = None,
                    context: Any = None) -> asyncio.Task[Any]:
        if type(self._ready) is not collections.deque:  # read-only code (a query) runs:
            coro.close()
            self._ready.append(coro)  # it refuses, before a task exists that would be dropped
        task = _Task.__new__(_Task)
        task._n = n = self.made + 1  # before __init__, which hashes it into asyncio's registry
        self.made = n
        task.__init__(coro, loop=self, name=name or f"Task-{n - self._base}",  # type: ignore[misc]
                      context=context)
        task._log_destroy_pending = False  # type: ignore[attr-defined]  # evicted instances drop tasks
        tasks = self._tasks
        tasks.append(task)
        if len(tasks) > self._prune_at:
            self._tasks = tasks = [t for t in tasks if not t.done()]
            self._prune_at = max(64, 2 * len(tasks))
        return task

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks made on this loop that have not finished."""
        return [t for t in self._tasks if not t.done()]

    # ---- errors ------------------------------------------------------------------------

    def get_exception_handler(self) -> None:
        return None

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        # Only while the workflow runs live: a task or future that the garbage collector
        # finalizes (at any moment, on any thread) reports nothing here; the instance
        # reports its tasks' unretrieved errors when it is closed (see report_unretrieved).
        if _entered is self and not self.timers.replaying:
            self._report(context.get("message"), context.get("exception"))

    def _report(self, message: Any, exc: BaseException | None) -> None:
        logger.error("workflow %s: %s", self.timers.workflow_id, message, exc_info=exc)

    def report_unretrieved(self) -> None:
        """Log the errors of this loop's finished tasks that nothing retrieved (live only)
        and mark them retrieved, so that no finalizer reports them later."""
        for task in self._tasks:
            logged = getattr(task, "_log_traceback", False)  # its error was not retrieved
            if task.done() and not task.cancelled() and logged:
                exc = task.exception()  # retrieves it
                if not self.timers.replaying:
                    self._report(f"{task.get_name()}: exception was never retrieved", exc)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    # ---- everything that would block or do I/O -----------------------------------------

    def _forbidden(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise IllegalWorkflowOperationError(
            "workflow code attempted I/O or a blocking call on its event loop; move it into an "
            "action and call it with ctx.run(action, ...)")

    run_in_executor = _forbidden  # type: ignore[assignment]
    getaddrinfo = getnameinfo = create_connection = create_server = _forbidden
    create_unix_connection = create_unix_server = create_datagram_endpoint = _forbidden
    sock_recv = sock_sendall = sock_connect = sock_accept = subprocess_exec = _forbidden
    subprocess_shell = connect_read_pipe = connect_write_pipe = _forbidden
    add_reader = add_writer = add_signal_handler = _forbidden  # type: ignore[assignment]
    run_forever = run_until_complete = _forbidden
    sendfile = start_tls = sock_sendfile = sock_recv_into = sock_recvfrom = _forbidden


def _in_order(fs: Iterable[Any], loop: asyncio.AbstractEventLoop, *,
              coroutines: bool) -> list[Any]:
    """``fs`` without repeats, in the order given, each awaitable that is not a future (nor a
    coroutine, unless ``coroutines``) wrapped in a task: made in this order, not a set's."""
    return [f if asyncio.isfuture(f) or (not coroutines and asyncio.iscoroutine(f))
            else asyncio.ensure_future(f, loop=loop) for f in dict.fromkeys(fs)]


class _InOrder(set[Any]):  # pyright: ignore[reportUnknownMemberType]
    """``asyncio.wait``'s ``done`` or ``pending`` on a workflow loop: a set that iterates (and
    pops) in the order of ``wait``'s arguments, then what was added, in the order added."""

    __slots__ = ("_order",)

    def __init__(self, members: Iterable[Any], order: dict[Any, None]) -> None:
        super().__init__(members)
        self._order = order

    def __iter__(self) -> Iterator[Any]:
        ordered = [x for x in self._order if set.__contains__(self, x)]  # pyright: ignore
        return iter(ordered)

    def add(self, item: Any) -> None:
        if not set.__contains__(self, item):  # pyright: ignore[reportUnknownMemberType]
            self._order = {**self._order, item: None}
        set.add(self, item)  # pyright: ignore[reportUnknownMemberType]

    def pop(self) -> Any:
        for item in self:
            set.remove(self, item)  # pyright: ignore[reportUnknownMemberType]
            return item
        raise KeyError("pop from an empty set")


# asyncio.wait and as_completed put their awaitables in a set and wrap those that are not
# futures in tasks while iterating it, in the order of their memory addresses; wait returns
# sets. On a workflow loop they are wrapped first, in the order given, and wait's sets iterate
# in that order. (wait refuses coroutines itself.)
_wait, _as_completed = asyncio.tasks.wait, asyncio.tasks.as_completed


@functools.wraps(_wait)
async def _ordered_wait(fs: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.events._get_running_loop()
    if type(loop) is not WorkflowLoop or asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        return await _wait(fs, *args, **kwargs)
    order = dict.fromkeys(_in_order(fs, loop, coroutines=False))
    done, pending = await _wait(list(order), *args, **kwargs)
    return _InOrder(done, order), _InOrder(pending, order)


@functools.wraps(_as_completed)
def _ordered_as_completed(fs: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.events._get_running_loop()
    if type(loop) is WorkflowLoop and not (asyncio.isfuture(fs) or asyncio.iscoroutine(fs)):
        fs = _in_order(fs, loop, coroutines=True)
    return _as_completed(fs, *args, **kwargs)


asyncio.wait = asyncio.tasks.wait = _ordered_wait
asyncio.as_completed = asyncio.tasks.as_completed = _ordered_as_completed
