"""Every route that takes a JSON body reads it as JSON whatever the ``Content-Type`` says (``curl -d``
sends a form type, many clients send none), and a body that is not JSON is answered so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop import Project
from mloop.serving.http.app import create_app

# One valid body per route that takes one; the answers are errors about the project (nothing is
# deployed), which the server can only give once it has read the body.
SAMPLES: dict[str, dict[str, Any]] = {
    "/v1/features/online": {"features": ["nope:x"], "entities": {"customer_id": [1]}},
    "/v1/features/push": {"push_source": "nope", "rows": [{"customer_id": 1}]},
    "/v1/feedback": {"request_id": "abc", "label": 1},
    "/v1/endpoints/{name}/predict": {"rows": [{"amount": 1.0}]},
    "/v1/endpoints/{name}/explain": {"rows": [{"amount": 1.0}], "top_k": 3},
    "/v1/endpoints/{name}/counterfactual": {"rows": [{"amount": 1.0}]},
    "/v2/models/{name}/infer": {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
    "/v2/models/{name}/versions/{version}/infer": {
        "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]
    },
}
CURL_FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends
NOT_JSON = {None, CURL_FORM, "text/plain", "text/plain; charset=utf-8", "application/octet-stream"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    project = Project.open(tmp_path_factory.mktemp("bodies"), env={})
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client
    project.close()


def _url(path: str) -> str:
    return path.replace("{name}", "fraud").replace("{version}", "1")


def _post(client: TestClient, path: str, content: bytes, content_type: str | None, **headers: str) -> Any:
    if content_type is not None:
        headers["content-type"] = content_type
    return client.post(_url(path), content=content, headers=headers)


def test_the_samples_cover_every_route_with_a_body(client: TestClient) -> None:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    with_body = {path for path, ops in paths.items() if any("requestBody" in op for op in ops.values())}
    assert with_body == set(SAMPLES), "a new route with a body: add a sample body to SAMPLES"


@pytest.mark.parametrize("path", SAMPLES)
def test_a_json_body_is_read_as_json_whatever_the_content_type(client: TestClient, path: str) -> None:
    content = json.dumps(SAMPLES[path]).encode()
    reference = _post(client, path, content, "application/json")
    assert "ValidationError" not in reference.text and "invalid" not in reference.text, reference.text
    for content_type in NOT_JSON:
        answer = _post(client, path, content, content_type)
        assert (answer.status_code, answer.json()) == (reference.status_code, reference.json()), content_type


@pytest.mark.parametrize("path", SAMPLES)
@pytest.mark.parametrize("content_type", [CURL_FORM, "application/json", None])
def test_a_body_that_is_not_json_is_answered_so(client: TestClient, path: str, content_type: str) -> None:
    answer = _post(client, path, b"request_id=abc&label=1", content_type)
    assert answer.status_code == (400 if path.startswith("/v2/") else 422)
    message = answer.json()["error" if path.startswith("/v2/") else "message"]
    assert message.startswith("The body is not JSON: ") and message.endswith("send a JSON object.")


@settings(max_examples=25, deadline=None)
@given(content_type=st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,20}", fullmatch=True))
def test_feedback_reads_json_under_any_content_type(client: TestClient, content_type: str) -> None:
    answer = _post(client, "/v1/feedback", b'{"request_id": "abc", "label": true}', content_type)
    assert answer.status_code == 200 and answer.json() == {"accepted": 0, "unknown": ["abc"]}


def test_a_page_of_another_origin_without_a_key_cannot_send_a_form_as_json(client: TestClient) -> None:
    # A browser sends text/plain or a form cross-origin without asking (no CORS preflight): reading it as
    # JSON would let any web page act as the local admin of a server on localhost.
    body = b'{"request_id": "abc", "label": 1}'
    other = _post(client, "/v1/feedback", body, "text/plain", origin="https://example.com")
    assert other.status_code == 403 and "another origin (https://example.com)" in other.json()["message"]
    fetch = _post(client, "/v1/feedback", body, None, **{"sec-fetch-site": "same-site"})
    assert fetch.status_code == 403
    own_page = _post(client, "/v1/feedback", body, "text/plain", origin="http://testserver")
    assert own_page.status_code == 200  # /docs of this server
    keyed = _post(client, "/v1/feedback", body, "text/plain", origin="https://example.com",
                  authorization="Bearer mlk_000000000000_nope-nope-nope-nope-nope")  # fmt: skip
    assert keyed.status_code == 401  # read as JSON; the key is then checked (and unknown)


@pytest.mark.parametrize(
    "path", ["/v1/feedback", "/v1/features/online", "/v1/features/push", "/v2/models/x/infer"]
)
def test_a_body_nested_too_deeply_is_not_json_in_the_documented_shape(client: TestClient, path: str) -> None:
    """Issue 17, item 11: JSON nested 1,000 deep was FastAPI's 400 {"detail": ...}, not the documented
    422 body (400 {"error"} on the Open Inference Protocol)."""
    deep = "[" * 1_000 + "]" * 1_000
    answer = _post(client, path, f'{{"a": {deep}}}'.encode(), "application/json")
    oip = path.startswith("/v2/")
    assert answer.status_code == (400 if oip else 422)
    message = answer.json()["error" if oip else "message"]
    assert (
        message
        == "The body is not JSON: nested too deeply (arrays or objects inside each other); send a JSON object."
    )
