"""Explanations of an endpoint's answers: the attributions of the version that would answer the rows, on
the inputs it would be given.

The rows are resolved as a prediction is (:meth:`Inference.resolve <mloop.serving.inference.Inference.resolve>`:
the caller's ``predict`` permission on the endpoint, the version its traffic policy picks or the pinned
one), their features looked up and merged by :meth:`Predictor.model_inputs
<mloop.serving.predictor.Predictor.model_inputs>` exactly as for a prediction, and the model's explainer
(:mod:`mloop.explain`) run on them. Nothing is predicted through the endpoint, cached or logged: an
explanation never changes what ``/predict`` answers. Explaining costs more than predicting (a model-agnostic
method evaluates the model ``budget`` times per row), so a request holds at most :data:`MAX_ROWS` rows.

>>> explaining = Explaining(inference)                                                     # doctest: +SKIP
>>> explaining.explain(project, "fraud", [{"customer_id": 42, "amount": 912.0}], top_k=3).to_dict()
{'explanations': [{'base_value': -3.1, 'attributions': {'amount': 2.4, ...}, 'prediction': 0.71, ...}],
 'output': 'log_odds', 'method': 'tree_shap', 'model': 'fraud', 'version': 3}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from mloop.errors import MloopError, NotFound, PayloadTooLarge
from mloop.explain import Attributions
from mloop.project import Project
from mloop.serving.predictor import Predictor, check_rows
from mloop.serving.router import TrafficRouter

INLINE_ROWS = 4  # rows an exact numpy-path explainer explains on the event loop (about 1 ms each)
MAX_ROWS = 100  # per explain request (predict takes 10,000): larger sets belong to LoadedModel.explain

Resolve = Callable[[Any, str, Sequence[Mapping[str, Any]], int | None], tuple[Any, Predictor]]


@dataclass(frozen=True)
class Explanation:
    """The attributions of a request's rows by the version that would answer them."""

    attributions: Attributions
    model: str
    version: int
    top_k: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The HTTP answer: one entry per row (base value, attributions, the served prediction, the value
        they add up to), then the output space, the method, the model and its version."""
        return {"explanations": self.attributions.to_dicts(self.top_k), "output": self.attributions.output,
                "method": self.attributions.method, "model": self.model, "version": self.version}  # fmt: skip


class EndpointQuestions:
    """A question about an endpoint's answers (why, what would change them), asked of the version that would
    answer the rows; ``resolve`` is :meth:`Inference.resolve` in a server, the live deployment otherwise."""

    def __init__(self, resolve: Resolve, project: Project) -> None:
        self._resolve = resolve
        self.project = project  # looks features up as the server does: a caller needs no feature access

    @classmethod
    def of(cls, inference: Any) -> Self:
        """The service of a server's :class:`~mloop.serving.inference.Inference`."""
        return cls(inference.resolve, inference.project)

    @classmethod
    def in_process(cls, project: Project) -> Self:
        """The service without a server (``mloop explain``): the endpoint's live deployment is read and only
        the version chosen is loaded, as ``project``'s caller, who needs ``predict`` on the endpoint."""
        return cls(
            lambda caller, endpoint, rows, version: resolve_live(project, endpoint, rows, version), project
        )


class Explaining(EndpointQuestions):
    """Explains an endpoint's answers."""

    def inline(self, caller: Any, endpoint: str, rows: Sequence[Mapping[str, Any]], *, version: int | None = None,
               budget: int | None = None) -> bool:  # fmt: skip
        """Whether explaining ``rows`` is cheap enough to run on the event loop, as a prediction does: a few
        rows through an exact explainer's numpy path (LightGBM's TreeSHAP, about a millisecond a row).
        Anything else runs on a worker thread: a model-agnostic method or a network takes far longer, and
        the loop answers predictions meanwhile. A caller or rows that fail here fail the same way later."""
        if budget is not None or not isinstance(rows, Sequence) or not 0 < len(rows) <= INLINE_ROWS:
            return False
        try:
            _, predictor = self._resolve(caller, endpoint, rows, version)
        except MloopError:
            return False
        return predictor.model.explains_columns

    def explain(
        self,
        caller: Any,
        endpoint: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        at: datetime | None = None,
        top_k: int | None = None,
        target: Any = None,
        budget: int | None = None,
    ) -> Explanation:
        """The attributions of ``rows`` (request rows: join keys and request-time features) by the version
        of ``endpoint`` that would answer them; ``top_k``: only each row's k largest; ``target``: the class
        of a multiclass model; ``budget``: model evaluations per row for a model-agnostic method."""
        if isinstance(rows, Sequence) and len(rows) > MAX_ROWS:
            raise PayloadTooLarge(
                f"An explain request holds at most {MAX_ROWS} rows, got {len(rows):,}; split it, or explain a "
                "data set offline with project.models.load(name, version=n).explain(frame)."
            )
        if top_k is not None and top_k < 1:
            raise MloopError(f"top_k must be 1 or more (the attributions kept per row), got {top_k}.")
        _, predictor = self._resolve(caller, endpoint, rows, version)
        inputs = predictor.model_inputs(self.project, rows, at=at)
        found = predictor.model.attributions_columns(inputs, budget=budget, target=target)
        return Explanation(found, predictor.name, predictor.version, top_k)


def resolve_live(
    project: Project, endpoint: str, rows: Sequence[Mapping[str, Any]], version: int | None
) -> tuple[Any, Predictor]:
    """What :meth:`Inference.resolve` answers, from the deployment itself instead of a server's table."""
    project.actor.require("predict", f"endpoint:{endpoint}")
    deployment = project.deployments.get(endpoint)
    if not deployment.active:
        raise NotFound(
            f"Endpoint {endpoint!r} is undeployed; deploy it with `mloop deploy {endpoint} MODEL -v N`."
        )
    served = [int(v) for v in deployment.versions]
    if version is None:
        key = deployment.sticky_key
        version = TrafficRouter(deployment).pick(rows[0].get(key) if key and rows else None)
    elif version not in served:
        raise MloopError(
            f"Endpoint {endpoint!r} does not serve version {version}; it serves "
            f"{', '.join(str(v) for v in sorted(served))}. Leave the version out to follow the traffic policy."
        )
    predictor = Predictor.load(project, deployment.model, version, deployment.runtime)
    check_rows(rows, predictor.tensors)
    return deployment, predictor
