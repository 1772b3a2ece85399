"""Random workflow programs for the differential replay fuzzer, and the workflow that runs them.

A program is data: a tree of nodes (JSON lists), interpreted by one workflow, ``FuzzProgram``.
Every node records what it did in a trace (entered, returned, raised), in the order the code
ran, and the trace is the workflow's result. So any difference in the order in which tasks
ran, commands were issued or outcomes were handed out between a run and its replay shows in
the result, the state or the data, not only in the commands.

Nodes (``id`` is unique in a program)::

    ["act", id, fail]              await ctx.run(fuzz_act, id, fail): fail 0 ok, 1 fails its
                                   first attempt (retried), 9 always fails (ActionFailedError)
    ["sleep", id, d] / ["asleep", id, d]      ctx.sleep(d) / asyncio.sleep(d)
    ["wait", id, names, timeout]   ctx.wait_for(*names, timeout=timeout)
    ["state", id] / ["data", id, key]         ctx.set_state / ctx.data[key] = ...
    ["raise", id]                  raise FuzzError
    ["seq", id, nodes]             one after the other
    ["gather", id, nodes, return_exceptions]
    ["race", id, nodes, when]      asyncio.wait(tasks, return_when=when), losers cancelled by
                                   iterating the pending set, winners read from the done set
    ["race_calls", id, calls, when]   asyncio.wait over bare ctx.run futures ([id, fail] each)
    ["as_completed", id, nodes]    asyncio.as_completed over coroutines
    ["taskgroup", id, nodes]       asyncio.TaskGroup (a failure cancels the siblings)
    ["timeout", id, d, node]       async with asyncio.timeout(d)
    ["wait_for", id, d, node]      asyncio.wait_for(node, d)
    ["shield", id, d, node]        asyncio.shield of a task, given up after d
    ["cancel", id, k, node]        a task cancelled after k loop turns (pending or not)
    ["event", id, node, node]      asyncio.Event between two tasks
    ["queue", id, nodes]           producers and one consumer on an asyncio.Queue
    ["condition", id, nodes]       workers notify an asyncio.Condition a waiter waits on
    ["semaphore", id, n, nodes]    at most n nodes at a time (asyncio.Semaphore)
    ["lock", id, nodes]            one node at a time (asyncio.Lock)
    ["child", id, node]            a child FuzzProgram running node
    ["until", id, d, node]         ctx.wait_condition(node done, timeout=d) while node runs
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import durable

Node = list[Any]

EVENT_NAMES = ("a", "b", "c")
DURATIONS = (1.0, 2.0, 3.0)  # few, so that timers and timeouts often fall due together
WHEN = ("FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED")

LEAVES = ("act", "act", "act", "sleep", "asleep", "wait", "state", "data", "raise")
COMPOSITES = ("seq", "gather", "race", "race_calls", "as_completed", "taskgroup", "timeout", "wait_for",
              "shield", "cancel", "event", "queue", "condition", "semaphore", "lock", "child",
              "until")
# What a program can be counted as covering, beyond its node kinds.
EXTRAS = ("retry", "action_failure", "equal_timers", "early_events", "events_together",
          "cancel_workflow", "query")


class FuzzError(Exception):
    """Raised by a ``raise`` node."""


class FuzzActionError(Exception):
    """Raised by ``fuzz_act`` for an attempt that fails."""


def act_result(node_id: int) -> int:
    """What ``fuzz_act`` returns for a node (the simulator needs it without running it)."""
    return node_id * 7 + 1


@durable.action(name="fuzz_act",
                retry=durable.Retry(attempts=2, initial=0.01, backoff=1.0, maximum=0.01))
async def fuzz_act(node_id: int, fail: int) -> int:
    """An action whose attempts fail as the node says: 1 fails the first, 9 every one."""
    attempt = durable.action_info().attempt
    if fail == 9 or (fail == 1 and attempt == 1):
        raise FuzzActionError(f"node {node_id} attempt {attempt}")
    return act_result(node_id)


@durable.workflow(name="FuzzProgram")
async def fuzz_program(ctx: durable.Context, program: list[Any], scale: float = 1.0) -> list[Any]:
    """Run ``program`` with every duration times ``scale``; return its trace."""
    trace: list[Any] = []
    ctx.on_query("trace", lambda: len(trace))
    value = await _Run(ctx, trace, scale).node(program)
    trace.append(["result", value])
    return trace


class _Run:
    """The interpreter of one program run."""

    def __init__(self, ctx: durable.Context, trace: list[Any], scale: float) -> None:
        self.ctx = ctx
        self.trace = trace
        self.scale = scale

    async def node(self, node: Node) -> Any:
        kind, node_id = node[0], node[1]
        self.trace.append(["enter", node_id])
        try:
            value = await getattr(self, "_" + kind)(*node[1:])
        except asyncio.CancelledError:
            self.trace.append(["cancelled", node_id])
            raise
        except Exception as exc:
            self.trace.append(["raised", node_id, type(exc).__name__])
            raise
        self.trace.append(["returned", node_id, value])
        return value

    def _task(self, node: Node) -> asyncio.Task[Any]:
        return asyncio.ensure_future(self.node(node))

    # ---- leaves ---------------------------------------------------------------------------

    async def _act(self, node_id: int, fail: int) -> Any:
        return await self.ctx.run(fuzz_act, node_id, fail)

    async def _sleep(self, node_id: int, duration: float) -> None:
        await self.ctx.sleep(duration * self.scale)

    async def _asleep(self, node_id: int, duration: float) -> None:
        await asyncio.sleep(duration * self.scale)

    async def _wait(self, node_id: int, names: list[str], timeout: float) -> Any:
        event = await self.ctx.wait_for(*names, timeout=timeout * self.scale)
        return None if event is None else [event.name, event.payload]

    async def _state(self, node_id: int) -> None:
        self.ctx.set_state(f"s{node_id}")

    async def _data(self, node_id: int, key: str) -> None:
        if key in self.ctx.data and node_id % 3 == 0:
            del self.ctx.data[key]
        else:
            self.ctx.data[key] = [node_id, len(self.trace)]

    async def _raise(self, node_id: int) -> None:
        raise FuzzError(f"node {node_id}")

    # ---- composites -----------------------------------------------------------------------

    async def _seq(self, node_id: int, nodes: list[Node]) -> Any:
        return [await self.node(n) for n in nodes]

    async def _gather(self, node_id: int, nodes: list[Node], return_exceptions: bool) -> Any:
        values = await asyncio.gather(*(self.node(n) for n in nodes),
                                      return_exceptions=return_exceptions)
        return [_plain(v) for v in values]

    async def _race(self, node_id: int, nodes: list[Node], when: str) -> Any:
        tasks = [self._task(n) for n in nodes]
        done, pending = await asyncio.wait(tasks, return_when=getattr(asyncio, when))
        for task in pending:  # the set's order: the order in which they are cancelled
            task.cancel()
        won = [[tasks.index(t), _outcome(t)] for t in done]
        lost = await asyncio.gather(*pending, return_exceptions=True)
        return [won, [_plain(v) for v in lost]]

    async def _race_calls(self, node_id: int, calls: list[list[int]], when: str) -> Any:
        futures = [self.ctx.run(fuzz_act, *call) for call in calls]
        done, pending = await asyncio.wait(futures, return_when=getattr(asyncio, when))
        for future in pending:
            future.cancel()
        return [[futures.index(f), _outcome(f)] for f in done]

    async def _as_completed(self, node_id: int, nodes: list[Node]) -> Any:
        values = []
        for next_one in asyncio.as_completed([self.node(n) for n in nodes]):
            try:
                values.append(await next_one)
            except Exception as exc:
                values.append(["raised", type(exc).__name__])
        return values

    async def _taskgroup(self, node_id: int, nodes: list[Node]) -> Any:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.node(n)) for n in nodes]
        except BaseExceptionGroup as group_error:
            return ["group", [type(e).__name__ for e in group_error.exceptions]]
        return [t.result() for t in tasks]

    async def _timeout(self, node_id: int, duration: float, node: Node) -> Any:
        try:
            async with asyncio.timeout(duration * self.scale):
                return await self.node(node)
        except TimeoutError:
            return ["timed out"]

    async def _wait_for(self, node_id: int, duration: float, node: Node) -> Any:
        try:
            return await asyncio.wait_for(self.node(node), duration * self.scale)
        except TimeoutError:
            return ["timed out"]

    async def _shield(self, node_id: int, duration: float, node: Node) -> Any:
        task = self._task(node)
        try:
            return await asyncio.wait_for(asyncio.shield(task), duration * self.scale)
        except TimeoutError:
            return ["shielded", _plain(await asyncio.gather(task, return_exceptions=True))]

    async def _cancel(self, node_id: int, turns: int, node: Node) -> Any:
        task = self._task(node)
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return ["cancelled"]

    async def _event(self, node_id: int, first: Node, second: Node) -> Any:
        ready = asyncio.Event()

        async def setter() -> Any:
            try:
                return await self.node(first)
            finally:
                ready.set()

        async def waiter() -> Any:
            await ready.wait()
            return await self.node(second)

        return _plain(await asyncio.gather(setter(), waiter(), return_exceptions=True))

    async def _queue(self, node_id: int, nodes: list[Node]) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

        async def produce(i: int, node: Node) -> None:
            try:
                value = await self.node(node)
            except Exception as exc:
                value = ["raised", type(exc).__name__]
            await queue.put([i, value])

        tasks = [self._spawn(produce(i, n)) for i, n in enumerate(nodes)]
        values = [await queue.get() for _ in nodes]
        await asyncio.gather(*tasks)
        return values

    async def _condition(self, node_id: int, nodes: list[Node]) -> Any:
        condition = asyncio.Condition()
        finished: list[int] = []

        async def work(i: int, node: Node) -> Any:
            try:
                return await self.node(node)
            finally:
                async with condition:
                    finished.append(i)
                    condition.notify_all()

        tasks = [self._spawn(work(i, n)) for i, n in enumerate(nodes)]
        async with condition:
            await condition.wait_for(lambda: len(finished) == len(nodes))
        return [finished, _plain(await asyncio.gather(*tasks, return_exceptions=True))]

    async def _semaphore(self, node_id: int, limit: int, nodes: list[Node]) -> Any:
        semaphore = asyncio.Semaphore(limit)
        order: list[int] = []

        async def limited(i: int, node: Node) -> Any:
            async with semaphore:
                order.append(i)
                return await self.node(node)

        values = await asyncio.gather(*(limited(i, n) for i, n in enumerate(nodes)),
                                      return_exceptions=True)
        return [order, _plain(values)]

    async def _lock(self, node_id: int, nodes: list[Node]) -> Any:
        lock = asyncio.Lock()
        order: list[int] = []

        async def locked(i: int, node: Node) -> Any:
            async with lock:
                order.append(i)
                return await self.node(node)

        values = await asyncio.gather(*(locked(i, n) for i, n in enumerate(nodes)),
                                      return_exceptions=True)
        return [order, _plain(values)]

    async def _until(self, node_id: int, duration: float, node: Node) -> Any:
        finished = False

        async def work() -> Any:
            nonlocal finished
            try:
                return await self.node(node)
            finally:
                finished = True

        task = self._spawn(work())
        got = await self.ctx.wait_condition(lambda: finished, timeout=duration * self.scale)
        return [got, _plain(await asyncio.gather(task, return_exceptions=True))]

    async def _child(self, node_id: int, node: Node) -> Any:
        child_id = f"{self.ctx.info.workflow_id}/{node_id}"
        handle = await self.ctx.start_child(fuzz_program, node, self.scale, id=child_id)
        trace = await handle
        return trace[-1]

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        return asyncio.ensure_future(coro)


def _plain(value: Any) -> Any:
    """A value for the trace: exceptions by their type's name."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, BaseException):
        return ["raised", type(value).__name__]
    return value


def _outcome(done: asyncio.Future[Any]) -> Any:
    if done.cancelled():
        return ["cancelled"]
    if done.exception() is not None:
        return ["raised", type(done.exception()).__name__]
    return done.result()


# ---- generating programs ----------------------------------------------------------------------


class Program:
    """A random program: its root node, the events sent to it and when, and options.

    ``events``: ``[time, name, payload]``, time 0 meaning "right after the start" (before the
    workflow runs); several at one time arrive together. ``cancel_at``: when the workflow is
    cancelled (None: never). ``queries``: whether the run is queried between its tasks.
    """

    def __init__(self, root: Node, events: list[list[Any]], cancel_at: float | None,
                 queries: bool, seed: int) -> None:
        self.root = root
        self.events = events
        self.cancel_at = cancel_at
        self.queries = queries
        self.seed = seed

    def constructs(self) -> set[str]:
        """The node kinds and situations this program exercises (for the fuzzer's counts)."""
        found = {node[0] for node in walk(self.root)}
        fails = [node[2] for node in walk(self.root) if node[0] == "act"]
        fails += [call[1] for node in walk(self.root) if node[0] == "race_calls"
                  for call in node[2]]
        if 1 in fails:
            found.add("retry")
        if 9 in fails:
            found.add("action_failure")
        durations = Counter(node[2] for node in walk(self.root) if node[0] in ("sleep", "asleep"))
        if any(n > 1 for n in durations.values()):
            found.add("equal_timers")
        times = Counter(e[0] for e in self.events)
        if times.get(0.0):
            found.add("early_events")
        if any(n > 1 for n in times.values()):
            found.add("events_together")
        if self.cancel_at is not None:
            found.add("cancel_workflow")
        if self.queries:
            found.add("query")
        return found

    def __repr__(self) -> str:
        return (f"Program(root={self.root!r}, events={self.events!r}, "
                f"cancel_at={self.cancel_at!r}, queries={self.queries!r}, seed={self.seed!r})")


def walk(node: Node) -> Iterator[Node]:
    """The node and every node below it."""
    yield node
    for part in node[2:]:
        if isinstance(part, list) and part and isinstance(part[0], str) and part[0] in _KINDS:
            yield from walk(part)
        elif isinstance(part, list):
            for item in part:
                if isinstance(item, list) and item and item[0] in _KINDS:
                    yield from walk(item)


_KINDS = frozenset(LEAVES + COMPOSITES)


def generate(seed: int, *, max_depth: int = 4, children: bool = True) -> Program:
    """A random program, the same for the same seed."""
    rng = random.Random(seed)
    ids = iter(range(1, 10_000))
    root = _node(rng, ids, max_depth, children, leaf=0.0)
    events = [[rng.choice((0.0, 0.0, 1.0, 2.0, 3.0, 5.0)), rng.choice(EVENT_NAMES), i]
              for i in range(rng.choice((0, 1, 2, 3, 4)))]
    events.sort(key=lambda e: e[0])
    cancel_at = rng.choice((1.0, 2.0, 4.0)) if rng.random() < 0.1 else None
    return Program(root, events, cancel_at, rng.random() < 0.3, seed)


def _node(rng: random.Random, ids: Iterator[int], depth: int, children: bool,
          leaf: float = 0.25) -> Node:
    node_id = next(ids)
    if depth <= 0 or rng.random() < leaf:
        return _leaf(rng, node_id)
    kinds = [k for k in COMPOSITES if children or k != "child"]
    kind = rng.choice(kinds)
    some: Callable[[], list[Node]] = lambda: [  # noqa: E731
        _node(rng, ids, depth - 1, children) for _ in range(rng.randint(1, 4))]
    one: Callable[[], Node] = lambda: _node(rng, ids, depth - 1, children)  # noqa: E731
    if kind in ("seq", "as_completed", "taskgroup", "queue", "condition", "lock"):
        return [kind, node_id, some()]
    if kind == "gather":
        return [kind, node_id, some(), rng.random() < 0.5]
    if kind == "race":
        return [kind, node_id, some(), rng.choice(WHEN)]
    if kind == "race_calls":
        calls = [[next(ids), rng.choice((0, 0, 1, 9))] for _ in range(rng.randint(1, 4))]
        return [kind, node_id, calls, rng.choice(WHEN)]
    if kind in ("timeout", "wait_for", "shield", "until"):
        return [kind, node_id, rng.choice(DURATIONS), one()]
    if kind == "cancel":
        return [kind, node_id, rng.randint(0, 3), one()]
    if kind == "event":
        return [kind, node_id, one(), one()]
    if kind == "semaphore":
        return [kind, node_id, rng.randint(1, 2), some()]
    return [kind, node_id, _node(rng, ids, depth - 1, False)]  # a child has no children


def _leaf(rng: random.Random, node_id: int) -> Node:
    kind = rng.choice(LEAVES)
    if kind == "act":
        return [kind, node_id, rng.choice((0, 0, 0, 0, 1, 9))]
    if kind in ("sleep", "asleep"):
        return [kind, node_id, rng.choice(DURATIONS)]
    if kind == "wait":
        names = sorted(rng.sample(EVENT_NAMES, rng.randint(1, 2)))
        return [kind, node_id, names, rng.choice(DURATIONS)]
    if kind == "data":
        return [kind, node_id, rng.choice(("x", "y"))]
    return [kind, node_id]
