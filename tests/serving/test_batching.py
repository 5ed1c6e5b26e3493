"""Dynamic batching and the response cache, through the served app."""

from __future__ import annotations

import asyncio
import operator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mloop.models.signature import ColumnSpec, Signature
from mloop.serving.http.app import create_app
from tests.serving import images
from tests.serving.conftest import Imaged, Served
from tests.serving.http.binary_bodies import binary_request


def _means(column: pd.Series) -> np.ndarray:
    """Each sequence's mean, as one feature; like a sequence model, it stacks its batch first, so the
    sequences of one call must have one length."""
    return np.stack(column.to_numpy()).mean(axis=1, keepdims=True)


def _sum(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _concurrently(app: Any, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post("/v1/endpoints/batched/predict", json=b) for b in bodies))


@pytest.mark.slow
def test_concurrent_requests_share_model_calls_and_get_their_own_answers(served: Served) -> None:
    project = served.project
    project.deploy("batched", "fraud", version=1, options={"max_batch_size": 64, "max_wait_ms": 50})
    app = create_app(project)
    rows = [served.row(i) for i in range(40)]
    alone = [served.client.post("/v1/endpoints/fraud/predict", json={"rows": [r]}).json()["predictions"][0]
             for r in rows]  # fmt: skip
    calls = _sum("mloop_batch_size_rows_count", endpoint="batched", version="1")
    batched_rows = _sum("mloop_batch_size_rows_sum", endpoint="batched", version="1")
    answers = asyncio.run(_concurrently(app, [{"rows": [r]} for r in rows]))
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["predictions"][0] for a in answers] == alone
    assert len({a.json()["request_id"] for a in answers}) == 40
    made = _sum("mloop_batch_size_rows_count", endpoint="batched", version="1") - calls
    assert _sum("mloop_batch_size_rows_sum", endpoint="batched", version="1") - batched_rows == 40
    assert made < 40  # grouped: fewer model calls than requests
    app.state.inference.close()


def test_one_bad_request_in_a_batch_fails_alone(served: Served) -> None:
    served.project.deploy("batched", "fraud", version=1, options={"max_batch_size": 64, "max_wait_ms": 50})
    app = create_app(served.project)
    bodies: list[dict[str, Any]] = [{"rows": [served.row(i)]} for i in range(8)]
    bodies[3] = {"rows": [{"customer_id": 1, "distance_km": "far"}]}
    answers = asyncio.run(_concurrently(app, bodies))
    assert [a.status_code for a in answers] == [200] * 3 + [422] + [200] * 4
    assert answers[3].json()["problems"][0]["field"] == "distance_km"
    app.state.inference.close()


def test_the_cache_answers_repeats_and_empties_on_a_new_revision(served: Served) -> None:
    project = served.project
    project.deploy("fraud", "fraud", version=1, options={"cache_size": 100})
    served.refresh()
    body = {"rows": [served.row(5)]}
    hits = _sum("mloop_cache_lookups_total", endpoint="fraud", result="hit")
    first = served.client.post("/v1/endpoints/fraud/predict", json=body).json()
    second = served.client.post("/v1/endpoints/fraud/predict", json=body).json()
    assert second["predictions"] == first["predictions"] and second["request_id"] != first["request_id"]
    assert _sum("mloop_cache_lookups_total", endpoint="fraud", result="hit") == hits + 1
    project.deploy("fraud", "fraud", version=2, options={"cache_size": 100})
    served.refresh()
    third = served.client.post("/v1/endpoints/fraud/predict", json=body).json()
    assert third["version"] == 2
    assert _sum("mloop_cache_lookups_total", endpoint="fraud", result="hit") == hits + 1  # a miss


def test_bad_deployment_options_are_refused(served: Served) -> None:
    import pytest

    from mloop.errors import MloopError

    with pytest.raises(MloopError, match="Unknown deployment option 'batch'"):
        served.project.deploy("fraud", "fraud", version=1, options={"batch": 3})
    with pytest.raises(MloopError, match="max_batch_size must be an integer from 1"):
        served.project.deploy("fraud", "fraud", version=1, options={"max_batch_size": 0})


def test_tensor_requests_are_grouped_into_one_model_call(imaged: Imaged) -> None:
    """Ten requests of two images each (five OIP binary, five v1 nested lists) make one group of 20 rows:
    the group starts when it holds max_batch_size rows, long before max_wait_ms."""
    project = imaged.project
    project.deploy("digits-batched", "digits", version=1, options={"max_batch_size": 20, "max_wait_ms": 1000})
    app = create_app(project)
    batches = [images.images(2, seed=10 + i) for i in range(10)]
    labels = {"endpoint": "digits-batched", "version": "1"}
    calls, rows = _sum("mloop_batch_size_rows_count", **labels), _sum("mloop_batch_size_rows_sum", **labels)

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            sent = []
            for i, batch in enumerate(batches):
                if i % 2:
                    body, headers = binary_request([("image", "FP32", batch)])
                    sent.append(client.post("/v2/models/digits-batched/infer", content=body, headers=headers))
                else:
                    rows = [{"image": a.tolist()} for a in batch]
                    sent.append(client.post("/v1/endpoints/digits-batched/predict", json={"rows": rows}))
            return list(await asyncio.gather(*sent))

    answers = asyncio.run(send_all())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    for i, (answer, batch) in enumerate(zip(answers, batches, strict=True)):
        got = answer.json()["outputs"][0]["data"] if i % 2 else answer.json()["predictions"]
        # float32: a batch of 20 rows and one of 2 go through different BLAS kernels and round differently
        # in the last bits (1.4e-6 relative seen), so equal to float32 precision, not to the bit
        assert got == pytest.approx(imaged.expected(batch), rel=1e-5, abs=1e-7)
    assert _sum("mloop_batch_size_rows_count", **labels) - calls == 1
    assert _sum("mloop_batch_size_rows_sum", **labels) - rows == 20
    app.state.inference.close()


def test_sequences_of_different_lengths_in_one_group_are_answered_request_by_request(imaged: Imaged) -> None:
    """Two requests whose sequences cannot be stacked together (lengths 3 and 5) fail as a group; each is
    retried alone and both get their answer."""
    project = imaged.project
    x = pd.DataFrame({"seq": [np.full(4, k, dtype=np.float32) for k in range(4)]})
    model = make_pipeline(
        FunctionTransformer(operator.itemgetter("seq")),
        FunctionTransformer(_means),
        LinearRegression(),
    ).fit(x, [0.0, 1.0, 2.0, 3.0])  # the prediction is the sequence's mean
    signature = Signature([ColumnSpec("seq", "float32", shape=(-1,))], [ColumnSpec("prediction", "float64")])
    version = project.models.register("seq", model, signature=signature)
    project.deploy("seq", "seq", version=version.version, options={"max_batch_size": 2, "max_wait_ms": 1000})
    app = create_app(project)
    bodies = [{"rows": [{"seq": list(range(n))}]} for n in (3, 5)]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(
                await asyncio.gather(*(client.post("/v1/endpoints/seq/predict", json=b) for b in bodies))
            )

    calls = _sum("mloop_batch_size_rows_count", endpoint="seq", version=str(version.version))
    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["predictions"][0] for a in answers] == pytest.approx([1.0, 2.0])
    assert _sum("mloop_batch_size_rows_count", endpoint="seq", version=str(version.version)) - calls == 1
    app.state.inference.close()
