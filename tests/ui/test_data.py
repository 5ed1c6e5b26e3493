"""The Data pages on a project of their own: two datasets, one ingested three times with rows refused
for a negative value and a value that is not a number; the lists page in the database, and the download
of the quarantine streams every refused row with its reasons, to whoever may read the dataset."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mloop import Column, Dataset, Project
from mloop.ui import create_ui_app
from tests.data.helpers import write_csv
from tests.ui.conftest import login

SCHEMA = Dataset("events", columns=[Column("id", "int64"), Column("ts", "timestamp"),
                                    Column("v", "int64", min=0)], key="id", timestamp="ts")  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("uidata")
    with Project.open(root, env={}) as opened:
        good = [[str(i), "2026-11-01", "1"] for i in range(1, 11)]
        opened.data.ingest(write_csv(root / "a.csv", ["id", "ts", "v"], good), SCHEMA)
        bad = [[str(i), "2026-11-02", "-1" if i % 2 else "x"] for i in range(11, 71)]  # 60 refused rows
        opened.data.ingest(
            write_csv(root / "b.csv", ["id", "ts", "v"], [*bad, ["71", "2026-11-02", "3"]]), "events"
        )
        opened.data.ingest(
            write_csv(root / "c.csv", ["id", "ts", "v"], [["72", "2026-11-03", "4"]]), "events"
        )
        opened.data.ingest(write_csv(root / "o.csv", ["k", "ts"], [["1", "2026-11-01"]]), "other")
        opened.users.add("reader-of-other", ["data_engineer@dataset:other"])
        opened.users.add("reader", ["data_scientist"])
        yield opened


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_ui_app(project)) as c:
        yield c


@pytest.fixture(scope="module")
def served(project: Project) -> Iterator[Project]:
    """The project as a shared server opens it: no local admin, a login per user."""
    with Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor) as opened:
        yield opened


def _as(served: Project, user: str) -> TestClient:
    client = TestClient(create_ui_app(served), follow_redirects=False)
    login(client, served.keys.issue(user).token)
    return client


def _cells(html: str, row_header: str) -> list[str]:
    found = re.search(rf"<th scope=\"row\">.*?{re.escape(row_header)}.*?</th>(.*?)</tr>", html, re.S)
    assert found, f"no row {row_header!r}"
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)
    ]


def test_the_list_shows_each_dataset_with_its_counts_and_pages_by_name(client: TestClient) -> None:
    page = client.get("/ui/data")
    assert page.status_code == 200 and "mloop data list" in page.text
    rows, quarantined, ingestions, schema, last = _cells(page.text, "events")
    assert (rows, quarantined, ingestions, schema) == ("12", "60", "3", "v1") and last.startswith("20")
    assert _cells(page.text, "other")[:3] == ["1", "0", "1"]
    first = client.get("/ui/data?per=1")
    assert 'href="/ui/data/events"' in first.text and 'href="/ui/data/other"' not in first.text
    assert "1–1 of 2 datasets" in first.text and 'rel="next"' in first.text
    second = client.get("/ui/data?per=1&page=2")
    assert 'href="/ui/data/other"' in second.text and 'href="/ui/data/events"' not in second.text


def test_a_dataset_shows_its_ingestions_newest_first_and_its_refused_rows_with_reasons(
    client: TestClient, project: Project
) -> None:
    page = client.get("/ui/data/events?per=2")
    assert page.status_code == 200
    newest = [r.ingest_id for r in reversed(project.data.ingestions("events"))]
    shown = re.findall(r"<th scope=\"row\"><code>(\w+)</code></th>", page.text)
    assert shown == newest[:2] and "1–2 of 3 ingestions" in page.text
    assert (
        re.findall(
            r"<th scope=\"row\"><code>(\w+)</code></th>", client.get("/ui/data/events?per=2&page=2").text
        )
        == newest[2:]
    )
    assert "1–50 of 60 quarantined rows" in page.text
    first = project.data.quarantine("events").iloc[0]
    assert f"<li>{first['_reason']}</li>" in page.text and f"<code>id={first['id']}</code>" in page.text
    last = client.get("/ui/data/events?qpage=2")
    assert "51–60 of 60 quarantined rows" in last.text and last.text.count("<li>") >= 10
    assert client.get("/ui/data/nope").status_code == 404


def test_the_download_streams_every_refused_row_with_its_reasons(
    client: TestClient, project: Project
) -> None:
    answer = client.get("/ui/data/events/quarantine.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    expected = project.data.quarantine("events")
    assert len(rows) == len(expected) == 60
    assert [r["_reason"] for r in rows] == expected["_reason"].astype(str).tolist()
    assert {r["id"] for r in rows} == {str(i) for i in range(11, 71)}
    assert client.get("/ui/data/other/quarantine.csv").text.strip() == ""


def test_only_who_may_read_the_dataset_downloads_its_quarantine(served: Project) -> None:
    scoped = _as(served, "reader-of-other")
    refused = scoped.get("/ui/data/events/quarantine.csv")
    assert refused.status_code == 403 and "id,ts" not in refused.text
    assert scoped.get("/ui/data/events").status_code == 403
    assert scoped.get("/ui/data/other/quarantine.csv").status_code == 200
    assert _as(served, "reader").get("/ui/data/events/quarantine.csv").status_code == 200
    assert scoped.get("/ui/data").status_code == 403  # the list needs data.read on every dataset
