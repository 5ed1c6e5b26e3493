"""A vector index stored with a model version: attached only to the version it was built from, grown by
additions a reader sees without a rebuild, swapped whole by a rebuild, stamped cheaply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop import Project
from mloop.errors import AlreadyExists, MalformedInput, NotFound, PermissionDenied
from mloop.models.vector_index import VectorIndex
from tests.registry.conftest import as_user

pytest.importorskip("faiss")

DIM = 8


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("indexes")
    opened = Project.open(root, env={})
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    for name in ("tower", "tower", "other", "shared"):
        opened.models.register(name, model)
    try:
        yield opened
    finally:
        opened.close()


def items(ids: list[str], seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    return vectors, pd.DataFrame({"category": rng.choice(["books", "music"], len(ids))})


def built(version: int, count: int = 200, model: str = "tower") -> VectorIndex:
    ids = [f"item-{n}" for n in range(count)]
    vectors, attributes = items(ids)
    return VectorIndex.build(ids, vectors, attributes, source=(model, version))


def test_attach_add_read_and_rebuild(project: Project) -> None:
    models = project.models
    assert models.index_stamp("tower", 1) is None
    first = models.attach_index("tower", 1, built(1))
    assert models.index_stamp("tower", 1) == first
    assert len(models.index("tower", 1)) == 200

    target = np.full(DIM, 4.0, dtype=np.float32)
    added = models.add_to_index("tower", 1, ["new-1", "item-3"], np.stack([target, target * 0.9]),
                                pd.DataFrame({"category": ["books", "books"]}))  # fmt: skip
    assert added != first and models.index_stamp("tower", 1) == added
    served = models.index("tower", 1)  # base + the addition, no rebuild
    assert len(served) == 201  # item-3 was replaced, not duplicated
    assert served.search(target, 2, where={"category": "books"})[0].ids.tolist() == ["new-1", "item-3"]

    info = models.index_info("tower", 1)
    assert (info["dim"], info["library"], info["count"], info["added"], info["additions"]) == (
        DIM,
        "faiss",
        200,
        2,
        1,
    )

    rebuilt = models.rebuild_index("tower", 1, built(1, count=50))
    assert rebuilt not in (first, added)
    after = models.index("tower", 1)  # the new base, without the old additions
    assert len(after) == 50 and "new-1" not in after.ids.tolist()
    assert project.audit.events(action="models.index.rebuild")[-1].payload["count"] == 50


def test_an_index_from_another_version_is_refused(project: Project) -> None:
    with pytest.raises(
        MalformedInput,
        match="built from tower v1, so it cannot serve with tower v2: build it from tower v2's item tower",
    ):
        project.models.attach_index("tower", 2, built(1))
    with pytest.raises(MalformedInput, match="built from no model version"):
        project.models.attach_index("tower", 2, VectorIndex.build([1], np.ones((1, DIM))))
    with pytest.raises(NotFound, match="version 9|v9|9"):
        project.models.attach_index("tower", 9, built(9))
    assert project.models.index_stamp("tower", 2) is None


def test_attach_twice_and_missing_index_say_what_to_do(project: Project) -> None:
    project.models.attach_index("other", 1, built(1, 20, model="other"))
    with pytest.raises(AlreadyExists, match="rebuild_index"):
        project.models.attach_index("other", 1, built(1, 20, model="other"))
    with pytest.raises(NotFound, match="no vector index; attach one"):
        project.models.index("tower", 2)
    with pytest.raises(NotFound, match="no vector index"):
        project.models.rebuild_index("tower", 2, built(2))


def test_bad_additions_are_refused_before_anything_is_stored(project: Project) -> None:
    project.models.attach_index("tower", 2, built(2, 30))
    stamp = project.models.index_stamp("tower", 2)
    with pytest.raises(MalformedInput, match="have 4 dimensions.*holds 8-d"):
        project.models.add_to_index("tower", 2, ["x"], np.ones((1, 4)))
    with pytest.raises(MalformedInput, match="NaN"):
        project.models.add_to_index("tower", 2, ["x"], np.full((1, DIM), np.nan))
    with pytest.raises(MalformedInput, match="str ids; got int ids"):
        project.models.add_to_index("tower", 2, [5], np.ones((1, DIM)))
    assert project.models.index_stamp("tower", 2) == stamp


def test_a_reader_cannot_change_an_index(project: Project, tmp_path: Path) -> None:
    project.models.attach_index("shared", 1, built(1, 20, model="shared"))
    reader = as_user(project, "reader-idx", "auditor")
    assert len(reader.models.index("shared", 1)) == 20
    with pytest.raises(PermissionDenied):
        reader.models.add_to_index("shared", 1, ["x"], np.ones((1, DIM)))
    with pytest.raises(PermissionDenied):
        reader.models.rebuild_index("shared", 1, built(1, 5, model="shared"))
    assert len(project.models.index("shared", 1)) == 20
