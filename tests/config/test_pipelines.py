"""The ``pipelines:`` block: a pipeline that cannot run is refused when the settings load, naming the entry
and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.errors import ConfigError

GOOD = """\
pipelines:
  recs:
    stages:
      - {name: retrieve, kind: retrieve, endpoint: recs-towers, k: 200, where: {in_stock: true}}
      - {name: rank, kind: rank, endpoint: recs-ranker, log: sample, sample: 0.05}
      - {name: top, kind: top, n: 20, exclude: "user_history:purchased"}
    cold_start: {kind: items, items: [3, 1, 2]}
"""


def test_a_pipeline_loads_from_mloop_yaml(tmp_path: Path) -> None:
    (tmp_path / "mloop.yaml").write_text(GOOD)
    recs = load_settings(tmp_path, env={}).pipelines["recs"]
    assert [s.kind for s in recs.stages] == ["retrieve", "rank", "top"]
    assert recs.stages[0].where == {"in_stock": True} and recs.stages[1].log == "sample"
    assert recs.cold_start is not None and recs.cold_start.items == [3, 1, 2]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "kind: rank,",
            "kind: rerank,",
            r"pipelines\.recs\.stages\.1\.kind: unknown stage kind 'rerank'; use one of",
        ),
        ("endpoint: recs-ranker, ", "", r"stage 'rank' \(rank\) needs the endpoint it calls: add endpoint"),
        ("name: top,", "name: rank,", r"stage name 'rank' is used twice"),
        ("[3, 1, 2]", "[]", r"cold_start kind items needs items"),
        ("kind: top, n: 20", "kind: top, n: 0", r"pipelines\.recs\.stages\.2\.n"),
    ],
)
def test_a_broken_pipeline_is_a_config_error_naming_the_entry(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD
    (tmp_path / "mloop.yaml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("[{name: t, kind: top}, {name: r, kind: retrieve, endpoint: e}]", "starts with one retrieve stage"),
        ("[{name: r, kind: retrieve, endpoint: e}, {name: t, kind: top}, {name: k, kind: rank, endpoint: e}]",
         "the top stage comes last"),
    ],
)  # fmt: skip
def test_the_retrieve_stage_comes_first_and_top_last(tmp_path: Path, stages: str, message: str) -> None:
    (tmp_path / "mloop.yaml").write_text(f"pipelines:\n  recs:\n    stages: {stages}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})
