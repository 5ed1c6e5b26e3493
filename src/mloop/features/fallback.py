"""What a feature view answers when the online store cannot be reached: its ``on_missing`` rule.

- ``on_missing="error"`` (the default): the lookup fails with
  :class:`~mloop.errors.OnlineStoreUnavailable`, which the server answers 503, naming the store and the fix.
- ``on_missing="default"``: the view's features are answered with its ``defaults`` (one value per feature;
  a feature left out is null), and the lookup reports each defaulted feature with the reason
  :data:`STORE_UNAVAILABLE`, which a prediction's answer and its prediction-log row carry (``defaulted``).

One read answers every view of a request, so an outage reaches them all at once: when any of them says
``error``, the request fails; when all say ``default``, it is answered.

>>> stats = ml.FeatureView("customer_stats", entities=[customer], source=txns,           # doctest: +SKIP
...                        features=[ml.Field("spend_7d")], on_missing="default",
...                        defaults={"spend_7d": 0.0})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mloop.errors import SchemaError
from mloop.features.online.base import OnlineRead

ON_MISSING = ("error", "default")
STORE_UNAVAILABLE = "online_store_unavailable"  # the reason recorded for each defaulted feature
_NUMBERS = {"int32", "int64", "float32", "float64"}


def checked(
    view: str, on_missing: str, defaults: Mapping[str, Any], dtypes: Mapping[str, str | None]
) -> dict[str, Any]:
    """``defaults`` of feature view ``view`` after checking them against its features (``dtypes``: feature
    name to the dtype of a plain feature, None for a window aggregation) and ``on_missing``."""
    if on_missing not in ON_MISSING:
        raise SchemaError(
            f"FeatureView {view!r}: on_missing={on_missing!r}; use 'error' (fail with 503 while the online "
            "store is unreachable) or 'default' (answer with the view's defaults)."
        )
    if not isinstance(defaults, Mapping):
        raise SchemaError(
            f"FeatureView {view!r}: defaults must map feature names to values, got {defaults!r}."
        )
    unknown = sorted(set(defaults) - set(dtypes))
    if unknown:
        raise SchemaError(
            f"FeatureView {view!r}: defaults name {unknown}, which are not its features: {', '.join(dtypes)}."
        )
    if defaults and on_missing != "default":
        raise SchemaError(
            f"FeatureView {view!r} declares defaults but on_missing={on_missing!r}: they would never be "
            "used. Add on_missing='default', or drop the defaults."
        )
    for name, value in defaults.items():
        dtype = dtypes[name]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        fits = (
            value is None
            or (dtype in _NUMBERS and number)
            or (dtype is None and number)
            or (dtype == "bool" and isinstance(value, bool))
            or (dtype not in _NUMBERS and dtype not in ("bool", None) and isinstance(value, str | list))
        )
        if not fits:
            raise SchemaError(
                f"FeatureView {view!r}: the default of {name!r} is {value!r}, not a {dtype or 'number'}; "
                "give a value of the feature's type, or null."
            )
    return dict(defaults)


class Reads(Protocol):
    """What a lookup needs of an online store: one read of rows and event ranges."""

    def read(
        self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]] = ()
    ) -> OnlineRead: ...


class Unreachable:
    """Stands in for an online store that could not even be opened (Redis down when the server first
    needed it): every read raises the error that said so, and the view's ``on_missing`` decides."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(
        self, rows: Sequence[tuple[str, str]], events: Sequence[tuple[str, str, int]] = ()
    ) -> OnlineRead:
        raise self.error
