from __future__ import annotations

from datetime import timedelta

from mloop._time import utcnow
from tests.cli.conftest import Run

NEXT_YEAR = (utcnow().date() + timedelta(days=365)).isoformat()


def add(cli: Run, *extra: str, title: str = "Online store in Redis", choice: str = "Redis") -> list[str]:
    return [
        "decisions", "add", "--title", title, "--context", "p99 under 20 ms at 2k rps", "--option", "SQLite",
        "--option", "Redis", "--choice", choice, "--tradeoff", "one more server to run", "--owner", "alice",
        "--review-by", NEXT_YEAR, *extra,
    ]  # fmt: skip


def test_add_list_show_supersede(cli: Run) -> None:
    assert cli("users", "add", "alice", "--role", "data_scientist").code == 0
    added = cli(*add(cli, "--link", "endpoint:fraud"))
    assert added.code == 0, added.err
    assert f"recorded ADR-1: Online store in Redis (review by {NEXT_YEAR})" in added.out
    second = cli(*add(cli, "--json", title="Redis Cluster for the online store")).json()
    assert second["id"] == "ADR-2" and second["options"] == ["SQLite", "Redis"] and second["owner"] == "alice"

    table = cli("decisions", "list")
    assert table.code == 0 and "ADR-1" in table.out and "ADR-2" in table.out and NEXT_YEAR in table.out
    assert "alice" in table.out and "accepted" in table.out  # long text folds at 80 columns

    shown = cli("decisions", "show", "ADR-1")
    assert shown.code == 0 and "ADR-1: Online store in Redis" in shown.out and "endpoint:fraud" in shown.out
    assert cli("decisions", "show", "ADR-1", "--json").json()["links"] == ["endpoint:fraud"]

    superseded = cli("decisions", "supersede", "ADR-1", "--by", "ADR-2")
    assert superseded.code == 0 and "ADR-1 is superseded by ADR-2" in superseded.out
    listed = cli("decisions", "list", "--json").json()
    assert [(d["id"], d["status"]) for d in listed] == [
        ("ADR-1", "superseded by ADR-2"),
        ("ADR-2", "accepted"),
    ]
    assert cli("decisions", "list", "--due", "--json").json() == []  # nothing past its review date

    events = cli("audit", "log", "--action", "decisions.*", "--json").json()
    assert [(e["action"], e["resource"]) for e in events] == [
        ("decisions.add", "decision:ADR-1"), ("decisions.add", "decision:ADR-2"),
        ("decisions.supersede", "decision:ADR-1"),
    ]  # fmt: skip


def test_bad_input_exits_1_with_the_fix(cli: Run) -> None:
    unknown = cli(*add(cli))
    assert unknown.code == 1 and "The owner 'alice' is not a user of this project" in unknown.err
    cli("users", "add", "alice")
    past = cli(*add(cli)[:-1], "2020-01-01")
    assert past.code == 1 and "review date 2020-01-01 is in the past" in past.err
    empty = cli(*add(cli, choice=""))
    assert empty.code == 1 and "The choice is empty" in empty.err
    missing = cli("decisions", "show", "ADR-7")
    assert missing.code == 1 and "No decision ADR-7" in missing.err
    assert cli("decisions", "list", "--json").json() == []
