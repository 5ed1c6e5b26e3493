"""The recsys demo's HTML report from a summary and a timeline: self-contained, escaped, and saying what
the loop did (or that it shipped nothing)."""

from __future__ import annotations

from pathlib import Path

from mloop.examples.recsys import report

SUMMARY = {
    "shift_day": 9, "shipped": 2, "shipped_on": 12, "p99_ms": 40.1,
    "stage_p99_ms": {"retrieve": 8.0, "rank": 6.1, "top": 0.04},
    "offline": {"recall@100": 0.5, "ndcg@10": 0.54},
    "ctr_by_day": {(8, 1): 0.18, (9, 1): 0.04, (10, 1): 0.03, (10, 2): 0.09},
    "ab": {"decision": "ship", "reason": "v2 is above v1", "lift": 0.069, "lift_low": 0.01, "lift_high": 0.12,
           "outcomes": 900, "arms": [{"version": 1, "mean": 0.05, "low": 0.03, "high": 0.07, "n": 450},
                                     {"version": 2, "mean": 0.12, "low": 0.09, "high": 0.15, "n": 450}]},
}  # fmt: skip
TIMELINE = [
    {"ts": "2026-12-07T01:00:01+00:00", "action": "loop.trigger", "reason": "ctr <0.06> & falling"},
    {"ts": "2026-12-07T01:00:05+00:00", "action": "loop.ab", "started": True, "champion": 1, "challenger": 2,
     "reason": "v2 takes 50%"},
    {"ts": "2026-12-07T01:00:07+00:00", "action": "loop.ab", "verdict": "need more data", "reason": "no news at this look"},
    {"ts": "2026-12-07T01:00:09+00:00", "action": "loop.promote", "champion": 2, "reason": "A/B: ship"},
]  # fmt: skip


def test_the_page_holds_the_story_the_arms_and_the_decisions(tmp_path: Path) -> None:
    written = report.write(tmp_path / "report.html", SUMMARY, TIMELINE)
    page = written.read_text()
    assert "shipped v2 on day 12" in page and 'id="plot-ctr"' in page and "<script src=" not in page
    assert "0.120" in page and "[0.090, 0.150]" in page and "after 900 outcomes" in page
    assert "loop.promote" in page and "v1 → v2" in page
    assert (
        "no news at this look" not in page
    )  # the looks without news are left out; the start and the decision stay
    assert "ctr &lt;0.06&gt; &amp; falling" in page  # event text is escaped


def test_a_run_that_shipped_nothing_says_so() -> None:
    page = report.render({**SUMMARY, "shipped": None, "ab": {}}, TIMELINE[:1])
    assert "no challenger was shipped" in page
