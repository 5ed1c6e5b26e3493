"""The registry's nouns: registered models, their versions, promotion requests and loaded models."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mloop.explain import Attributions, Counterfactuals, counterfactuals, explain, row_explainer
from mloop.models.flavours import Flavour
from mloop.models.row_check import columns_conform
from mloop.models.signature import Signature, SignatureError


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: what it is, where it came from and where it stands.

    ``stage`` is none, staging, production, archived or deleted; ``aliases`` are the aliases that point at it
    now; ``artifact`` is the sha256 of the packed model in the artifact store.
    """

    name: str
    version: int
    run_id: str | None
    artifact: str
    flavour: str
    signature: Signature | None
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    card: dict[str, Any]
    stage: str
    aliases: list[str]
    created_at: datetime
    created_by: str
    description: str = ""

    @property
    def number(self) -> int:
        return self.version

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "artifact": self.artifact,
            "flavour": self.flavour,
            "signature": self.signature.to_dict() if self.signature else None,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "card": self.card,
            "stage": self.stage,
            "aliases": self.aliases,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "description": self.description,
        }


@dataclass(frozen=True)
class ModelExport:
    """A version's model in another format (``onnx``), stored beside it and checked against it: ``details``
    holds the converter, the opset and the parity figures (rows, largest absolute and relative difference)."""

    name: str
    version: int
    format: str
    artifact: str
    details: dict[str, Any]
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class RegisteredModel:
    """A model name and a summary of its versions."""

    name: str
    description: str
    created_at: datetime
    latest_version: int | None
    versions: int
    production: int | None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Promotion:
    """A request to move a version to a stage: ``pending`` until approved (``done``) or ``rejected``."""

    id: int
    name: str
    version: int
    stage: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str

    def to_dict(self) -> dict[str, Any]:
        out = {**self.__dict__}
        for key in ("requested_at", "decided_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


@dataclass
class LoadedModel:
    """A model version ready to predict; inputs are checked against its signature first.

    >>> champion = project.models.load("fraud", alias="champion")   # doctest: +SKIP
    >>> champion.predict(frame)                                      # doctest: +SKIP
    array([0.02, 0.91])
    """

    info: ModelVersion
    flavour: Flavour
    model: Any
    # the version's explanation background (a weighted summary of its training inputs), read when needed
    background: Callable[[], pd.DataFrame | None] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def signature(self) -> Signature | None:
        return self.info.signature

    def validate(
        self, inputs: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> pd.DataFrame:
        """The inputs as the model expects them, or :class:`SignatureError` with one line per bad field."""
        frame = _frame(inputs)
        if self.signature is None:
            return frame
        try:
            return self.signature.validate(frame)
        except SignatureError as exc:
            raise SignatureError(
                exc.problems,
                f"The input does not match the signature of model {self.name!r} version {self.version}",
            ) from None

    def predict(self, inputs: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predictions for ``inputs`` (a frame, one row as a mapping, or a list of rows): the probability of
        the positive class for a binary classifier, the class-probability matrix for a multiclass one,
        values for a regressor."""
        return self.flavour.predict(self.model, self.validate(inputs))

    def explain(
        self,
        inputs: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Why the model predicts what it does for ``inputs``: one column per input feature plus
        ``base_value``, whose row sums are the model's output in the space :meth:`attributions` states
        (log-odds for a LightGBM classifier). ``budget``: model evaluations per row allowed to a
        model-agnostic method, for a flavour with no exact one; ``target``: the class of a multiclass model;
        ``background``: training inputs a linear model or the model-agnostic method measures against (default:
        the summary the registry kept with the version)."""
        return self.attributions(inputs, budget=budget, target=target, background=background).frame()

    def attributions(
        self,
        inputs: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        budget: int | None = None,
        target: Any = None,
        background: pd.DataFrame | None = None,
    ) -> Attributions:
        """:meth:`explain` with everything the method knows: the output space, the method, the served
        prediction and, for an approximate method, how far each row's sum is off."""
        if background is None:
            background = self.explanation_background
        return explain(self.flavour.name, self.model, self.validate(inputs), budget=budget, target=target,
                       background=background)  # fmt: skip

    def attributions_columns(
        self, columns: dict[str, list[Any]], *, budget: int | None = None, target: Any = None
    ) -> Attributions:
        """:meth:`attributions` of ``pd.DataFrame(columns)`` for columns of plain JSON values (a request),
        without pandas where the flavour's explainer offers a row path and the values conform to the
        signature as they are (as :meth:`predict_columns`); any other input takes the general path."""
        fast = self._row_explainer
        if fast is not None and columns and budget is None:
            assert self.signature is not None
            if not self._tensors and columns_conform(self.signature.inputs, columns):
                return fast(columns, target)
        return self.attributions(pd.DataFrame(columns), budget=budget, target=target)

    @property
    def explains_columns(self) -> bool:
        """Whether :meth:`attributions_columns` has a path without pandas for this model (LightGBM)."""
        return self._row_explainer is not None and not self._tensors

    @functools.cached_property
    def _row_explainer(self) -> Callable[[dict[str, list[Any]], Any], Attributions] | None:
        if self.signature is None:
            return None
        made: Callable[[dict[str, list[Any]], Any], Attributions] | None = row_explainer(
            self.flavour.name, self.model, self.signature
        )
        return made

    @functools.cached_property
    def explanation_background(self) -> pd.DataFrame | None:
        """The summary of training inputs the registry kept with the version (None without one), read once."""
        return self.background() if self.background is not None else None

    def counterfactuals(
        self, row: Mapping[str, Any], constraints: Mapping[str, Any], goal: Mapping[str, Any], k: int = 3,
        **options: Any,
    ) -> Counterfactuals:  # fmt: skip
        """Up to ``k`` diverse changes to ``row`` that move this model's prediction across ``goal``
        (``{"threshold": 0.5, "want": "below"}``), each changing only features ``constraints`` allows;
        the signature gives types and categories. See :func:`mloop.explain.counterfactuals`.

        >>> model.counterfactuals(row, {"amount": {"min": 0}}, {"threshold": 0.5, "want": "below"})
        ...                                                                        # doctest: +SKIP
        """
        specs = self.signature.inputs if self.signature is not None else None
        return counterfactuals(self.predict, row, constraints, goal, k, specs=specs, **options)

    def predict_columns(self, columns: dict[str, list[Any]]) -> np.ndarray:
        """:meth:`predict` of ``pd.DataFrame(columns)`` for columns of plain JSON values (a request), without
        pandas where the flavour offers a row predictor and the values conform to the signature as they are
        (:mod:`mloop.models.row_check`; a network's tensor columns are checked by its row predictor, which
        answers None to decline); any other input takes the general path, so answers and errors match."""
        fast = self._row_predictor
        if fast is not None and columns:
            assert self.signature is not None
            if self._tensors or columns_conform(self.signature.inputs, columns):
                answer = fast(columns)
                if answer is not None:
                    return answer
        return self.predict(pd.DataFrame(columns))

    @functools.cached_property
    def _tensors(self) -> bool:
        return self.signature is not None and any(c.shape is not None for c in self.signature.inputs)

    @functools.cached_property
    def _row_predictor(self) -> Callable[[dict[str, list[Any]]], np.ndarray | None] | None:
        make = getattr(self.flavour, "row_predictor", None)
        if make is None or self.signature is None:
            return None
        made: Callable[[dict[str, list[Any]]], np.ndarray | None] | None = make(self.model, self.signature)
        return made

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, version={self.version}, flavour={self.flavour.name!r})"


def _frame(inputs: Any) -> pd.DataFrame:
    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, Mapping):
        return pd.DataFrame([inputs])
    return pd.DataFrame(list(inputs))
