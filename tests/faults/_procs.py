"""Worker subprocesses that can be SIGKILLed, and a rig that ties them to one SQLite file."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import durable
from _support import eventually
from durable._history import Event

from . import _flows

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass
class WorkerProc:
    """One worker process; ``log`` holds its stdout and stderr."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class WorkerProcs:
    """Starts worker processes on ``url``; every one is killed and reaped by :meth:`close`."""

    url: str
    directory: Path
    env: dict[str, str]
    procs: list[WorkerProc] = field(default_factory=list)

    def start(self, name: str, *, concurrency: int = 100, extra: Sequence[str] = ()) -> WorkerProc:
        """A worker process (``tests.faults._runner``) on ``url``."""
        return self.start_module(name, "tests.faults._runner", self.url,
                                 "--concurrency", str(concurrency), *extra)

    def start_module(self, name: str, module: str, *args: str) -> WorkerProc:
        """``python -m module args...`` as a process that can be SIGKILLed."""
        log = self.directory / f"proc-{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        proc = WorkerProc(name, popen, log)
        self.procs.append(proc)
        return proc

    def kill(self, proc: WorkerProc) -> None:
        """SIGKILL the worker (no cleanup of any kind runs in it) and reap it."""
        proc.killed = True
        if proc.popen.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def assert_running(self) -> None:
        """Fail with the worker's log if a worker that was not killed has exited."""
        for proc in self.procs:
            if not proc.killed and proc.popen.poll() is not None:
                raise AssertionError(f"worker {proc.name} exited with {proc.popen.returncode}:\n"
                                     + proc.log.read_text(errors="replace"))

    def logs(self) -> str:
        return "\n".join(f"--- process {p.name} (pid {p.pid}) ---\n"
                         + p.log.read_text(errors="replace") for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            try:
                self.kill(proc)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


@dataclass
class Rig:
    """A SQLite file, a client on it in this process, worker processes and their effects log."""

    directory: Path
    url: str
    client: durable.Client
    procs: WorkerProcs

    @property
    def effects_path(self) -> Path:
        return self.directory / "effects.jsonl"

    @property
    def gate_path(self) -> Path:
        return self.directory / "gate.open"

    def effects(self) -> list[dict[str, Any]]:
        return _flows.read_effects(self.effects_path)

    def open_gate(self) -> None:
        self.gate_path.touch()

    def start_worker(self, name: str, *, concurrency: int = 100) -> WorkerProc:
        return self.procs.start(name, concurrency=concurrency)

    def kill(self, proc: WorkerProc) -> None:
        self.procs.kill(proc)

    async def eventually(self, probe: Callable[[], Any], *, timeout: float = 20.0,
                         what: str = "a condition") -> Any:
        """:func:`eventually`, failing early (with logs) if a live worker died."""
        async def guarded() -> Any:
            self.procs.assert_running()
            value = probe()
            return await value if inspect.isawaitable(value) else value

        return await eventually(guarded, timeout=timeout, what=what)

    async def result(self, handle: durable.WorkflowHandle[T], *, timeout: float = 30.0) -> T:
        """The execution's result, once a worker finished it."""
        async def ended() -> bool:
            return (await handle.describe()).status != "running"

        await self.eventually(ended, timeout=timeout, what=f"{handle.workflow_id} to end")
        return await handle.result(timeout=5.0)


async def open_rig(directory: Path) -> Rig:
    url = f"sqlite:///{directory}/d.db"
    client = await durable.connect(url)  # creates the schema before any worker starts
    client.poll_interval = 0.05
    return Rig(directory, url, client, make_procs(directory, url))


@dataclass(frozen=True)
class Reference:
    """FaultMix run once by one worker that was never interrupted."""

    result: Any
    history: list[Event]
    effects: list[dict[str, Any]]


async def run_reference(directory: Path) -> Reference:
    """Run FaultMix without faults: what every interrupted run must end with."""
    rig = await open_rig(directory)
    try:
        rig.open_gate()
        handle = await rig.client.start(_flows.fault_mix, _flows.MIX, _flows.NAP, id="reference")
        await handle.send(_flows.GO, _flows.GO_PAYLOAD, idempotency_key="go-1")
        rig.start_worker("reference")
        result = await rig.result(handle)
        return Reference(result, await handle.history(), rig.effects())
    finally:
        rig.procs.close()
        await rig.client.close()


def make_procs(directory: Path, url: str) -> WorkerProcs:
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env[_flows.EFFECTS_ENV] = str(directory / "effects.jsonl")
    env[_flows.GATE_ENV] = str(directory / "gate.open")
    return WorkerProcs(url, directory, env)
