"""Scoring results as GeoJSON: a valid RFC 7946 FeatureCollection (longitude first, rings closed and wound by
the right-hand rule), one feature per field with its newest prediction; bad places are refused by row."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mloop.errors import SchemaError
from mloop.serving.scoring import export_geojson

DAYS = pd.to_datetime(["2026-06-01", "2026-06-02"], utc=True)


def _scores() -> pd.DataFrame:
    """Two days of predictions for three fields in Bavaria (lon about 11, lat about 48)."""
    return pd.DataFrame({
        "field_id": ["f1", "f2", "f3", "f1", "f2", "f3"],
        "lon": [11.1, 11.2, 11.3] * 2, "lat": [48.1, 48.2, 48.3] * 2,
        "prediction": [0.1, 0.2, 0.3, 0.4, float("nan"), 0.6],
        "model": "yield", "model_version": [3, 3, 3, 4, 4, 4],
        "features_as_of": [DAYS[0]] * 3 + [DAYS[1]] * 3,
        "crop": ["wheat", "maize", "barley"] * 2,
        "boundary": ["POLYGON ((11 48, 11 48.01, 11.01 48.01, 11.01 48, 11 48))"] * 6,  # clockwise in WKT
    })  # fmt: skip


def _read(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())
    assert body["type"] == "FeatureCollection" and isinstance(body["features"], list)
    for feature in body["features"]:
        assert feature["type"] == "Feature" and set(feature) >= {"geometry", "properties"}
    return body


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def test_points_put_longitude_first_with_the_newest_prediction_per_field(tmp_path: Path) -> None:
    report = export_geojson(_scores(), tmp_path / "f.geojson", lon="lon", lat="lat", id="field_id",
                            properties=["crop"])  # fmt: skip
    body = _read(tmp_path / "f.geojson")
    assert report.features == 3 and [f["id"] for f in body["features"]] == ["f1", "f2", "f3"]
    first = body["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [11.1, 48.1]}  # [lon, lat], not [lat, lon]
    assert first["properties"] == {"field_id": "f1", "prediction": 0.4, "model": "yield", "model_version": 4,
                                   "features_as_of": "2026-06-02T00:00:00+00:00", "crop": "wheat"}  # fmt: skip
    assert body["features"][1]["properties"]["prediction"] is None  # NaN is not JSON: null
    assert body["bbox"] == report.bbox == [11.1, 48.1, 11.3, 48.3]


def test_polygons_from_wkt_are_closed_and_counter_clockwise(tmp_path: Path) -> None:
    export_geojson(_scores(), tmp_path / "p.geojson", geometry="boundary", id="field_id")
    ring = _read(tmp_path / "p.geojson")["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] == [11.0, 48.0] and len(ring) == 5
    assert _signed_area(ring) > 0


@settings(max_examples=25, deadline=None)
@given(
    west=st.floats(-179, 170), south=st.floats(-89, 80), width=st.floats(0.001, 5), height=st.floats(0.001, 5),
    clockwise=st.booleans(), as_wkt=st.booleans(), with_hole=st.booleans(),
)  # fmt: skip
def test_any_rectangle_comes_out_valid_whatever_its_winding(
    tmp_path_factory: pytest.TempPathFactory, west: float, south: float, width: float, height: float,
    clockwise: bool, as_wkt: bool, with_hole: bool,
) -> None:  # fmt: skip
    def box(x: float, y: float, w: float, h: float) -> list[list[float]]:
        ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        return ring[::-1] if clockwise else ring

    rings = [box(west, south, width, height)]
    if with_hole:
        rings.append(box(west + width / 4, south + height / 4, width / 2, height / 2))
    if as_wkt:
        shape: Any = (
            "POLYGON (" + ", ".join("(" + ", ".join(f"{x!r} {y!r}" for x, y in r) + ")" for r in rings) + ")"
        )
    else:
        shape = json.dumps({"type": "Polygon", "coordinates": rings})
    out = tmp_path_factory.mktemp("geo") / "r.geojson"
    export_geojson(pd.DataFrame({"prediction": [1.0], "shape": [shape]}), out, geometry="shape")
    coordinates = _read(out)["features"][0]["geometry"]["coordinates"]
    assert len(coordinates) == len(rings)
    for n, ring in enumerate(coordinates):
        assert ring[0] == ring[-1] and len(ring) == 5
        assert (_signed_area(ring) > 0) == (n == 0)  # outer counter-clockwise, hole clockwise
        assert sorted(map(tuple, ring[:-1])) == sorted(map(tuple, rings[n][:-1]))  # the same corners


def test_a_multipolygon_and_geojson_text_are_read(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "prediction": [1.0, 2.0],
        "shape": ["MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
                  '{"type": "Point", "coordinates": [-3.5, 40.4]}'],
    })  # fmt: skip
    export_geojson(frame, tmp_path / "m.geojson", geometry="shape")
    first, second = _read(tmp_path / "m.geojson")["features"]
    assert first["geometry"]["type"] == "MultiPolygon" and len(first["geometry"]["coordinates"]) == 2
    assert second["geometry"] == {"type": "Point", "coordinates": [-3.5, 40.4]}


@pytest.mark.parametrize(
    ("options", "change", "message"),
    [
        ({"lon": "longitude", "lat": "lat"}, None, r"no column\(s\) \['longitude'\].*they have"),
        ({"lon": "lon"}, None, "both lon= and lat="),
        ({"lon": "lon", "lat": "lat", "geometry": "boundary"}, None, "one way"),
        ({"lon": "lat", "lat": "lon"}, {"lon": [-95.2] * 6}, "look swapped"),  # a field in Kansas
        ({"lon": "lon", "lat": "lat", "id": "field_id"}, {"lat": [None] * 6}, r"f1.*missing"),
        ({"geometry": "boundary"}, {"boundary": ["POLYGON ((11 48, 11 49))"] * 6}, "at least 3 distinct corners"),
        ({"geometry": "boundary"}, {"boundary": ["POLYGON ((11 48, 11 49"] * 6}, "unbalanced or malformed WKT"),
        ({"geometry": "boundary"}, {"boundary": ["CIRCLE (11 48, 2)"] * 6}, "WKT type 'CIRCLE'"),
        ({"geometry": "boundary"}, {"boundary": ['{"type": "Point"']}, "not valid JSON"),
        ({"geometry": "boundary"}, {"boundary": [None] * 6}, "neither WKT nor GeoJSON"),
        ({"geometry": "boundary"}, {"boundary": ['{"type": "Polygon", "coordinates": [1, 2]}'] * 6}, "nested|two numbers"),
    ],
)  # fmt: skip
def test_bad_places_are_refused_by_row_and_nothing_is_written(
    tmp_path: Path, options: dict[str, str], change: dict[str, Any] | None, message: str
) -> None:
    frame = _scores()
    if change:
        frame = frame.head(len(next(iter(change.values())))).assign(**change)
    with pytest.raises(SchemaError, match=message):
        export_geojson(frame, tmp_path / "bad.geojson", **options)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
