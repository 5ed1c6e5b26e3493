"""schemathesis over the OpenAPI document of ``mloop serve``, in process (ASGI): every operation gets
requests drawn from its own schema, valid and invalid, sent with an admin's key; every answer must be no
5xx, a status the document lists for that operation, in a content type it lists, with a body its schema
allows. The examples are bounded and derandomized, so a run is the same run every time.

tests/serving/http/test_fuzz.py keeps the hostile bodies schemathesis does not draw (non-JSON bytes,
huge and non-finite numbers in every position)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mloop import Project
from mloop.serving.http.app import create_app

EXAMPLES = 25  # per operation and mode (valid, invalid)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]  # fmt: skip


@pytest.fixture(scope="module")
def admin_key(trained: Project) -> str:
    trained.users.add("fuzz_admin", ["admin"])
    return trained.keys.issue("fuzz_admin").token


@pytest.fixture(scope="module")
def app(trained: Project) -> Iterator[Any]:
    trained.deploy("fraud", "fraud", version=1)
    with TestClient(create_app(trained), raise_server_exceptions=False) as client:  # runs the lifespan
        yield client.app


@pytest.fixture(scope="module")
def api(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _fuzz(operation: Any, mode: GenerationMode, key: str) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        case.call_and_validate(headers={"authorization": f"Bearer {key}"}, checks=CHECKS)

    check()


@pytest.mark.slow
def test_every_operation_answers_as_documented(api: Any, admin_key: str) -> None:
    # One test over every operation (schemathesis' own pytest parametrization needs subtests, which this
    # pytest's plugin does not offer it): each failing operation and mode is reported, then all of them.
    failures = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, admin_key)
            except Unsatisfiable:  # nothing of it can be made invalid (no parameters, or only a string)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup, with a curl to replay it
                text = "\n".join(line[:400] for line in str(exc).splitlines())
                failures.append(f"{operation.label} ({mode.value}):\n{text}")
    assert not failures, f"{len(failures)} operation(s) answer otherwise than documented:\n\n" + "\n\n".join(
        failures
    )


def test_the_document_says_what_the_routes_answer(api: Any) -> None:
    spec = api.raw_schema
    predict = spec["paths"]["/v1/endpoints/{name}/predict"]["post"]["responses"]
    assert {"401", "403", "404", "413", "422", "429"} <= set(predict)  # it was 200 and 422
    assert set(predict["422"]["content"]["application/json"]["schema"]["required"]) == {
        "error"
    }  # not {detail}
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert "400" in infer and "422" not in infer  # the Open Inference Protocol answers a bad body 400
    assert list(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]  # not JSON
    report = spec["paths"]["/v1/monitoring/{endpoint}/report"]["get"]["responses"]["200"]["content"]
    assert set(report) == {"text/html", "application/json"}  # format=json
    (version,) = [p for p in spec["paths"]["/v2/models/{name}/versions/{version}"]["get"]["parameters"]
                  if p["name"] == "version"]  # fmt: skip
    assert version["schema"]["type"] == "integer"  # it was "integer or null": .../versions/null read as valid


@pytest.mark.parametrize("query", ["since=", "window=", "since=1h&window="])
def test_an_empty_range_is_refused_by_the_schema(app: Any, query: str) -> None:
    response = TestClient(app).get(f"/v1/monitoring/fraud/drift?{query}")  # not `with`: no second lifespan
    assert response.status_code == 422, response.text  # window= was a 400, since= a 422 after parsing
    body = response.json()
    assert body["message"] == "The request is invalid." and body["problems"][0]["field"].startswith("query.")
