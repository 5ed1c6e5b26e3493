"""The Runs pages: the table (filter, sort, pages, columns), one run, and runs compared, on a project of
its own with 25 runs of "sweep" (and on the shared fraud project, as a logged-in role)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mloop import Project
from mloop.ui import create_ui_app
from tests.ui.conftest import Strict

N = 25


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """25 runs: lr = 0.01 * (i + 1), auc = 0.5 + i / 100 logged over 3 steps (step 2: the latest), an
    optimizer param on even runs only, one artifact on the first run."""
    project = Project.open(tmp_path_factory.mktemp("runs"), env={})
    for i in range(N):
        params = {"lr": round(0.01 * (i + 1), 2), **({"optimizer": "adam"} if i % 2 == 0 else {})}
        with project.run("sweep", params=params, name=f"trial-{i:02d}") as run:
            for step in range(3):
                run.log_metric("auc", 0.5 + i / 100 - (2 - step) * 0.1, step=step)
            run.log_metric("loss", 1.0 - i / 100)
            if i == 0:
                run.log_artifact(b"<script>alert(1)</script>", "report.html")
    yield project
    project.close()


@pytest.fixture
def client(sweep: Project) -> Iterator[TestClient]:
    with TestClient(create_ui_app(sweep), raise_server_exceptions=True) as client:
        yield client


def names(html: str) -> list[str]:
    """The run names of the table's rows, in order."""
    return re.findall(r'<th scope="row"><a href="/ui/runs/[0-9a-f]+">(trial-\d\d)</a>', html)


def test_the_table_pages_in_the_database_newest_first(client: TestClient) -> None:
    first = client.get("/ui/runs", params={"experiment": "sweep", "per": 20})
    assert first.status_code == 200
    assert names(first.text) == [f"trial-{i:02d}" for i in range(24, 4, -1)]
    assert "25 runs · page 1 of 2" in first.text and 'rel="next"' in first.text
    second = client.get("/ui/runs", params={"experiment": "sweep", "per": 20, "page": 2})
    assert names(second.text) == [f"trial-{i:02d}" for i in range(4, -1, -1)]
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text
    beyond = client.get("/ui/runs", params={"experiment": "sweep", "per": 20, "page": 99})
    assert names(beyond.text) == names(second.text)  # past the end: the last page
    assert "mloop runs list --experiment sweep" in first.text


def test_sorting_by_a_metric_or_param_both_ways_via_the_header_links(client: TestClient) -> None:
    page = client.get(
        "/ui/runs", params={"experiment": "sweep", "per": 20, "sort": "metrics.auc", "dir": "asc"}
    )
    assert names(page.text)[:3] == ["trial-00", "trial-01", "trial-02"]
    assert 'aria-sort="ascending"' in page.text
    link = re.search(r'<a href="([^"]+)" class="sorted">metrics.auc', page.text)
    assert link, "the sorted column's heading links to the other direction"
    flipped = client.get(link.group(1).replace("&amp;", "&"))
    assert names(flipped.text)[:3] == ["trial-24", "trial-23", "trial-22"]
    by_param = client.get(
        "/ui/runs", params={"experiment": "sweep", "sort": "params.optimizer", "dir": "asc"}
    )
    assert names(by_param.text)[-1] in {f"trial-{i:02d}" for i in range(1, N, 2)}  # runs without it sort last


def test_the_filter_language_selects_rows_and_a_bad_filter_is_explained_on_the_page(
    client: TestClient,
) -> None:
    page = client.get(
        "/ui/runs",
        params={"experiment": "sweep", "filter": "metrics.auc >= 0.7 and params.optimizer = 'adam'"},
    )
    assert page.status_code == 200
    assert sorted(names(page.text)) == ["trial-20", "trial-22", "trial-24"]
    assert "3 runs · page 1 of 1" in page.text
    bad = client.get("/ui/runs", params={"experiment": "sweep", "filter": "metrics.auc >> 1"})
    assert bad.status_code == 400
    assert re.search(r'role="alert" id="filter-error">Cannot read', bad.text), bad.text[-2000:]
    assert 'value="metrics.auc &gt;&gt; 1"' in bad.text  # the filter stays in the box to be fixed
    unknown = client.get("/ui/runs", params={"experiment": "nope"})
    assert unknown.status_code == 400 and "No experiment &#39;nope&#39;" in unknown.text


def test_the_column_picker_lists_the_keys_and_its_choice_is_in_the_url(client: TestClient) -> None:
    page = client.get("/ui/runs", params={"experiment": "sweep"})
    for key in ("params.lr", "params.optimizer", "metrics.auc", "metrics.loss"):
        assert f'name="cols" value="{key}"' in page.text
    chosen = client.get("/ui/runs", params=[("experiment", "sweep"), ("cols", "metrics.loss"), ("per", "20")])
    headings = re.findall(r'<th scope="col"[^>]*>\s*<a href="[^"]+"[^>]*>([^<]+)</a>', chosen.text)
    assert [h.strip(" ▲▼") for h in headings] == ["Name", "Status", "Started", "metrics.loss"]
    assert "cols=metrics.loss" in chosen.text  # next-page and sort links keep the choice
    assert ">0.76<" in chosen.text  # trial-24's loss


def test_a_run_page_shows_its_values_curves_and_artifacts(client: TestClient, sweep: Project) -> None:
    run = sweep.runs.search("sweep", "attributes.name = 'trial-00'")[0]
    page = client.get(f"/ui/runs/{run.id}")
    assert page.status_code == 200
    assert ">0.01<" in page.text and ">adam<" in page.text and ">0.5<" in page.text
    data = json.loads(re.search(r'id="curve-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert data["auc"]["x"] == [0, 1, 2] and [round(v, 6) for v in data["auc"]["y"][0]] == [0.3, 0.4, 0.5]
    assert 'src="/ui/static/uPlot.iife.min.js"' in page.text
    assert "report.html" in page.text
    download = client.get(f"/ui/runs/{run.id}/artifacts/report.html")
    assert download.content == b"<script>alert(1)</script>"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")
    assert client.get("/ui/runs/ffffffffffff").status_code == 404


def test_compare_overlays_curves_diffs_params_and_draws_parallel_coordinates(
    client: TestClient, sweep: Project
) -> None:
    picked = sweep.runs.search("sweep", order_by=["attributes.name asc"], limit=3)
    ids = [r.id for r in picked]
    # the table's checkboxes send ids=a&ids=b; a shared link sends ids=a,b: both work
    page = client.get("/ui/runs/compare", params=[("ids", ids[0]), ("ids", f"{ids[1]},{ids[2]}")])
    assert page.status_code == 200
    data = json.loads(re.search(r'id="curve-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert len(data["auc"]["y"]) == 3 and data["auc"]["x"] == [0, 1, 2]
    differing = re.findall(r'<tr class="differs">\s*<th scope="row">([^ <]+)', page.text)
    assert "params.lr" in differing and "params.optimizer" in differing and "metrics.auc" in differing
    svg = re.search(r"<svg class=\"parcoords\".*?</svg>", page.text, re.S)
    assert svg and svg.group(0).count("<polyline") == 3 and ">params.lr<" in svg.group(0)
    assert "mloop runs compare " + " ".join(ids) in page.text


@pytest.mark.parametrize("count", [1, 11])
def test_compare_refuses_fewer_than_two_or_more_than_ten_runs(
    client: TestClient, sweep: Project, count: int
) -> None:
    ids = [r.id for r in sweep.runs.search("sweep", limit=count)]
    page = client.get("/ui/runs/compare", params={"ids": ",".join(ids)})
    assert page.status_code == 400 and f"Pick from 2 to 10 runs to compare (got {count})" in page.text


def test_user_text_is_escaped_in_the_table_and_the_chart(tmp_path: Path) -> None:
    project = Project.open(tmp_path, env={})
    try:
        ids = []
        for name in ("<b>x</b>", "y"):
            with project.run(
                "xss",
                params={"p": "<img src=x onerror=alert(1)>"},
                name=name.replace("<", "l").replace(">", "g"),
            ) as run:
                run.log_metric("m", 1.0)
            ids.append(run.id)
        project.runs.set_tags(ids[0], {"t": "</script><script>alert(1)</script>"})
        with TestClient(create_ui_app(project)) as client:
            page = client.get(
                "/ui/runs", params=[("experiment", "xss"), ("cols", "params.p"), ("cols", "tags.t")]
            )
            compare = client.get("/ui/runs/compare", params={"ids": ",".join(ids)})
        for html in (page.text, compare.text):
            assert "<img src=x" not in html and "</script><script>alert" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in compare.text
    finally:
        project.close()


def test_a_logged_in_role_sees_the_shared_projects_runs(strict: Strict, ui_project: Project) -> None:
    client = strict.client("auditor")
    page = client.get("/ui/runs")
    assert page.status_code == 200
    newest = ui_project.runs.search(limit=1)[0]
    assert f'href="/ui/runs/{newest.id}"' in page.text
    assert client.get(f"/ui/runs/{newest.id}").status_code == 200
