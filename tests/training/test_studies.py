"""Where a Ray search keeps its Optuna study: beside mloop's tables, never in their namespace."""

from __future__ import annotations

import optuna
import pytest
from sqlalchemy import create_engine, inspect

from mloop.store import open_metadata_store
from mloop.training.studies import SCHEMA, describe, study_storage


def test_a_study_is_stored_apart_from_mloops_tables_and_both_keep_their_revision(metadata_url: str) -> None:
    store = open_metadata_store(metadata_url)  # mloop's tables, at their head revision
    try:
        revision = store.current_revision()
        storage = study_storage(metadata_url)
        study = optuna.create_study(storage=storage, study_name="mloop-run1", direction="maximize")
        study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.5)

        again = optuna.load_study(study_name="mloop-run1", storage=study_storage(metadata_url))
        assert [t.state for t in again.trials] == [optuna.trial.TrialState.COMPLETE]
        assert store.current_revision() == revision  # Optuna's alembic_version did not touch mloop's
        store.migrate()
        engine = create_engine(store.engine.url)
        try:
            tables = set(inspect(engine).get_table_names())
            assert "runs" in tables and "trials" not in tables  # Optuna's tables are elsewhere
            if engine.dialect.name == "postgresql":
                assert "trials" in inspect(engine).get_table_names(schema=SCHEMA)
                assert describe(metadata_url).endswith(f"(schema {SCHEMA})")
            else:
                assert describe(metadata_url).endswith(".optuna.db")
        finally:
            engine.dispose()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "mysql://db/mloop"])
def test_elsewhere_the_study_stays_in_memory(url: str) -> None:
    assert study_storage(url) is None and describe(url) == "memory"
