from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.models.vector_index import VectorIndex
from tests.cli.conftest import Run

pytest.importorskip("faiss")


def test_models_index_shows_the_stored_index_or_how_to_attach_one(cli: Run) -> None:
    with Project.open(cli.root, env={}) as project:  # type: ignore[attr-defined]
        project.models.register("tower", LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]))
        missing = cli("models", "index", "tower:1")
        assert missing.code == 1 and "no vector index; attach one" in missing.err
        index = VectorIndex.build(["a", "b", "c"], np.eye(3, 4, dtype=np.float32), source=("tower", 1))
        stamp = project.models.attach_index("tower", 1, index)
        project.models.add_to_index("tower", 1, ["d"], np.ones((1, 4)))
    shown = cli("models", "index", "tower:1", "--json").json()
    assert (shown["count"], shown["added"], shown["dim"], shown["library"]) == (3, 1, 4, "faiss")
    assert shown["stamp"] != stamp
    table = cli("models", "index", "tower:1")
    assert "3 in the base, 1 added since" in table.out and "4-d, metric ip" in table.out
    assert "vector index" in cli("models", "show", "tower", "1").out
