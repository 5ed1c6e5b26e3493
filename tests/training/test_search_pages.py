"""Pages of a run search (``offset``), its count and the keys a table can show: a page is the slice of the
full ordered result, on every plan the search can take (metric index walk, metric-driven, run scan)."""

from __future__ import annotations

import pytest

from mloop import Project
from mloop.errors import MloopError, NotFound


@pytest.fixture
def runs(project: Project) -> Project:
    """23 runs of "exp": auc on most (ties included), a numeric param on most, a tag on some; 2 of "other"."""
    for i in range(23):
        params = {"leaves": [7, 15, 31, 63][i % 4]} if i % 5 else {}
        with project.run("exp", params=params, tags={"team": "risk"} if i % 3 == 0 else {}) as run:
            if i % 6:
                run.log_metric("auc", round(0.5 + (i % 7) * 0.05, 2))
    for _ in range(2):
        with project.run("other", params={"lr": 0.1}) as run:
            run.log_metric("loss", 0.2)
    return project


@pytest.mark.parametrize(
    ("filter", "order"),
    [
        (None, None),
        (None, ["metrics.auc desc"]),
        (None, ["params.leaves asc", "metrics.auc desc"]),
        ("metrics.auc > 0.6", None),
        ("metrics.auc > 0.6", ["metrics.auc asc"]),
        ("tags.team = 'risk' or params.leaves = 15", ["attributes.name desc"]),
    ],
)
def test_pages_are_slices_of_the_full_ordered_result(
    runs: Project, filter: str | None, order: list[str] | None
) -> None:
    whole = [r.id for r in runs.runs.search("exp", filter, order, limit=1000)]
    assert runs.runs.count("exp", filter) == len(whole) > 0
    for per in (1, 4, 10):
        pages = [
            runs.runs.search("exp", filter, order, limit=per, offset=o)
            for o in range(0, len(whole) + per, per)
        ]
        assert [r.id for page in pages for r in page] == whole, (per, filter, order)
        assert pages[-1] == []  # past the end: an empty page, not an error


def test_count_is_scoped_and_filters_like_search(runs: Project) -> None:
    assert runs.runs.count("exp") == 23
    assert runs.runs.count("other") == 2
    assert runs.runs.count() == 25  # every experiment
    assert runs.runs.count("exp", "metrics.auc >= 0.8") == len(runs.runs.search("exp", "metrics.auc >= 0.8"))
    assert runs.runs.count("exp", at_most=5) == 5  # stops counting there
    assert runs.runs.count("exp", "metrics.auc >= 0.8", at_most=1000) == runs.runs.count(
        "exp", "metrics.auc >= 0.8"
    )
    assert runs.runs.experiment_names() == ["other", "exp"]  # the newest created first
    with pytest.raises(MloopError, match="at_most"):
        runs.runs.count("exp", at_most=0)
    with pytest.raises(NotFound, match="No experiment 'nope'"):
        runs.runs.count("nope")
    with pytest.raises(MloopError, match="offset"):
        runs.runs.search("exp", offset=-1)


def test_keys_are_those_of_the_experiments_recent_runs(runs: Project) -> None:
    assert runs.runs.keys("exp") == {"params": ["leaves"], "metrics": ["auc"], "tags": ["team"]}
    assert runs.runs.keys("other") == {"params": ["lr"], "metrics": ["loss"], "tags": []}
    # the newest run of "exp" (i = 22) has leaves, auc and no tag
    assert runs.runs.keys("exp", recent=1) == {"params": ["leaves"], "metrics": ["auc"], "tags": []}
