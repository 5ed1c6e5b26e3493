"""Request rows: nested arrays only where the signature has a tensor, checked and named by it."""

from __future__ import annotations

from typing import Any

import pytest

from mloop.errors import MalformedInput
from mloop.serving.predictor import check_rows
from tests.serving import images
from tests.serving.conftest import Imaged


def test_nested_lists_pass_only_for_tensor_fields() -> None:
    check_rows([{"image": [[1.0, 2.0]]}], {"image"})
    with pytest.raises(MalformedInput, match="field 'amount': nested list values are not features"):
        check_rows([{"image": [[1.0]], "amount": [1.0]}], {"image"})
    with pytest.raises(MalformedInput, match="nested dict"):
        check_rows([{"image": {"a": 1}}], {"image"})


def test_v1_takes_nested_arrays_for_a_tensor_input(imaged: Imaged) -> None:
    batch = images.images(3, seed=7)
    body = {"rows": [{"image": a.tolist()} for a in batch]}
    response = imaged.client.post("/v1/endpoints/digits/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(imaged.expected(batch))
    one = {"entities": {}, "features": {"image": batch[0].tolist()}}
    assert imaged.client.post("/v1/endpoints/digits/predict", json=one).json()[
        "predictions"
    ] == pytest.approx(imaged.expected(batch[:1]))


def _image(value: Any) -> dict[str, Any]:
    return {"rows": [{"image": value}]}


GOOD = images.images(1, seed=8)[0].tolist()


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (_image(GOOD[0]), "shape (8, 8) in row 0"),
        (_image([[row[:-1] if i == 3 else row for i, row in enumerate(GOOD[0])]]), "a ragged nested list"),
        (_image([[[True] * 8] * 8]), "bool elements in row 0 (expected float32)"),
        (_image([[["x"] * 8] * 8]), "text elements"),
        (_image([[[1e39] * 8] * 8]), "values outside the float32 range"),
    ],
)
def test_a_bad_tensor_is_a_422_naming_the_field_expected_and_got(
    imaged: Imaged, body: dict, got: str
) -> None:
    response = imaged.client.post("/v1/endpoints/digits/predict", json=body)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "image" and problem["expected"] == "float32 tensor of shape (1, 8, 8)"
    assert got in problem["got"]


def test_a_nested_list_for_a_scalar_field_is_still_refused(imaged: Imaged) -> None:
    x, _ = images.tabular()
    row = {**x.iloc[0].to_dict(), "a": [1.0, 2.0]}
    response = imaged.client.post("/v1/endpoints/tri/predict", json={"rows": [row]})
    assert response.status_code == 422 and "field 'a': nested list values are not features" in response.text
