"""The Features pages on a project of their own: a dataset-sourced view applied three times and
materialized, one never materialized and an on-demand view; freshness and row counts are the project's,
versions page newest first and any two versions diff."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import mloop as ml
from mloop import Project
from mloop.ui import create_ui_app
from tests.ui.conftest import login

customer = ml.Entity("customer", join_keys=["customer_id"])
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _amounts(ttl: str, *extra: ml.Field) -> ml.FeatureView:
    return ml.FeatureView("amounts", entities=[customer], source=ml.DatasetSource("txns"), ttl=ttl,
                          features=[ml.Field("amount", "float64"), *extra])  # fmt: skip


def _double(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"double": frame["amount"] * 2})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    with Project.open(tmp_path_factory.mktemp("uifeatures"), env={}) as opened:
        txns = pd.DataFrame({"txn_id": range(40), "customer_id": [i % 4 for i in range(40)],
                             "ts": [T0 + timedelta(hours=i) for i in range(40)],
                             "amount": [float(i) for i in range(40)], "channel": ["web"] * 40})  # fmt: skip
        opened.data.ingest(txns, "txns")
        opened.apply([_amounts("2d")])
        opened.apply([_amounts("7d")])
        opened.apply([_amounts("7d", ml.Field("channel", "string"))])
        odv = ml.OnDemandView("doubled", inputs=["amounts:amount"], request=[], fn=_double,
                              outputs=[ml.Field("double", "float64")])  # fmt: skip
        cold = ml.FeatureView("cold", entities=[customer], source=ml.DatasetSource("txns"),
                              features=[ml.Field("channel", "string")])  # fmt: skip
        opened.apply([odv, cold])
        opened.features.materialize(T0 - timedelta(hours=1), T0 + timedelta(days=2), views=["amounts"])
        opened.users.add("only-data", ["data_engineer@dataset:*"])
        yield opened


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_ui_app(project)) as c:
        yield c


def _cells(html: str, name: str) -> list[str]:
    found = re.search(rf'<th scope="row"><a href="/ui/features/{name}[^"]*">.*?</th>(.*?)</tr>', html, re.S)
    assert found, f"no row for {name}"
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", found.group(1), re.S)
    ]


def test_the_list_shows_each_view_with_its_freshness_and_row_counts(
    client: TestClient, project: Project
) -> None:
    page = client.get("/ui/features")
    assert page.status_code == 200 and "mloop features list" in page.text
    entities, version, source, ttl, features, newest, age, lag, online, offline = _cells(page.text, "amounts")
    fresh = {f.view: f for f in project.features.freshness()}["amounts"]
    assert (entities, version, source, ttl, features) == ("customer", "v3", "dataset", "7d", "2")
    assert (
        newest == f"{fresh.last_event_ts:%Y-%m-%d %H:%M:%S}" and age.endswith(("h", "m")) and lag[0].isdigit()
    )
    assert (online, offline) == ("8", "40")  # two daily chunks of 4 customers; 40 rows in the dataset
    cold = _cells(page.text, "cold")
    assert "never materialized" in cold[7] and (cold[8], cold[9]) == ("—", "40")
    assert 'href="/ui/features/doubled?kind=on_demand_view"' in page.text
    first, second = client.get("/ui/features?per=2").text, client.get("/ui/features?per=2&page=2").text
    assert "/ui/features/amounts" in first and "/ui/features/cold" in first and "doubled" not in first
    assert "/ui/features/doubled" in second and "1–2 of 3 views" in first


def test_a_view_lists_its_versions_and_diffs_any_two(client: TestClient) -> None:
    page = client.get("/ui/features/amounts")
    assert page.status_code == 200 and "mloop features show amounts" in page.text
    assert re.findall(r'<th scope="row">v(\d+)</th>', page.text) == ["3", "2", "1"]
    assert "v2 → v3" in page.text and "features: + channel" in page.text  # the last apply, by default
    older = client.get("/ui/features/amounts?a=1&b=2")
    assert (
        "ttl: &#39;2d&#39; -&gt; &#39;7d&#39;" in older.text
        and "channel" not in older.text.split('id="diff"')[1]
    )
    assert '<option value="1" selected>' in older.text and '<label for="diff-a">' in older.text
    second = client.get("/ui/features/amounts?per=2&page=2")
    assert re.findall(r'<th scope="row">v(\d+)</th>', second.text) == ["1"] and "Version 3" in second.text
    same = client.get("/ui/features/amounts?a=2&b=2")
    assert "nothing to compare" in same.text
    odv = client.get("/ui/features/doubled?kind=on_demand_view")
    assert odv.status_code == 200 and "<code>double</code>" in odv.text
    assert client.get("/ui/features/nope").status_code == 404
    assert client.get("/ui/features/amounts?a=1&b=9").status_code == 404


def test_a_user_without_features_read_sees_no_view(project: Project) -> None:
    with Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor) as served:
        client = TestClient(create_ui_app(served), follow_redirects=False)
        login(client, served.keys.issue("only-data").token)
        for path in ("/ui/features", "/ui/features/amounts"):
            refused = client.get(path)
            assert (
                refused.status_code == 403
                and "features.read" in refused.text
                and "<table" not in refused.text
            )


def test_a_view_shows_since_resample_and_min_count_of_its_aggregations(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    field = ml.Entity("field", join_keys=["field_id"])
    soil = ml.FeatureView("soil", entities=[field], source=ml.DatasetSource("readings"), aggregations=[
        ml.Aggregation("rain_mm", "sum", since="03-01"),
        ml.Aggregation("moisture", "mean", "1d", resample="1h", min_count=18),
    ])  # fmt: skip
    with Project.open(tmp_path_factory.mktemp("uisoil"), env={}) as opened:
        opened.data.ingest(
            pd.DataFrame({"field_id": [1], "ts": [T0], "rain_mm": [0.5], "moisture": [30.0]}), "readings"
        )
        opened.apply([soil])
        with TestClient(create_ui_app(opened)) as c:
            page = c.get("/ui/features/soil").text
    assert "(sum of rain_mm since 03-01)" in page
    assert "(mean of moisture over 1d, on a 1h grid, null under 18 values)" in page
