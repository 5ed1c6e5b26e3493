"""Scoring results as GeoJSON (RFC 7946) for maps: one feature per field, its prediction as properties.

>>> report = export_geojson("preds/", "fields.geojson", lon="lon", lat="lat", id="field_id")  # doctest: +SKIP
>>> report.features
240

Geometry comes from a longitude and a latitude column (a Point each) or from a ``geometry`` column holding
WKT (``POLYGON ((lon lat, ...))``) or GeoJSON geometry text. Positions are written ``[longitude, latitude]``
as RFC 7946 requires, polygon rings closed and wound by its right-hand rule (outer rings counter-clockwise,
holes clockwise). With ``id`` each field appears once, with its newest row (by ``time``), so a folder of daily
partitions gives the map of the latest predictions. The file is written whole or not at all. No GIS
library is needed: the shapes a field map uses (points and polygons) are parsed here.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._files import write_text
from mloop.errors import SchemaError
from mloop.serving.scoring.partitions import AS_OF, read_scores

STAMPS = ("model", "model_version")  # the columns a partitioned scoring run stamps on each row
_TOKEN = re.compile(r"\s*(\(|\)|,|[-+0-9.eE]+|[A-Za-z]+)")
_WKT_DEPTH = {"POINT": 1, "LINESTRING": 2, "POLYGON": 3, "MULTIPOINT": 2, "MULTILINESTRING": 3,
              "MULTIPOLYGON": 4}  # fmt: skip
_GEOJSON_NAMES = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
                  "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon"}  # fmt: skip


@dataclass(frozen=True)
class GeoJSONReport:
    """What :func:`export_geojson` wrote."""

    path: str
    features: int
    bbox: list[float]  # [west, south, east, north]


def export_geojson(
    scores: str | Path | pd.DataFrame,
    out: str | Path,
    *,
    lon: str | None = None,
    lat: str | None = None,
    geometry: str | None = None,
    id: str | None = None,
    time: str = AS_OF,
    properties: Sequence[str] = (),
) -> GeoJSONReport:
    """Write the scoring results ``scores`` (a Parquet file, a partitioned folder or a DataFrame) to ``out`` as a
    GeoJSON FeatureCollection: geometry from ``lon``/``lat`` or ``geometry``, properties the predictions, the
    model and version, the time and the extra ``properties`` columns."""
    frame = scores if isinstance(scores, pd.DataFrame) else read_scores(scores).to_pandas()
    _check_columns(frame, lon, lat, geometry, id, properties)
    if id is not None and len(frame):
        order = frame.sort_values(time, kind="stable") if time in frame.columns else frame
        frame = order.drop_duplicates(subset=[id], keep="last").sort_values(id, kind="stable")
    shown = [c for c in [id, *_predictions(frame), *STAMPS, time, *properties] if c and c in frame.columns]
    shown = list(dict.fromkeys(shown))
    cells = {c: frame[c].tolist() for c in {*shown, *(c for c in (lon, lat, geometry, id) if c)}}
    features = []
    for position in range(len(frame)):
        row = {c: values[position] for c, values in cells.items()}
        where = f"row {position}" + (f" ({id}={row[id]!r})" if id is not None else "")
        if geometry is None:
            assert lon is not None and lat is not None  # _check_columns: both are given without a geometry
            shape = _point(row[lon], row[lat], where)
        else:
            shape = _geometry(row[geometry], where)
        feature: dict[str, Any] = {"type": "Feature", "geometry": shape,
                                   "properties": {c: _plain(row[c]) for c in shown}}  # fmt: skip
        if id is not None:
            feature["id"] = _plain(row[id])
        features.append(feature)
    bbox = _bbox(features)
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if features:
        body["bbox"] = bbox
    path = write_text(out, json.dumps(body, allow_nan=False), what="GeoJSON file", option="--out")
    return GeoJSONReport(str(path), len(features), bbox)


def _check_columns(frame: pd.DataFrame, lon: str | None, lat: str | None, geometry: str | None,
                   id: str | None, properties: Sequence[str]) -> None:  # fmt: skip
    if (geometry is None) == (lon is None and lat is None) or (
        geometry is None and (lon is None or lat is None)
    ):
        raise SchemaError(
            "Give the fields' places one way: both lon= and lat= (--lon/--lat, columns of degrees), or "
            "geometry= (--geometry, a column of WKT or GeoJSON shapes)."
        )
    wanted = [c for c in (lon, lat, geometry, id, *properties) if c is not None]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"The scoring results have no column(s) {missing}; they have {list(frame.columns)}. Keep the "
            "columns in the input you score (the output copies them), or name the right ones."
        )
    if not _predictions(frame):
        raise SchemaError(
            f"The rows have no 'prediction' column ({list(frame.columns)}): pass scoring output."
        )


def _predictions(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith("prediction")]


def _point(lon: Any, lat: Any, where: str) -> dict[str, Any]:
    return {"type": "Point", "coordinates": _position([lon, lat], where)}


def _position(pair: Any, where: str) -> list[float]:
    if isinstance(pair, list | tuple | np.ndarray) and any(v is None or v is pd.NA for v in pair):
        raise SchemaError(f"{where}: longitude/latitude {list(pair)} missing; fill or drop the row.")
    try:
        x, y = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: position {pair!r} is not two numbers (longitude, latitude).") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise SchemaError(
            f"{where}: longitude/latitude ({x}, {y}) missing or not finite; fill or drop the row."
        )
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        hint = " (they look swapped: longitude comes first)" if -90 <= x <= 90 and -180 <= y <= 180 else ""
        raise SchemaError(
            f"{where}: ({x}, {y}) is not a longitude in [-180, 180] and a latitude in [-90, 90]{hint}. GeoJSON "
            "uses WGS 84 degrees; reproject other coordinates first."
        )
    return [x, y]


def _geometry(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, dict):
        shape = value
    elif isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            shape = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{where}: the geometry is not valid JSON ({exc}).") from None
    elif isinstance(value, str):
        shape = _wkt(value, where)
    else:
        raise SchemaError(
            f"{where}: geometry {value!r} is neither WKT nor GeoJSON text; fill or drop the row."
        )
    return _checked(shape, where)


def _wkt(text: str, where: str) -> dict[str, Any]:
    """A WKT geometry (2-D, no SRID) as a GeoJSON geometry dict."""
    tokens = _TOKEN.findall(text)
    if "".join(t.strip() for t in tokens) != re.sub(r"\s+", "", text) or not tokens:
        raise SchemaError(
            f"{where}: {text[:60]!r} is not WKT, like 'POLYGON ((10 50, 11 50, 11 51, 10 50))'."
        )
    kind = tokens[0].upper()
    if kind not in _WKT_DEPTH:
        raise SchemaError(f"{where}: WKT type {tokens[0]!r} is not one of {', '.join(_WKT_DEPTH)}.")
    rest = tokens[1:]
    if [t.upper() for t in rest] == ["EMPTY"]:
        raise SchemaError(f"{where}: the geometry is EMPTY; a field needs a place on the map.")
    try:
        nested, end = _nested(rest, 0)
    except (IndexError, ValueError):
        raise SchemaError(f"{where}: unbalanced or malformed WKT {text[:60]!r}.") from None
    if end != len(rest):
        raise SchemaError(f"{where}: unexpected text after the WKT shape in {text[:60]!r}.")
    coordinates = _flatten_points(nested, _WKT_DEPTH[kind], where)
    return {"type": _GEOJSON_NAMES[kind], "coordinates": coordinates}


def _nested(tokens: list[str], i: int) -> tuple[Any, int]:
    """Parse ``( item , item ... )`` where an item is a nested group or a run of numbers (a position)."""
    if tokens[i] != "(":
        raise ValueError("expected (")
    items: list[Any] = []
    i += 1
    while True:
        if tokens[i] == "(":
            item, i = _nested(tokens, i)
        else:
            numbers = []
            while tokens[i] not in ("(", ")", ","):
                numbers.append(float(tokens[i]))
                i += 1
            item = numbers
        items.append(item)
        if tokens[i] == ",":
            i += 1
        elif tokens[i] == ")":
            return items, i + 1
        else:
            raise ValueError("expected , or )")


def _flatten_points(nested: Any, depth: int, where: str) -> Any:
    """WKT's groups to GeoJSON's arrays: ``MULTIPOINT (1 2, 3 4)`` and ``POINT (1 2)`` have a level fewer."""
    if depth == 1:
        if len(nested) != 1:
            raise SchemaError(f"{where}: a POINT holds one position.")
        return nested[0]
    if depth == 2:
        return [p[0] if len(p) == 1 and isinstance(p[0], list) else p for p in nested]
    return [_flatten_points(part, depth - 1, where) for part in nested]


def _checked(shape: Any, where: str) -> dict[str, Any]:
    """A GeoJSON geometry with its positions checked, rings closed and wound by the right-hand rule."""
    kind = shape.get("type") if isinstance(shape, dict) else None
    coords = shape.get("coordinates") if isinstance(shape, dict) else None
    if kind not in _GEOJSON_NAMES.values() or not isinstance(coords, list):
        raise SchemaError(
            f"{where}: {str(shape)[:60]!r} is not a GeoJSON geometry with type and coordinates."
        )
    try:
        if kind == "Point":
            out: Any = _position(coords, where)
        elif kind in ("MultiPoint", "LineString"):
            out = [_position(p, where) for p in coords]
        elif kind == "MultiLineString":
            out = [[_position(p, where) for p in line] for line in coords]
        elif kind == "Polygon":
            out = _polygon(coords, where)
        else:
            out = [_polygon(polygon, where) for polygon in coords]
    except TypeError:
        raise SchemaError(f"{where}: the {kind}'s coordinates are not nested as GeoJSON requires.") from None
    return {"type": kind, "coordinates": out}


def _polygon(rings: Any, where: str) -> list[list[list[float]]]:
    out = []
    for n, ring in enumerate(rings):
        positions = [_position(p, where) for p in ring]
        if len(positions) >= 3 and positions[0] != positions[-1]:
            positions.append(positions[0])  # WKT and GeoJSON both close rings; a missing last point is clear
        if len(positions) < 4:
            raise SchemaError(f"{where}: a polygon ring needs at least 3 distinct corners; got {ring!r}.")
        clockwise = _signed_area(positions) < 0
        if clockwise == (n == 0):  # outer ring counter-clockwise, holes clockwise (RFC 7946 section 3.1.6)
            positions.reverse()
        out.append(positions)
    if not out:
        raise SchemaError(f"{where}: a polygon needs an outer ring.")
    return out


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def _bbox(features: list[dict[str, Any]]) -> list[float]:
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], float):
            xs.append(c[0])
            ys.append(c[1])
        else:
            for part in c:
                walk(part)

    for feature in features:
        walk(feature["geometry"]["coordinates"])
    return [min(xs), min(ys), max(xs), max(ys)] if xs else []


def _plain(value: Any) -> Any:
    """A cell as JSON: numpy scalars as numbers, times as ISO 8601, NaN and NaT as null."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float | np.floating) and not math.isfinite(value)):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
