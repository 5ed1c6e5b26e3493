"""A feature view's ``on_missing``: what online reads answer while the online store cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mloop as ml
from mloop.errors import OnlineStoreUnavailable, SchemaError
from mloop.features.fallback import STORE_UNAVAILABLE
from tests.services import free_port

CUSTOMER = ml.Entity("customer", join_keys=["customer_id"], dtype="int64")
SPENDS = ml.PushSource(
    "spends",
    schema=[ml.Field("customer_id", "int64"), ml.Field("spend", "float64"), ml.Field("country", "string"),
            ml.Field("ts", "timestamp")],
)  # fmt: skip
FIELDS = [ml.Field("spend", "float64"), ml.Field("country", "string")]


def view(name: str, **how: object) -> ml.FeatureView:
    return ml.FeatureView(
        name,
        entities=[CUSTOMER],
        source=SPENDS,
        features=FIELDS,
        **how,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ({"on_missing": "ignore"}, "use 'error'"),
        ({"on_missing": "default", "defaults": {"amount": 0.0}}, r"\['amount'\], which are not its features"),
        ({"defaults": {"spend": 0.0}}, "would never be used. Add on_missing='default'"),
        ({"on_missing": "default", "defaults": {"spend": "zero"}}, "not a float64"),
        ({"on_missing": "default", "defaults": {"country": 3}}, "not a string"),
    ],
)
def test_a_wrong_fallback_is_refused_with_the_fix(how: dict[str, object], says: str) -> None:
    with pytest.raises(SchemaError, match=says):
        view("stats", **how)


def test_only_views_that_declare_a_fallback_change_their_spec() -> None:
    assert "on_missing" not in view("stats").spec()  # views applied before keep their version
    declared = view("stats", on_missing="default", defaults={"spend": 0.0}).spec()
    assert declared["on_missing"] == "default" and declared["defaults"] == {"spend": 0.0}


@pytest.fixture
def unreachable(tmp_path: Path) -> Iterator[ml.Project]:
    """A project whose Redis online store is down (nothing listens on its port)."""
    pytest.importorskip("redis")
    project = ml.Project.open(tmp_path, env={}, online_url=f"redis://127.0.0.1:{free_port()}/0")
    project.apply([CUSTOMER, SPENDS, view("lenient", on_missing="default", defaults={"spend": -1.0}),
                   view("strict")])  # fmt: skip
    yield project
    project.close()


def test_a_view_with_on_missing_default_answers_its_defaults(unreachable: ml.Project) -> None:
    assert unreachable.features.get("lenient").defaults == {"spend": -1.0}  # stored and loaded back
    defaulted: dict[str, str] = {}
    got = unreachable.features.online(
        [{"customer_id": 1}, {"customer_id": 2}], ["lenient:*"], defaulted=defaulted
    )
    assert got == {"customer_id": [1, 2], "spend": [-1.0, -1.0], "country": [None, None]}
    assert defaulted == {"spend": STORE_UNAVAILABLE, "country": STORE_UNAVAILABLE}


def test_a_view_with_on_missing_error_fails_naming_the_store_and_the_fix(unreachable: ml.Project) -> None:
    for features in (["strict:*"], ["lenient:spend", "strict:country"]):  # one strict view fails the read
        with pytest.raises(OnlineStoreUnavailable) as caught:
            unreachable.features.online([{"customer_id": 1}], features, full_feature_names=True)
        message = str(caught.value)
        assert "cannot reach Redis" in message and "redis://127.0.0.1:" in message
        assert "['strict']" in message and "on_missing='default'" in message
