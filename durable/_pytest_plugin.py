"""The pytest plugin (registered as ``durable`` through the ``pytest11`` entry point).

``pytest --durable-histories DIR`` (or the ini option ``durable_histories``) turns every
``*.json`` history under DIR into one test that replays it against today's code with
``durable.Replayer``; one named ``*.nondeterministic.json`` passes only if it diverges. The
workflows come from ``--durable-modules mod1,mod2`` / the ini option ``durable_modules``
(imported when the first history is collected), plus whatever the process registered
anyway (a ``conftest.py`` import). ``durable_strict = true`` fails changed arguments too.

Only pytest is imported up front: durable itself is imported once a history is collected.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._corpus import Outcome
    from ._replay._replayer import Replayer

_FOLDERS = pytest.StashKey[list[Path]]()
_REPLAYER = pytest.StashKey["Replayer | Exception"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--durable-histories``, ``--durable-modules`` and their ini options."""
    group = parser.getgroup("durable", "durable: replay recorded workflow histories")
    group.addoption("--durable-histories", action="append", default=[], metavar="DIR",
                    help="replay every *.json history under DIR as a test (repeatable)")
    group.addoption("--durable-modules", action="append", default=[], metavar="MOD[,MOD]",
                    help="modules that define the workflows of those histories (repeatable)")
    parser.addini("durable_histories", type="paths", default=[],
                  help="folders of recorded histories to replay as tests")
    parser.addini("durable_modules", type="linelist", default=[],
                  help="modules that define the workflows of the recorded histories")
    parser.addini("durable_strict", type="bool", default=False,
                  help="a changed action argument or timer duration fails the replay too")


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the history folders; make sure one named on the command line is collected."""
    here = config.invocation_params.dir
    named = [(here / d).resolve() for d in config.getoption("durable_histories") or ()]
    folders = named + [Path(p).resolve() for p in config.getini("durable_histories")]
    config.stash[_FOLDERS] = folders
    for folder in named:
        if not folder.is_dir():
            raise pytest.UsageError(f"--durable-histories {folder}: no such folder")
        args = [(here / arg.split("::")[0]).resolve() for arg in config.args]
        # Collected already, or the run was narrowed to some of its files on purpose.
        if not any(_within(folder, arg) or _within(arg, folder) for arg in args):
            config.args.append(str(folder))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A ``*.json`` file under a history folder is a test."""
    if file_path.suffix != ".json":
        return None
    resolved = file_path.resolve()
    if any(_within(resolved, folder) for folder in parent.config.stash.get(_FOLDERS, [])):  # pyright: ignore[reportUnknownArgumentType]
        return HistoryFile.from_parent(parent, path=file_path)  # pyright: ignore[reportUnknownMemberType]
    return None


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class HistoryFile(pytest.File):
    """A recorded history: it collects one test, ``replay``."""

    def collect(self) -> Iterator[pytest.Item]:
        """The history's test (a collection error if the workflow modules cannot be imported)."""
        replayer = _replayer(self.config)
        if isinstance(replayer, Exception):
            raise self.CollectError(str(replayer))
        yield HistoryItem.from_parent(self, name="replay")  # pyright: ignore[reportUnknownMemberType]


class HistoryItem(pytest.Item):
    """Replays one history; fails on a divergence (or on none, for a canary)."""

    def runtest(self) -> None:
        """Replay the file against today's code."""
        from ._corpus import expects_divergence, replay_one

        replayer = _replayer(self.config)
        assert not isinstance(replayer, Exception)
        outcome = replay_one(replayer, self.path, expect_divergence=expects_divergence(self.path))
        if outcome.status != "ok":
            raise ReplayFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        """The divergence as the engine reports it (recorded event, new command, source line)."""
        if isinstance(excinfo.value, ReplayFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the test comes from."""
        return self.path, None, f"replay of {self.path.name}"


class ReplayFailed(Exception):
    """A history did not replay as it must."""

    def __init__(self, outcome: Outcome) -> None:
        error = outcome.error
        what = "diverged from today's code" if outcome.status == "diverged" else "failed"
        super().__init__(f"the history {what}:\n{type(error).__name__}: {error}")


def _replayer(config: pytest.Config) -> Replayer | Exception:
    """The session's Replayer, built once (or why it could not be)."""
    if _REPLAYER not in config.stash:
        config.stash[_REPLAYER] = _build_replayer(config)
    return config.stash[_REPLAYER]


def _build_replayer(config: pytest.Config) -> Replayer | Exception:
    from ._corpus import replayer_for

    names = [m.strip() for option in config.getoption("durable_modules") or ()
             for m in option.split(",")]
    names += config.getini("durable_modules")
    modules: list[ModuleType] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            modules.append(importlib.import_module(name))
        except Exception as exc:
            return ImportError(f"cannot import the workflow module {name!r} (durable_modules): "
                               f"{type(exc).__name__}: {exc}")
    return replayer_for(modules, strict=config.getini("durable_strict"))
