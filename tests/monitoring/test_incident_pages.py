"""``project.monitoring.alerts`` pages its incidents in the database: newest first, ``limit`` from
``offset``, on each metadata backend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mloop import Project
from tests.monitoring.stream import START, records, register, write


def test_incidents_are_paged_newest_first(metadata_url: str, tmp_path: Path) -> None:
    with Project.open(tmp_path, env={}, metadata_url=metadata_url,
                      monitoring={"window": "1h", "sinks": [{"kind": "log"}]}) as project:  # fmt: skip
        model = register(project)
        for hour, shifted in enumerate([False, True, False, True, False, True]):
            start = START + timedelta(hours=hour)
            recs, _ = records(model, [hour], 600, seed=hour, shift_from=start if shifted else None, shift=1.5)
            write(project, recs, f"h{hour}")
            project.monitoring.update("fraud", now=start + timedelta(hours=1), lookback=timedelta(hours=2))
        every = project.monitoring.alerts("fraud")
        pages = [project.monitoring.alerts("fraud", offset=o, limit=2) for o in (0, 2, 4)]
    assert len(every) == 3 and [a["status"] for a in every] == ["firing", "resolved", "resolved"]
    assert [a["started_at"] for a in every] == sorted((a["started_at"] for a in every), reverse=True)
    assert [len(p) for p in pages] == [2, 1, 0] and pages[0] + pages[1] == every
