"""A private, deterministic asyncio event loop for workflow code.

Callbacks run in the order they were scheduled, time is the workflow's recorded clock, and
``call_later`` / ``call_at`` start durable timers. So ``gather``, ``wait``, ``Queue``,
``Event``, ``asyncio.sleep`` and ``asyncio.timeout`` behave identically on every replay.
Anything that would do real I/O raises ``IllegalWorkflowOperationError``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn

from ..errors import IllegalWorkflowOperationError

if TYPE_CHECKING:
    from ._instance import WorkflowInstance

__all__ = ["WorkflowLoop"]

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
    debug mode): one is made for every step a workflow takes."""

    __slots__ = ()

    def __init__(self, callback: Callable[..., Any], args: Any, loop: WorkflowLoop,
                 context: Any) -> None:
        self._callback = callback
        self._args = args
        self._loop = loop
        self._context = contextvars.copy_context() if context is None else context
        self._cancelled = False
        self._repr = None
        self._source_traceback = None


class _TimerHandle(asyncio.TimerHandle):
    """An ``asyncio.TimerHandle`` made without the debug-mode checks, which also carries the
    number of the command that started its durable timer (``_cmd``)."""

    __slots__ = ("_cmd",)

    def __init__(self, when: float, callback: Callable[..., Any], args: Any,
                 loop: WorkflowLoop, context: Any) -> None:
        self._callback = callback
        self._args = args
        self._loop = loop
        self._context = contextvars.copy_context() if context is None else context
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = False
        self._cmd = -1


class WorkflowLoop(asyncio.AbstractEventLoop):
    """The loop one workflow instance runs on. It only ever runs inside ``activate``."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._time = 0.0
        self._instance = instance

    # ---- running -----------------------------------------------------------------------

    def run_ready(self) -> None:
        """Run callbacks until none is ready; the loop is "running" only in here (or for all
        of an :meth:`entered` block)."""
        global _active, _entered
        if _entered is self:
            self._run_ready()
            return
        # entered(), inlined: a live activation pays no context manager
        outer, outer_entered = asyncio.events._get_running_loop(), _entered
        asyncio.events._set_running_loop(self)
        _active, _entered = True, self
        try:
            self._run_ready()
        finally:
            _active, _entered = outer_entered is not None, outer_entered
            asyncio.events._set_running_loop(outer)

    def _run_ready(self) -> None:
        ready = self._ready
        while ready:
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Make this the running loop for a block of several activations (a replay): entering
        a loop costs more than a short activation does."""
        global _active, _entered
        outer, outer_entered = asyncio.events._get_running_loop(), _entered
        asyncio.events._set_running_loop(self)
        _active, _entered = True, self
        try:
            yield
        finally:
            _active, _entered = outer_entered is not None, outer_entered
            asyncio.events._set_running_loop(outer)

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
    get_debug = bool

    def close(self) -> None:
        self._ready.clear()

    # ---- scheduling --------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any,
                  context: Any = None) -> asyncio.Handle:
        handle = _Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    call_soon_threadsafe = call_soon

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,
                   context: Any = None) -> asyncio.TimerHandle:
        return self._timer(self._time + delay, delay, callback, args, context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,
                context: Any = None) -> asyncio.TimerHandle:
        return self._timer(when, when - self._time, callback, args, context)

    def _timer(self, when: float, delay: float, callback: Callable[..., Any], args: Any,
               context: Any) -> asyncio.TimerHandle:
        handle = _TimerHandle(when, callback, args, self, context)
        if delay <= 0:  # due now: no durable timer, just the next turn of the loop
            self._ready.append(handle)
        else:
            handle._scheduled = True
            self._instance.start_timer(handle, delay)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._instance.cancel_timer(handle)

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: str | None = None,
                    context: Any = None) -> asyncio.Task[Any]:
        if type(self._ready) is not collections.deque:  # read-only code (a query) runs:
            coro.close()
            self._ready.append(coro)  # it refuses, before a task exists that would be dropped
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        task._log_destroy_pending = False  # an evicted instance's tasks are dropped on purpose
        return task

    # ---- errors ------------------------------------------------------------------------

    def get_exception_handler(self) -> None:
        return None

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if not self._instance.replaying:
            exc = context.get("exception")
            logger.error("workflow %s: %s", self._instance.info.workflow_id,
                         context.get("message"), exc_info=exc)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    # ---- everything that would block or do I/O -----------------------------------------

    def _forbidden(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise IllegalWorkflowOperationError(
            "workflow code attempted I/O or a blocking call on its event loop; move it into an "
            "action and call it with ctx.run(action, ...)")

    run_in_executor = getaddrinfo = getnameinfo = create_connection = create_server = _forbidden
    create_unix_connection = create_unix_server = create_datagram_endpoint = _forbidden
    sock_recv = sock_sendall = sock_connect = sock_accept = subprocess_exec = _forbidden
    subprocess_shell = connect_read_pipe = connect_write_pipe = add_reader = _forbidden
    add_writer = add_signal_handler = run_forever = run_until_complete = _forbidden
    sendfile = start_tls = sock_sendfile = sock_recv_into = sock_recvfrom = _forbidden
