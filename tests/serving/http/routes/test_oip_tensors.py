"""The Open Inference Protocol with tensors: any rank as JSON or as Triton's binary tensor data, the
outputs of a multiclass model, and every bad tensor a 400 naming the input, the expected and the got."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mloop import Project
from tests.serving import images
from tests.serving.conftest import Imaged
from tests.serving.http.binary_bodies import binary_request, read_binary
from tests.serving.http.running import mloop_serve

IMAGE = [-1, *images.SHAPE]


def test_metadata_lists_tensor_inputs_with_their_shape_and_the_multiclass_outputs(imaged: Imaged) -> None:
    meta = imaged.client.get("/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": IMAGE}]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    tri = imaged.client.get("/v2/models/tri").json()
    assert tri["outputs"][0] == {"name": "prediction", "datatype": "FP64", "shape": [-1, 3]}
    assert [o["name"] for o in tri["outputs"][1:]] == ["hi", "lo", "mid"]
    assert "binary_tensor_data" in imaged.client.get("/v2").json()["extensions"]


@pytest.mark.parametrize("nested", [False, True])
def test_a_tensor_of_any_rank_as_json(imaged: Imaged, nested: bool) -> None:
    batch = images.images(3, seed=2)
    data = batch.tolist() if nested else batch.ravel().tolist()
    body = {"inputs": [{"name": "image", "shape": list(batch.shape), "datatype": "FP32", "data": data}]}
    response = imaged.client.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200, response.text
    (tensor,) = response.json()["outputs"]
    assert tensor["shape"] == [3] and tensor["data"] == pytest.approx(imaged.expected(batch))


def test_another_numeric_datatype_is_cast_by_the_signature(imaged: Imaged) -> None:
    batch = (images.images(2, seed=3) > 0.5).astype(np.uint8)
    body, headers = binary_request([("image", "UINT8", batch)])
    response = imaged.client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == pytest.approx(imaged.expected(batch.astype(np.float32)))


def test_binary_in_and_binary_out(imaged: Imaged) -> None:
    batch = images.images(4, seed=4)
    body, headers = binary_request([("image", "FP32", batch)], parameters={"binary_data_output": True})
    response = imaged.client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    header, arrays = read_binary(response)
    assert header["model_name"] == "digits" and header["outputs"][0]["datatype"] == "FP64"
    assert "data" not in header["outputs"][0]
    np.testing.assert_allclose(arrays["prediction"], imaged.expected(batch), rtol=1e-6)
    # the same request asking for JSON output (binary_data false on the output) gets JSON
    body, headers = binary_request(
        [("image", "FP32", batch)], [{"name": "prediction", "parameters": {"binary_data": False}}]
    )
    response = imaged.client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["data"] == pytest.approx(imaged.expected(batch))


def test_a_multiclass_model_answers_the_matrix_and_each_class_by_name(imaged: Imaged) -> None:
    x, _ = images.tabular()
    rows = x.iloc[[1, 15, 25]]
    inputs = [
        {"name": "a", "shape": [3], "datatype": "FP64", "data": rows["a"].tolist()},
        {"name": "b", "shape": [3, 1], "datatype": "FP64", "data": rows[["b"]].to_numpy().tolist()},
        {"name": "s", "shape": [3], "datatype": "BYTES", "data": rows["s"].tolist()},
    ]
    v1 = imaged.client.post("/v1/endpoints/tri/predict", json={"rows": rows.to_dict("records")}).json()
    matrix = np.array(v1["predictions"])
    default = imaged.client.post("/v2/models/tri/infer", json={"inputs": inputs}).json()["outputs"]
    assert [(o["name"], o["shape"]) for o in default] == [("prediction", [3, 3])]
    np.testing.assert_allclose(np.reshape(default[0]["data"], (3, 3)), matrix)
    asked = {"inputs": inputs, "outputs": [{"name": "lo"}, {"name": "prediction"}]}
    lo, whole = imaged.client.post("/v2/models/tri/infer", json=asked).json()["outputs"]
    assert lo["name"] == "lo" and lo["shape"] == [3] and lo["data"] == pytest.approx(matrix[:, 1].tolist())
    assert whole["shape"] == [3, 3]
    unknown = imaged.client.post("/v2/models/tri/infer", json={**asked, "outputs": [{"name": "x"}]})
    assert unknown.status_code == 400 and "'prediction', 'hi', 'lo', 'mid'" in unknown.json()["error"]
    classes = {**asked, "outputs": [{"name": "lo", "parameters": {"classification": 2}}]}
    refused = imaged.client.post("/v2/models/tri/infer", json=classes)
    assert refused.status_code == 400 and "classification extension" in refused.json()["error"]


def _image_json(shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "image", "shape": shape, "datatype": datatype, "data": data}]}


ONE = images.images(1, seed=5)
NAN = ONE.copy()
NAN[0, 0, 3, 3] = np.nan


@pytest.mark.parametrize(
    ("json_body", "tensors", "needles"),
    [
        (_image_json([1, 64], "FP32", ONE.ravel().tolist()), None,
         ["'image'", "expected shape [-1, 1, 8, 8]", "got [1, 64]"]),
        (None, [("image", "FP32", ONE.reshape(1, 1, 4, 16))], ["'image'", "[-1, 1, 8, 8]", "got [1, 1, 4, 16]"]),
        (None, [("image", "BOOL", ONE > 0.5)], ["image", "float32 tensor of shape (1, 8, 8)", "bool elements"]),
        (_image_json([1, 1, 8, 8], "BYTES", ["a"] * 64), None, ["'image'", "datatype BYTES", "numeric"]),
        (_image_json([1, 1, 8, 8], "FP32", [[ONE.ravel().tolist()[:-1]]]), None,
         ["'image'", "holds 64 elements but data has 63"]),
        (None, [("image", "FP32", NAN)], ["image", "NaN or infinite elements in row 0"]),
        (_image_json([1, 1, 8, 8], "FP8", ONE.ravel().tolist()), None, ["'image'", "'FP8' is not one of"]),
        (_image_json([1, 1, 8, 8], "FP32", None), None, ["'image' has no data"]),
    ],
)  # fmt: skip
def test_a_bad_tensor_is_a_400_naming_the_input_the_expected_and_the_got(
    imaged: Imaged, json_body: Any, tensors: Any, needles: list[str]
) -> None:
    if json_body is not None:
        response = imaged.client.post("/v2/models/digits/infer", json=json_body)
    else:
        body, headers = binary_request(tensors)
        response = imaged.client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert all(n in message for n in needles), message


def test_inconsistent_binary_bodies_are_400(imaged: Imaged) -> None:
    body, headers = binary_request([("image", "FP32", ONE)])
    for content, length, needle in [
        (body[:-4], headers["Inference-Header-Content-Length"], "256 bytes but only 252 follow"),
        (body + b"\0" * 4, headers["Inference-Header-Content-Length"], "4 bytes after the last binary input"),
        (body, str(len(body) + 1), f"the body has {len(body):,}"),
    ]:
        response = imaged.client.post(
            "/v2/models/digits/infer", content=content, headers={"Inference-Header-Content-Length": length}
        )
        assert response.status_code == 400 and needle in response.json()["error"], response.text
    # binary data without the header: the body is not JSON
    response = imaged.client.post("/v2/models/digits/infer", content=body)
    assert response.status_code == 400 and "not JSON" in response.json()["error"]


def test_a_body_over_the_size_limit_is_413_binary_or_not(imaged: Imaged) -> None:
    big = np.zeros((13_000, *images.SHAPE), np.float32)  # 13,000 x 256 bytes: 3.3 MB, over the 1 MB default
    body, headers = binary_request([("image", "FP32", big)])
    response = imaged.client.post("/v2/models/digits/infer", content=body, headers=headers)
    assert response.status_code == 413 and "serving.max_body_bytes" in response.text
    fifty = b"{" + b" " * (50 * 1024 * 1024) + b"}"
    assert imaged.client.post("/v2/models/digits/infer", content=fifty).status_code == 413


@pytest.mark.slow
def test_tritonclient_with_its_defaults_against_mloop_serve_for_a_tensor_model(
    tensor_project: tuple[Project, Any],
) -> None:
    import tritonclient.http as triton

    project, model = tensor_project
    batch = images.images(5, seed=6)
    expected = model.predict_proba(images.frame(batch))[:, 1]
    with mloop_serve(Path(project.root)) as server:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            meta = client.get_model_metadata("digits")
            assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": IMAGE}]
            for binary in (True, False):
                image = triton.InferInput("image", list(batch.shape), "FP32")
                image.set_data_from_numpy(batch, binary_data=binary)
                default = client.infer("digits", [image]).as_numpy("prediction")  # binary output asked
                assert default is not None and default.dtype == np.float64
                np.testing.assert_allclose(default, expected, rtol=1e-6)
                asked = [triton.InferRequestedOutput("prediction", binary_data=binary)]
                named = client.infer("digits", [image], outputs=asked).as_numpy("prediction")
                np.testing.assert_allclose(named, expected, rtol=1e-6)  # type: ignore[arg-type]
            wrong = triton.InferInput("image", [1, 64], "FP32")
            wrong.set_data_from_numpy(batch[:1].reshape(1, 64))
            with pytest.raises(triton.InferenceServerException, match=r"expected shape \[-1, 1, 8, 8\]"):
                client.infer("digits", [wrong])
            x, _ = images.tabular()
            inputs = []
            for name, array, datatype in (("a", x["a"].to_numpy(), "FP64"), ("b", x["b"].to_numpy(), "FP64"),
                                          ("s", x["s"].to_numpy(dtype=object), "BYTES")):  # fmt: skip
                tensor = triton.InferInput(name, [len(x)], datatype)
                tensor.set_data_from_numpy(array)
                inputs.append(tensor)
            probabilities = client.infer("tri", inputs).as_numpy("prediction")
            assert probabilities is not None and probabilities.shape == (len(x), 3)
            lo = client.infer("tri", inputs, outputs=[triton.InferRequestedOutput("lo")]).as_numpy("lo")
            np.testing.assert_allclose(lo, probabilities[:, 1])  # type: ignore[arg-type]
        finally:
            client.close()
