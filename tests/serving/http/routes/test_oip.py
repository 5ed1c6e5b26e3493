"""The Open Inference Protocol (KServe v2): the shapes its clients rely on, over the same endpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from mloop import Project
from mloop.errors import MalformedInput
from mloop.serving.http import oip
from mloop.serving.http.app import create_app
from tests.serving.conftest import Served
from tests.serving.http.running import mloop_serve


def test_server_and_model_metadata(served: Served) -> None:
    server = served.client.get("/v2").json()
    assert server["name"] == "mloop" and isinstance(server["extensions"], list)
    meta = served.client.get("/v2/models/fraud").json()
    assert meta["name"] == "fraud" and meta["versions"] == ["1"] and meta["platform"] == "mloop"
    inputs = {t["name"]: t for t in meta["inputs"]}
    assert inputs["amount_mean_7d"] == {"name": "amount_mean_7d", "datatype": "FP64", "shape": [-1]}
    assert inputs["device"]["datatype"] == "BYTES"
    assert meta["outputs"][0]["datatype"] == "FP64"
    assert served.client.get("/v2/models/fraud/versions/1").json()["parameters"]["version"] == 1
    assert served.client.get("/v2/models/fraud/ready").json() == {"name": "fraud", "ready": True}
    assert served.client.get("/v2/models/nope/ready").json() == {"name": "nope", "ready": False}
    assert served.client.get("/v2/health/live").json() == {"live": True}


def test_infer_with_one_tensor_per_column_looks_up_features(served: Served) -> None:
    rows = [served.row(i) for i in range(4)]
    body = {
        "id": "req-1",
        "inputs": [
            {
                "name": "customer_id",
                "shape": [4],
                "datatype": "INT64",
                "data": [r["customer_id"] for r in rows],
            },
            {"name": "amount", "shape": [4, 1], "datatype": "FP64", "data": [[r["amount"]] for r in rows]},
        ],
    }
    response = served.client.post("/v2/models/fraud/infer", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model_name"] == "fraud" and out["model_version"] == "1" and out["id"] == "req-1"
    (tensor,) = out["outputs"]
    assert tensor["name"] == "prediction" and tensor["datatype"] == "FP64" and tensor["shape"] == [4]
    v1 = served.client.post("/v1/endpoints/fraud/predict", json={"rows": rows}).json()["predictions"]
    assert tensor["data"] == pytest.approx(v1)


def test_infer_with_one_matrix_of_every_input_needs_no_lookup(served: Served) -> None:
    meta = served.client.get("/v2/models/fraud").json()
    names = [t["name"] for t in meta["inputs"]]
    values = {"device": "web"}
    row = [values.get(n, 1.0) for n in names]
    body = {"inputs": [{"name": "input-0", "shape": [2, len(names)], "datatype": "BYTES", "data": row + row}]}
    # a mixed row is not one datatype: BYTES refuses the numbers, with a 400 in the protocol's error shape
    refused = served.client.post("/v2/models/fraud/versions/1/infer", json=body)
    assert refused.status_code == 400 and set(refused.json()) == {"error"}
    numeric = [n for n in names if n != "device"]
    body = {"inputs": [
        {"name": "m", "shape": [1, len(numeric)], "datatype": "FP64", "data": [1.0] * len(numeric)},
        {"name": "device", "shape": [1], "datatype": "BYTES", "data": ["web"]},
    ]}  # fmt: skip
    # several columns in one tensor must be exactly the signature's inputs
    assert served.client.post("/v2/models/fraud/infer", json=body).status_code == 400


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        ({"name": "amount", "shape": [2], "datatype": "FP64", "data": [1.0]}, "holds 2 elements"),
        ({"name": "amount", "shape": [1], "datatype": "FP128", "data": [1.0]}, "not one of"),
        ({"name": "amount", "shape": [1], "datatype": "INT64", "data": [1.5]}, "not a INT64"),
        ({"name": "amount", "shape": [-1], "datatype": "FP64", "data": [1.0]}, "non-negative"),
    ],
)
def test_bad_tensors_are_400_with_the_reason(served: Served, tensor: dict, needle: str) -> None:
    response = served.client.post("/v2/models/fraud/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]


def test_unknown_models_and_versions(served: Served) -> None:
    body = {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    missing = served.client.post("/v2/models/nope/infer", json=body)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    version = served.client.post("/v2/models/fraud/versions/7/infer", json=body)
    assert version.status_code == 400 and "does not serve version 7" in version.json()["error"]
    assert served.client.post("/v2/models/fraud/infer", json={"inputs": []}).status_code == 400


@given(st.integers(1, 6), st.integers(2, 4))
def test_a_matrix_splits_into_the_signature_columns_row_major(n: int, k: int) -> None:
    columns = [f"c{j}" for j in range(k)]
    data = list(range(n * k))
    rows = oip.tensors_to_rows([{"name": "x", "shape": [n, k], "datatype": "INT64", "data": data}], columns)
    assert rows == [{c: i * k + j for j, c in enumerate(columns)} for i in range(n)]
    nested = [data[i * k : (i + 1) * k] for i in range(n)]
    assert (
        oip.tensors_to_rows([{"name": "x", "shape": [n, k], "datatype": "INT64", "data": nested}], columns)
        == rows
    )


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=8))
def test_a_column_tensor_is_one_field_per_row(values: list[float]) -> None:
    n = len(values)
    for shape, data in (([n], values), ([n, 1], [[v] for v in values])):
        rows = oip.tensors_to_rows(
            [{"name": "amount", "shape": shape, "datatype": "FP64", "data": data}], ["a", "b"]
        )
        assert rows == [{"amount": v} for v in values]


def test_outputs_of_a_multiclass_model_are_a_matrix() -> None:
    (tensor,), (array,) = oip.outputs([[0.1, 0.9], [0.7, 0.3]], ["no", "yes"], None)
    assert tensor["name"] == "prediction" and tensor["shape"] == [2, 2]
    assert tensor["data"] == [0.1, 0.9, 0.7, 0.3] and array is None
    (column,), (raw,) = oip.outputs([[0.1, 0.9], [0.7, 0.3]], ["no", "yes"], [("yes", {"binary_data": True})])
    assert column == {"name": "yes", "datatype": "FP64", "shape": [2]} and raw.tolist() == [0.9, 0.3]
    with pytest.raises(MalformedInput, match="no output 'score'"):
        oip.outputs([0.1], ["prediction"], [("score", {})])


@pytest.mark.slow
def test_the_standard_client_tritonclient_http_against_mloop_serve(trained: Project) -> None:
    """tritonclient with its defaults (binary tensors in and out, no outputs named, no Content-Type) and
    with JSON tensors (``binary_data=False``), against a real ``mloop serve``."""
    import numpy as np
    import tritonclient.http as triton

    trained.deploy("fraud", "fraud", version=1)
    frame = pd.read_parquet(Path(trained.root) / "txns.parquet").head(5)
    with mloop_serve(Path(trained.root)) as server:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_model_ready("fraud")
            assert client.get_server_metadata()["name"] == "mloop"
            model = client.get_model_metadata("fraud")
            assert (
                model["name"] == "fraud"
                and {"name": "device", "datatype": "BYTES", "shape": [-1]} in model["inputs"]
            )
            rows = [
                {"customer_id": int(r.customer_id), "amount": float(r.amount)} for r in frame.itertuples()
            ]
            v1 = httpx.post(f"{server.url}/v1/endpoints/fraud/predict", json={"rows": rows}).json()
            for binary in (True, False):
                ids = triton.InferInput("customer_id", [len(frame)], "INT64")
                ids.set_data_from_numpy(frame.customer_id.to_numpy(np.int64), binary_data=binary)
                amounts = triton.InferInput("amount", [len(frame), 1], "FP64")
                amounts.set_data_from_numpy(frame[["amount"]].to_numpy(np.float64), binary_data=binary)
                asked = [triton.InferRequestedOutput("prediction", binary_data=binary)]
                result = client.infer("fraud", [ids, amounts], outputs=asked, request_id="t-1")
                got = result.as_numpy("prediction")
                assert got is not None and got.tolist() == pytest.approx(v1["predictions"])
                assert result.get_response()["id"] == "t-1"
                # no outputs named: the client asks for binary outputs
                plain = client.infer("fraud", [ids, amounts], model_version="1").as_numpy("prediction")
                assert plain is not None and plain.tolist() == pytest.approx(v1["predictions"])
            text = triton.InferInput("device", [len(frame)], "BYTES")
            text.set_data_from_numpy(np.array(["web"] * len(frame), dtype=object))  # BYTES, binary
            assert client.infer("fraud", [ids, amounts, text]).as_numpy("prediction") is not None
        finally:
            client.close()


def test_infer_authorizes_before_it_says_what_is_served(served: Served) -> None:
    """Issue 17, item 5: a user with no predict permission learned the live endpoints from a 404."""
    project = served.project
    project.users.add("oip-nobody", ["auditor"])
    token = project.keys.issue("oip-nobody").token
    body = {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]}]}
    strict = Project.open(project.root, env={"MLOOP_LOCAL_ADMIN": "false"}, actor=project.actor)
    with strict, TestClient(create_app(strict), raise_server_exceptions=False) as client:
        for name in ("nope", "fraud"):
            response = client.post(
                f"/v2/models/{name}/infer", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 403, response.text
            assert "fraud" not in response.text.replace(f"endpoint:{name}", "")


@pytest.mark.parametrize("path", ["/v2/models/fraud/infer", "/v2/models/fraud/versions/1/infer"])
def test_infer_refuses_a_join_key_of_the_wrong_type(served: Served, path: str) -> None:
    body = {"inputs": [{"name": "customer_id", "shape": [1], "datatype": "BYTES", "data": ["abc"]},
                       {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}]}  # fmt: skip
    response = served.client.post(path, json=body)
    assert response.status_code == 400, response.text  # the protocol's answer to an invalid request
    assert "Join key 'customer_id' must be an integer (int64), got string 'abc'" in response.json()["error"]
