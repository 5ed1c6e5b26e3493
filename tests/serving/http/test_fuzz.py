"""The server never answers 500 to client input: every route of the OpenAPI schema gets bodies drawn from
its own request schema (the right shapes with hostile values: huge and non-finite numbers, wrong types,
odd strings) and arbitrary JSON or bytes.

(hypothesis-jsonschema would draw the schema bodies, but its 0.23 release breaks on this Hypothesis; the
small walker below covers what FastAPI's schemas use: $ref, anyOf, object, array, scalars.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import Served

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
SEGMENT = st.sampled_from(["fraud", "nowhere", "1", "0", "-1", "99999999999999999999", "%00", "a b", "v1"])


def from_schema(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``schema``'s shape, with a share of hostile scalars in every position."""
    if not isinstance(schema, dict) or depth > 4:
        return JSON
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return st.one_of([from_schema(o, depth + 1) for o in options])
    kind = schema.get("type")
    hostile = JSON | st.sampled_from([float("inf"), float("nan"), 10**30, -1, "", "\x00", True])
    if kind == "object":
        props = {k: from_schema(v, depth + 1) for k, v in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        values = from_schema(extra, depth + 1) if isinstance(extra, dict) else JSON
        return st.fixed_dictionaries({}, optional=props) | st.dictionaries(
            st.text(max_size=12), values, max_size=4
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=4) | hostile
    scalar = {"string": st.text(max_size=20), "integer": st.integers(-(2**64), 2**64),
              "number": st.floats(), "boolean": st.booleans(), "null": st.none()}.get(kind, JSON)  # fmt: skip
    return scalar | hostile


def _resolve(schema: Any, components: dict[str, Any]) -> Any:
    """The schema with its ``#/components/schemas`` references inlined (hypothesis-jsonschema needs that)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _resolve(components[schema["$ref"].rsplit("/", 1)[1]], components)
        return {k: _resolve(v, components) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, components) for v in schema]
    return schema


def _operations(served: Served) -> list[tuple[str, str, Any]]:
    spec = served.client.app.openapi()  # type: ignore[attr-defined]
    components = spec.get("components", {}).get("schemas", {})
    out = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            out.append((method.upper(), path, _resolve(body, components) if body else None))
    return out


def _fill(path: str, segments: list[str]) -> str:
    parts, i = [], 0
    for part in path.split("/"):
        if part.startswith("{"):
            parts.append(segments[i % len(segments)])
            i += 1
        else:
            parts.append(part)
    return "/".join(parts)


@pytest.mark.slow
def test_no_route_answers_500(served: Served) -> None:
    operations = _operations(served)
    assert any(p == "/v1/endpoints/{name}/predict" for _, p, _ in operations)

    @st.composite
    def requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
        method, path, schema = draw(st.sampled_from(operations))
        url = _fill(path, draw(st.lists(SEGMENT, min_size=1, max_size=4)))
        kind = draw(st.sampled_from(["schema", "json", "bytes"] if schema else ["json", "bytes"]))
        if kind == "schema":
            body = json.dumps(draw(from_schema(schema)), allow_nan=True).encode()
        elif kind == "json":
            body = json.dumps(draw(JSON), allow_nan=True).encode()
        else:
            body = draw(st.binary(max_size=200))
        return method, url, body

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(requests())
    def check(request: tuple[str, str, bytes]) -> None:
        method, url, body = request
        kwargs: dict[str, Any] = {}
        if method in ("POST", "PUT", "PATCH"):
            kwargs = {"content": body, "headers": {"content-type": "application/json"}}
        response = served.client.request(method, url, **kwargs)
        assert response.status_code < 500, (method, url, body[:300], response.text[:500])
        if response.status_code >= 400:
            assert "Traceback" not in response.text

    check()


@pytest.mark.parametrize(
    "body",
    [b'{"rows": [{"customer_id": 1e999}]}', b'{"rows": [{"customer_id": NaN}]}', b'{"entities": {"customer_id": []}}', b'{"rows": [{}]}'],
)  # fmt: skip
def test_hostile_values_are_4xx(served: Served, body: bytes) -> None:
    response = served.client.post("/v1/endpoints/fraud/predict", content=body,
                                  headers={"content-type": "application/json"})  # fmt: skip
    assert 400 <= response.status_code < 500, response.text
