"""A PyTorch CNN served: tritonclient with its defaults against ``mloop serve``, concurrent tensor requests
stacked into one model call, and a deployment on the ONNX runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from mloop import Project
from mloop.serving.http.app import create_app
from tests.serving.http.binary_bodies import binary_request, read_binary
from tests.serving.http.running import mloop_serve

torch = pytest.importorskip("torch")


class DigitsCNN(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(image)).flatten(1))


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, DigitsCNN]]:
    project = Project.open(tmp_path_factory.mktemp("cnn"), env={}, serving={"max_queue_ms": None})
    torch.manual_seed(0)
    module = DigitsCNN().eval()
    project.models.register("cnn", module, input_example=_images(8, 0), task="classification")
    project.deploy("cnn", "cnn", version=1)
    yield project, module
    project.close()


def _probabilities(module: DigitsCNN, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(torch.softmax(module(torch.from_numpy(batch)), dim=1).numpy())


@pytest.mark.slow
def test_tritonclient_with_its_defaults_against_mloop_serve_for_a_cnn(cnn: tuple[Project, DigitsCNN]) -> None:
    import tritonclient.http as triton

    project, module = cnn
    batch = _images(6, 1)
    expected = _probabilities(module, batch)
    with mloop_serve(Path(project.root)) as server:
        client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            meta = client.get_model_metadata("cnn")
            assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
            assert meta["outputs"][0] == {"name": "prediction", "datatype": "FP64", "shape": [-1, 10]}
            for binary in (True, False):
                image = triton.InferInput("image", list(batch.shape), "FP32")
                image.set_data_from_numpy(batch, binary_data=binary)
                got = client.infer("cnn", [image]).as_numpy("prediction")
                assert got is not None and got.shape == (6, 10)
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
                asked = [triton.InferRequestedOutput("3", binary_data=binary)]
                three = client.infer("cnn", [image], outputs=asked).as_numpy("3")
                np.testing.assert_allclose(three, expected[:, 3], rtol=1e-4, atol=1e-6)  # type: ignore[arg-type]
        finally:
            client.close()


@pytest.mark.slow
def test_concurrent_image_requests_are_stacked_into_one_call(cnn: tuple[Project, DigitsCNN]) -> None:
    project, module = cnn
    project.deploy("cnn-batched", "cnn", version=1, options={"max_batch_size": 24, "max_wait_ms": 1000})
    app = create_app(project)
    batches = [_images(3, 10 + i) for i in range(8)]
    labels = {"endpoint": "cnn-batched", "version": "1"}

    def observed(what: str) -> float:
        return REGISTRY.get_sample_value(f"mloop_batch_size_rows_{what}", labels) or 0.0

    calls, rows = observed("count"), observed("sum")

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            requests = [binary_request([("image", "FP32", b)]) for b in batches]
            return list(await asyncio.gather(*(
                client.post("/v2/models/cnn-batched/infer", content=body, headers=headers)
                for body, headers in requests
            )))  # fmt: skip

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    for answer, batch in zip(answers, batches, strict=True):
        (tensor,) = answer.json()["outputs"]
        got = np.reshape(tensor["data"], tensor["shape"])
        np.testing.assert_allclose(got, _probabilities(module, batch), rtol=1e-4, atol=1e-6)
    assert observed("count") - calls == 1 and observed("sum") - rows == 24  # one call of 24 images
    app.state.inference.close()


@pytest.mark.slow
def test_a_deployment_with_the_onnx_runtime_serves_the_export(cnn: tuple[Project, DigitsCNN]) -> None:
    pytest.importorskip("onnxruntime")
    project, module = cnn
    project.models.export("cnn", 1, format="onnx")
    project.deploy("cnn-onnx", "cnn", version=1, runtime="onnx")
    batch = _images(4, 20)
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        live = client.app.state.endpoints.get("cnn-onnx")  # type: ignore[attr-defined]
        assert live.predictors[1].runtime == "onnx" and live.predictors[1].model.flavour.name == "onnx"
        assert client.app.state.endpoints.get("cnn").predictors[1].runtime == "native"  # type: ignore[attr-defined]
        body, headers = binary_request([("image", "FP32", batch)], parameters={"binary_data_output": True})
        response = client.post("/v2/models/cnn-onnx/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        _, arrays = read_binary(response)
        np.testing.assert_allclose(arrays["prediction"], _probabilities(module, batch), rtol=1e-3, atol=1e-5)
        nested = {"rows": [{"image": b.tolist()} for b in batch]}
        v1 = client.post("/v1/endpoints/cnn-onnx/predict", json=nested).json()["predictions"]
        np.testing.assert_allclose(v1, _probabilities(module, batch), rtol=1e-3, atol=1e-5)
