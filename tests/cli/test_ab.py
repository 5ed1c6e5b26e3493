"""``mloop ab report`` and ``project.ab.report`` over a real prediction log with click feedback: a clear
lift ships, in JSON, markdown and the table; a bad metric is refused with the choices."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mloop import Project
from mloop.predictions.log import predictions_folder
from tests.cli.conftest import Run
from tests.monitoring.ab_log import label, serve


def test_the_report_ships_a_clear_lift_and_the_cli_prints_it(cli: Run) -> None:
    root: Path = cli.root  # type: ignore[attr-defined]
    rng = np.random.default_rng(5)
    with Project.open(root, env={}) as project:
        folder = Path(str(predictions_folder(project.settings)))
        versions = rng.integers(1, 3, 1200)
        rids = serve(folder, "shop", "m", versions.tolist(), time.time() - 600)
        clicks = rng.random(1200) < np.where(versions == 2, 0.25, 0.10)
        label(folder, "shop", [(rid, 0, bool(c)) for rid, c in zip(rids, clicks, strict=True)])
        report = project.ab.report("shop", metric="ctr", since="1h", mde=0.3)
    assert (report.control, report.treatment, report.decision) == (1, 2, "ship")
    assert report.lift_low is not None and 0 < report.lift_low < report.lift < (report.lift_high or 0)
    assert (
        report.p_value <= 0.05 and report.min_samples and report.relative_lift and report.relative_lift > 0.5
    )
    done = cli("ab", "report", "shop", "--since", "1h", "--mde", "0.3", "--json")
    assert done.code == 0 and done.json()["decision"] == "ship"
    table = cli("ab", "report", "shop", "--since", "1h", "--mde", "0.3", "--format", "markdown")
    assert table.code == 0 and "decision: **ship**" in table.out and "| control | v1 |" in table.out
    bad = cli("ab", "report", "shop", "--metric", "revenue")
    assert bad.code != 0 and "'ctr'" in bad.err
    plain = cli("ab", "report", "shop", "--since", "1h", "--mde", "0.3")
    assert plain.code == 0 and "decision: ship" in plain.out
