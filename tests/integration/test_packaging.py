"""Packaging: the base install runs the embedded path; each optional feature names its extra.

The base install is simulated in a subprocess whose import system refuses the optional
packages (a meta-path finder that raises ``ModuleNotFoundError`` for them), so the tests do
not depend on what this environment has installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

OPTIONAL = ("asyncpg", "redis", "hiredis", "aiohttp", "prometheus_client", "cryptography",
            "opentelemetry")

BLOCKER = f"""\
import importlib.abc, sys
OPTIONAL = {OPTIONAL!r}
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocked())
def loaded_optional():
    return sorted(m for m in sys.modules if m.split(".")[0] in OPTIONAL)
"""


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1",
           "DURABLE_DB": f"sqlite:///{tmp_path / 'base.db'}"}
    env.pop("DURABLE_REDIS", None)
    proc = subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_an_embedded_workflow_runs_without_any_optional_package(tmp_path: Path) -> None:
    proc = _run("""
        import asyncio, durable

        @durable.action
        def double(x: int) -> int:
            return 2 * x

        @durable.workflow(name="Base")
        async def base(ctx: durable.Context, x: int) -> int:
            await ctx.sleep(0.01)
            return await ctx.run(double, x) + (await ctx.wait_for("Add")).payload

        async def main() -> None:
            async with durable.connect("sqlite:///base.db") as client, \\
                    durable.Worker(client, workflows=[base], actions=[double]):
                handle = await client.start(base, 20, id="b1")
                await handle.send("Add", 2)
                print("result", await handle.result())

        asyncio.run(main())
        print("optional", loaded_optional())
        """, tmp_path)
    assert proc.stdout.splitlines() == ["result 42", "optional []"]


def test_the_quickstart_example_runs_without_any_optional_package(tmp_path: Path) -> None:
    proc = _run("""
        import runpy
        try:
            runpy.run_module("examples.invoice", run_name="__main__")
        except SystemExit as exit:
            assert not exit.code, exit.code
        print("optional", loaded_optional())
        """, tmp_path)
    assert "result: approved" in proc.stdout and "WorkflowCompleted" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "optional []"


def test_each_optional_feature_names_the_extra_to_install(tmp_path: Path) -> None:
    proc = _run("""
        import asyncio, durable
        from durable.errors import MissingExtraError

        def expect(extra, package, call):
            try:
                call()
            except MissingExtraError as exc:
                assert (exc.extra, exc.package) == (extra, package), exc
                assert isinstance(exc, ImportError)
                print(extra, str(exc))
            else:
                raise AssertionError(f"no MissingExtraError for {extra}")

        async def open_client(url, **options):
            async with durable.connect(url, **options):
                pass

        expect("postgres", "asyncpg",
               lambda: asyncio.run(open_client("postgresql://u@127.0.0.1:1/db")))
        expect("redis", "redis", lambda: asyncio.run(
            open_client("sqlite:///r.db", redis_url="redis://127.0.0.1:1/0")))
        expect("server", "aiohttp", lambda: __import__("durable_server"))
        expect("crypto", "cryptography", lambda: durable.AesGcmCodec({"k": bytes(32)}))

        from durable._cli import main
        assert main(["--db", "postgresql://u@127.0.0.1:1/db", "migrate"]) == 1
        assert main(["server"]) == 1
        print("optional", loaded_optional())
        """, tmp_path)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    for extra, package in [("postgres", "asyncpg"), ("redis", "redis"), ("server", "aiohttp"),
                           ("crypto", "cryptography")]:
        assert lines[extra].endswith(f"needs the {package} package, which is not installed: "
                                     f"run pip install 'durable[{extra}]'"), lines[extra]
    assert lines["optional"] == "[]"
    errors = proc.stderr.splitlines()
    assert errors[0].startswith("error: a PostgreSQL store") and "durable[postgres]" in errors[0]
    assert errors[1] == ("error: durable server needs the aiohttp package, which is not "
                         "installed: run pip install 'durable[server]'")


def test_the_base_dependencies_are_the_embedded_path_only() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_name(d) for d in project["dependencies"]}
    assert base == {"msgspec", "croniter", "uvloop"}
    extras = project["optional-dependencies"]
    assert {_name(d) for d in extras["postgres"]} == {"asyncpg"}
    assert {_name(d) for d in extras["redis"]} == {"redis"}
    assert {"aiohttp", "prometheus-client"} <= {_name(d) for d in extras["server"]}
    assert {_name(d) for d in extras["otel"]} == {"opentelemetry-api", "opentelemetry-sdk"}
    assert extras["all"] == ["durable[postgres,redis,server,otel,crypto]"]
    assert "durable[all]" in extras["test"]
    assert (REPO / project["license-files"][0]).is_file() and project["readme"] == "README.md"


def _name(requirement: str) -> str:
    for stop in "[<>=;! ":
        requirement = requirement.split(stop, 1)[0]
    return requirement
