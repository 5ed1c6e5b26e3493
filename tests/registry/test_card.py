"""Model cards: every section, "not recorded" where facts are absent, and the limitations derived."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import MloopError
from mloop.registry import card as cards
from tests.models.cases import Case
from tests.registry.conftest import make_run

FACTS = {
    "intended_use": "Rank card transactions for manual fraud review. Not for credit decisions.",
    "training_data": {
        "views": [{"name": "customer_txn_stats", "version": 3}, {"name": "merchant_stats", "version": 1}],
        "time_range": {"start": "2024-01-01", "end": "2024-03-31"},
        "rows": 120000,
        "train_rows": 100000,
        "test_rows": 20000,
        "label": "is_fraud",
        "label_balance": {"0": 117600, "1": 2400},
    },
    "metrics": {"train": {"auc": 0.99, "recall": 0.8}, "test": {"auc": 0.85, "recall": 0.78}},
    "slices": {
        "country": {
            "DE": {"rows": 15000, "auc": 0.86},
            "FR": {"rows": 4950, "auc": 0.84},
            "MT": {"rows": 50, "auc": 0.6},
        }
    },
    "fairness": {"country": {"metric": "recall", "groups": {"DE": 0.81, "FR": 0.64}}, "age_band": 0.04},
    "limitations": ["Not validated on merchants outside the EU."],
}


def kinds(card: dict) -> list[str]:
    return [item["kind"] for item in card["limitations"]]


def test_markdown_has_every_section_with_the_facts(project: Project, clf: Case) -> None:
    run_id = make_run(project, metrics={"auc": 0.85}, info={"git_commit": "abc123"})
    lineage = {
        "feature_views": {"customer_txn_stats": 3, "merchant_stats": 1},
        "training_set_fingerprint": "9f" * 8,
    }
    project.models.register(
        "fraud", clf.model, run_id=run_id, input_example=clf.frame, card=FACTS, lineage=lineage
    )
    project.models.set_alias("fraud", "champion", 1)
    text = project.models.card("fraud", 1)
    assert isinstance(text, str)
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == list(cards.SECTIONS)
    assert text.startswith("# Model card: fraud version 1")
    for fact in (
        "Rank card transactions for manual fraud review",
        "customer_txn_stats (version 3), merchant_stats (version 1)",
        "2024-01-01 to 2024-03-31",
        "120,000 (train 100,000, test 20,000)",
        "1: 2,400 (2.0%)",
        "| auc | 0.99 | 0.85 |",
        "| country=MT | 50 | 0.6 |",
        "| country | recall | 0.17 | DE: 0.81, FR: 0.64 |",
        "Not validated on merchants outside the EU.",
        f"Run: {run_id} (experiment exp-",
        "Code version (git commit): abc123",
        "Training-set fingerprint: " + "9f" * 8,
        "| amount | input | float64 | yes |",  # LightGBM takes missing values
        "| aliases | champion |",
    ):
        assert fact in text, fact
    assert (
        "not recorded"
        not in text.split("## Limitations")[0].split("## Intended use")[1].split("## Fairness")[0]
    )


def test_absent_facts_read_not_recorded(project: Project, clf: Case) -> None:
    project.models.register("fraud", clf.model)
    text = project.models.card("fraud", 1)
    assert re.findall(r"^## (.+)$", text, flags=re.M) == list(cards.SECTIONS)
    for line in ("- Feature views: not recorded", "- Rows: not recorded", "- Code version (git commit): not recorded",
                 "- Training-set fingerprint: not recorded", "- Run: not recorded"):  # fmt: skip
        assert line in text
    assert text.split("## Intended use")[1].split("##")[0].strip() == "not recorded"
    assert text.split("## Fairness gaps")[1].split("##")[0].strip() == "not recorded"
    assert "No metrics were recorded" in text and "No signature was recorded" in text


def test_the_description_stands_in_for_intended_use(sqlite_project: Project, clf: Case) -> None:
    sqlite_project.models.register("fraud", clf.model, description="Scores card transactions.")
    assert "## Intended use\n\nScores card transactions." in sqlite_project.models.card("fraud", 1)


def test_json_card_holds_the_facts_and_derived_limitations(sqlite_project: Project, clf: Case) -> None:
    sqlite_project.models.register("fraud", clf.model, card=FACTS, input_example=clf.frame)
    data = sqlite_project.models.card("fraud", 1, format="json")
    assert isinstance(data, dict) and (data["name"], data["version"]) == ("fraud", 1)
    assert data["slices"]["country=MT"] == {"rows": 50, "metrics": {"auc": 0.6}}
    assert [(f["attribute"], f["metric"]) for f in data["fairness"]] == [
        ("country", "recall"),
        ("age_band", None),
    ]
    assert data["fairness"][0]["gap"] == pytest.approx(0.17)
    assert kinds(data) == ["stated", "train_test_gap", "small_slice", "fairness_gap"]
    with pytest.raises(MloopError, match="not one of: markdown, json"):
        sqlite_project.models.card("fraud", 1, format="html")


def test_limitations_name_small_slices_large_gaps_and_missing_metrics() -> None:
    card = cards.build(FACTS)
    details = [item["detail"] for item in card["limitations"]]
    assert "Slice country=MT has only 50 rows (0.2% of 20,000): its metrics are unreliable." in details
    assert "recall differs by 0.17 across country (DE 0.81, FR 0.64), more than 0.1." in details
    assert any(
        d.startswith("auc is 0.99 on training data but 0.85 on test data (14% apart)") for d in details
    )
    assert not any("age_band" in d for d in details)  # 0.04 is within the limit
    assert not any("recall is" in d for d in details)  # 0.80 vs 0.78 is close
    assert kinds(cards.build({})) == ["metrics_missing"]
    assert kinds(cards.build({}, has_signature=False)) == ["metrics_missing", "no_signature"]
    # flat metrics with split prefixes or suffixes are paired too
    assert kinds(cards.build({"metrics": {"train_auc": 0.95, "auc_test": 0.7}})) == ["train_test_gap"]


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(list("ABCDEFGH")), st.integers(0, 20000), min_size=1))
def test_a_slice_is_small_below_100_rows_or_1_percent_of_its_attribute(rows: dict[str, int]) -> None:
    card = cards.build(
        {"metrics": {"auc": 0.9}, "slices": {"segment": {k: {"rows": n} for k, n in rows.items()}}}
    )
    flagged = {d["detail"].split()[1] for d in card["limitations"] if d["kind"] == "small_slice"}
    total = sum(rows.values())
    assert flagged == {f"segment={k}" for k, n in rows.items() if n < 100 or n < 0.01 * total}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), st.floats(0, 1), min_size=2, max_size=6))
def test_a_fairness_gap_is_flagged_above_one_tenth(groups: dict[str, float]) -> None:
    card = cards.build({"metrics": {"auc": 0.9}, "fairness": {"region": {"metric": "tpr", "groups": groups}}})
    gap = max(groups.values()) - min(groups.values())
    assert card["fairness"][0]["gap"] == pytest.approx(gap)
    assert ("fairness_gap" in kinds(card)) == (gap > 0.1)


def test_the_training_pipelines_own_shapes_are_read() -> None:
    """What TrainingSet.summary() and mloop.metrics.evaluation produce, passed through unchanged."""
    facts = {
        "training_data": {
            "rows": {"train": 8000, "valid": 1000, "test": 1000},
            "time_range": ["2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"],
            "label": "is_fraud",
            "label_balance": 0.031,
            "views": [{"name": "txn_stats", "kind": "feature_view", "version": 2}],
            "notes": ["3 label rows had no features"],
        },
        "metrics": {
            "valid": {"rows": 1000, "positives": 31, "roc_auc": 0.9, "f1": 0.5, "single_class": False},
            "test": {"rows": 1000, "positives": 29, "roc_auc": 0.88, "f1": 0.45, "single_class": False},
        },
        "threshold": 0.42,
        "slices": {
            "country": {
                "de": {"rows": 950, "roc_auc": 0.9, "tp": 3},
                "mt": {"rows": 50, "roc_auc": None, "tp": 0},
            }
        },
        "fairness": {
            "country": {
                "demographic_parity_difference": 0.05,
                "equal_opportunity_difference": 0.3,
                "groups": {
                    "de": {"rows": 950, "positives": 28, "selection_rate": 0.04, "true_positive_rate": 0.6},
                    "mt": {"rows": 50, "positives": 1, "selection_rate": 0.09, "true_positive_rate": 0.9},
                },
                "excluded_from_equal_opportunity": [],
            }
        },
    }
    card = cards.build(facts)
    assert kinds(card) == ["small_slice", "fairness_gap"]
    gaps = {f["metric"]: f for f in card["fairness"]}
    assert gaps["equal_opportunity_difference"]["groups"] == {"de": 0.6, "mt": 0.9}
    assert gaps["demographic_parity_difference"]["rows"] == {"de": 950, "mt": 50}
    text = cards.render_markdown(card, {"name": "fraud", "version": 1}, None)
    for fact in (
        "- Rows: 10,000 (train 8,000, valid 1,000, test 1,000)",
        "- Label balance: positive rate 3.10%",
        "- Feature views: txn_stats (version 2)",
        "- Notes: 3 label rows had no features",
        "Decision threshold: 0.42",
        "| metric | valid | test |",
        "| roc_auc | 0.9 | 0.88 |",
        "| slice | rows | roc_auc |",
        "| country=mt | 50 | - |",
        "| country | equal_opportunity_difference | 0.3 | de: 0.6 (n=950), mt: 0.9 (n=50) |",
    ):
        assert fact in text, fact
    assert "| positives |" not in text and "single_class" not in text
