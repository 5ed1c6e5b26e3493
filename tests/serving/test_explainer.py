"""The explaining child: what it answers equals explaining in the server's process; a bad batch costs
only itself; a child whose pipe breaks fails that batch and is replaced at the next one."""

from __future__ import annotations

import pandas as pd
import pytest

from mloop.serving.explainer import ExplainerGone, ExplainerProcess, explain_here
from tests.serving.explained import Explained, explained_fixture  # noqa: F401  (the shared project)


@pytest.mark.slow
def test_the_child_answers_what_the_server_would_and_survives_a_bad_batch(explained: Explained) -> None:
    loaded = explained.project.models.load("fraud", version=1)
    columns = [c.name for c in loaded.signature.inputs]  # type: ignore[union-attr]
    frame = pd.DataFrame({name: [None, None] for name in columns})
    frame["amount_ratio"] = [0.5, 8.0]
    frame["device"] = ["web", "mobile"]
    child = ExplainerProcess(priority="normal")
    try:
        here = explain_here(("fraud", 1), loaded, frame)
        assert child.explain(("fraud", 1), loaded, frame) == here
        with pytest.raises(RuntimeError, match="SignatureError"):  # a row the signature refuses
            child.explain(("fraud", 1), loaded, frame.assign(amount_ratio=["not a number", 1.0]))
        assert child.explain(("fraud", 1), loaded, frame.head(1)) == here[:1]
        assert child._process is not None and child._process.stdout is not None
        first = child._process.pid
        child._process.stdout.close()  # the pipe breaks mid-batch: this batch fails, the next one starts anew
        with pytest.raises(ExplainerGone):
            child.explain(("fraud", 1), loaded, frame)
        assert child.explain(("fraud", 1), loaded, frame) == here  # a new child, sent the model again
        assert child._process is not None and child._process.pid != first
    finally:
        child.close()
