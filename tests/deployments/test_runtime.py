"""A deployment chooses the runtime its versions serve with: their own flavour, or their ONNX export."""

from __future__ import annotations

import pytest

from mloop import Project
from mloop.errors import MloopError
from tests.models.cases import case

pytest.importorskip("onnxruntime")


@pytest.fixture
def exported(sqlite_project: Project) -> Project:
    item = case("sklearn-regressor")
    sqlite_project.models.register("price", item.model, input_example=item.frame)
    sqlite_project.models.register("price", item.model, input_example=item.frame)
    sqlite_project.models.export("price", 1, format="onnx")
    return sqlite_project


@pytest.mark.slow
def test_the_runtime_is_recorded_in_the_revision_and_kept_by_rollback_and_undeploy(exported: Project) -> None:
    first = exported.deploy("price", "price", version=1, runtime="onnx")
    assert first.runtime == "onnx" and first.to_dict()["runtime"] == "onnx"
    assert exported.deployments.get("price").runtime == "onnx"
    second = exported.deploy("price", "price", version=2)
    assert second.runtime == "native"
    assert exported.rollback("price").runtime == "onnx"
    assert exported.deployments.undeploy("price").runtime == "onnx"
    assert [d.runtime for d in exported.deployments.history("price")] == ["onnx", "native", "onnx", "onnx"]


def test_every_served_version_needs_the_export(exported: Project) -> None:
    exported.deploy("price", "price", version=1, runtime="onnx")
    before = exported.deployments.stamp()
    with pytest.raises(MloopError, match=r"'price' v2 has none: `mloop models export price:2 --format onnx`"):
        exported.deploy("price", "price", version=2, canary=0.1, runtime="onnx")
    with pytest.raises(MloopError, match="v2 has none"):
        exported.deploy("price", "price", version=1, shadow=2, runtime="onnx")
    assert exported.deployments.stamp() == before
