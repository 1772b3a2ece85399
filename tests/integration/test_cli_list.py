"""``durable list``: filters and keyset paging, against a SQLite file (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable._cli import main


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    db = f"sqlite:///{tmp_path / 'list.db'}"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--db", db, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:]]


def test_list_filters_and_pages(cli) -> None:
    for i in range(5):
        assert cli("start", "InvoiceApproval", f'"inv-{i}"', "5", "--id", f"inv-{i}",
                   "--module", "examples.invoice")[0] == 0
    assert cli("start", "OrderFulfillment", '"o-1"', "100", '["tea"]', "--id", "order-1",
               "--module", "examples.order")[0] == 0
    code, out, err = cli("list", "--workflow", "InvoiceApproval", "--limit", "2")
    assert code == 0, err
    assert _ids(out) == ["inv-4", "inv-3"]
    cursor = err.split("--after ")[1].strip()
    code, out, err = cli("list", "--workflow", "InvoiceApproval", "--limit", "2",
                         "--after", cursor)
    assert _ids(out) == ["inv-2", "inv-1"] and "--after" in err
    code, out, err = cli("list", "--workflow", "InvoiceApproval", "--limit", "2",
                         "--after", err.split("--after ")[1].strip())
    assert _ids(out) == ["inv-0"] and err == ""  # the last page prints no cursor
    code, out, _ = cli("list", "--id-prefix", "inv-3", "--status", "running", "--since", "1h")
    assert _ids(out) == ["inv-3"] and "running" in out
    assert cli("list", "--status", "held")[1].strip() == "no executions"
    assert cli("list", "--until", "2001-01-01")[1].strip() == "no executions"
    assert _ids(cli("list", "--since", "2001-01-01T00:00Z", "--id-prefix", "inv")[1]) == [
        "inv-4", "inv-3", "inv-2", "inv-1", "inv-0"]


def test_list_refuses_bad_cursors_and_moments(cli) -> None:
    assert cli("start", "InvoiceApproval", '"inv-1"', "5", "--module", "examples.invoice")[0] == 0
    code, _, err = cli("list", "--after", "not-a-cursor")
    assert code != 0 and "not a cursor" in err
    code, _, err = cli("list", "--since", "yesterday")
    assert code != 0 and "not a moment" in err and "ISO 8601" in err
