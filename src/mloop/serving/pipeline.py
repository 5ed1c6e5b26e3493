"""Pipeline endpoints: one request answered by a chain of stages, each stage an ordinary endpoint.

A pipeline (``pipelines:`` in mloop.yaml, :class:`mloop.config.pipelines.Pipeline`) is an endpoint name.
Its model stages call their endpoints in-process through :meth:`Inference.predict`, as the server (like the
feature lookup): each keeps its own deployments (canary, sticky A/B, shadow), rollback, feature lookup,
metrics and prediction-log rows, and deploying one stage never redeploys the others.

The prediction log gets one row per request row under the pipeline's name with request id ``RID`` (the
prediction is the list of item ids; the inputs hold the request's fields plus ``stage.<name>.version`` and
``stage.<name>.seconds`` for every stage and ``cold_start``), and each model stage's call under its own
endpoint with request id ``RID/<stage>``. Per-stage latency is the histogram
``mloop_pipeline_stage_seconds{pipeline, stage, version}`` on ``/metrics``.

>>> pipelines = Pipelines(inference)                                              # doctest: +SKIP
>>> answer = pipelines.predict(project, "recs", [{"user_id": 7}], filter={"category": "books"})
>>> answer.rows[0]["items"][:3]                                                   # doctest: +SKIP
[42, 17, 3]
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mloop.config.pipelines import Pipeline, Stage, retrieve_endpoints
from mloop.errors import MloopError, NotFound
from mloop.predictions import Answer
from mloop.serving import metrics
from mloop.serving import pipeline_stages as stages
from mloop.serving.inference import Inference
from mloop.serving.pipeline_stages import Candidates, IndexCache
from mloop.serving.predictor import check_rows


@dataclass(frozen=True)
class PipelineAnswer:
    """What a pipeline answered: per request row ``{"items", "scores", "cold_start", "reason"}``, and per
    stage the version that answered (None for ``top``) and its seconds."""

    request_id: str
    pipeline: str
    rows: list[dict[str, Any]]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": self.rows, "request_id": self.request_id, "pipeline": self.pipeline,
                "stages": self.stages}  # fmt: skip


class Pipelines:
    """The pipeline endpoints of one server, answered through ``inference``; ``pipelines`` defaults to the
    project's ``pipelines:`` settings. Hooks into the endpoint table's poll: indexes are refreshed there,
    and a retrieve endpoint's revision whose versions lack a matching index is not swapped in."""

    def __init__(self, inference: Inference, pipelines: Mapping[str, Pipeline] | None = None) -> None:
        self.inference = inference
        self.project = inference.project
        self.pipelines = dict(self.project.settings.pipelines if pipelines is None else pipelines)
        self.indexes = IndexCache(self.project)
        self._retrieve = retrieve_endpoints(self.pipelines)
        table = inference.table
        table.guards.append(self.check_deployment)
        table.listeners.append(self.refresh_indexes)
        # The served versions' indexes load now, before the first request: loading one on the request path
        # (0.4 s for 100k items) stalls the event loop and the guard sheds what arrives meanwhile. A
        # version without an index is refused where it is used, with the fix in the message.
        with contextlib.suppress(MloopError):
            self.refresh_indexes()

    def __contains__(self, name: object) -> bool:
        return name in self.pipelines

    def names(self) -> list[str]:
        return sorted(self.pipelines)

    # ---- the request path -----------------------------------------------------------------------------

    def predict(
        self,
        caller: Any,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        filter: Mapping[str, Any] | None = None,
        exclude: Sequence[Any] = (),
        n: int | None = None,
        request_id: str | None = None,
        at: datetime | None = None,
    ) -> PipelineAnswer:
        """Recommendations for each of ``rows`` (a user's keys, e.g. ``{"user_id": 7}``): ``filter`` on item
        attributes (with each retrieve stage's own ``where``), ``exclude`` item ids, ``n`` items each. The
        caller needs ``predict`` on ``endpoint:NAME``; the stages run as the server. ``at``: every stage looks
        its features up as of then (replays, backtests, a simulation's clock)."""
        caller.actor.require("predict", f"endpoint:{name}")
        pipeline = self.get(name)
        check_rows(rows)
        started = time.perf_counter()
        rid = request_id or uuid.uuid4().hex
        timing: dict[str, dict[str, Any]] = {}
        found: list[Candidates] = [Candidates() for _ in rows]
        for stage in pipeline.stages:
            clock = time.perf_counter()
            if stage.kind == "retrieve":
                version = self._retrieve_stage(stage, rows, found, filter or {}, rid, at)
            elif stage.kind == "rank":
                version = self._rank_stage(stage, pipeline, rows, found, rid, at)
            else:
                version = None
                self._top_stage(stage, pipeline, rows, found, set(map(str, exclude)), n, at)
            seconds = time.perf_counter() - clock
            timing[stage.name] = {"version": version, "seconds": seconds}
            metrics.PIPELINE_STAGE.labels(name, stage.name, "" if version is None else str(version)).observe(
                seconds
            )
        if pipeline.stage("top") is None:
            drop = set(map(str, exclude))
            for cands in found:
                stages.top(cands, n or pipeline.n, drop, True)
        self._cold_start(pipeline, rows, found, set(map(str, exclude)), n or pipeline.n)
        answered = [{"items": c.items, "scores": c.scores, "cold_start": c.cold_start, "reason": c.reason}
                    for c in found]  # fmt: skip
        answer = PipelineAnswer(rid, name, answered, timing, time.perf_counter() - started)
        self._log(answer, rows)
        return answer

    def get(self, name: str) -> Pipeline:
        found = self.pipelines.get(name)
        if found is None:
            raise NotFound(f"No pipeline {name!r}; pipelines: {', '.join(self.names()) or 'none'} (pipelines: in "
                           "mloop.yaml).")  # fmt: skip
        return found

    def _retrieve_stage(
        self, stage: Stage, rows: Sequence[Mapping[str, Any]], found: list[Candidates],
        filter: Mapping[str, Any], rid: str, at: datetime | None = None,
    ) -> int | None:  # fmt: skip
        assert stage.endpoint is not None
        endpoint, record, tag = stage.endpoint, stages.sampled(stage), f"{rid}/{stage.name}"
        warm = list(range(len(rows)))
        try:
            answers = [
                self.inference.predict(self.project, endpoint, rows, request_id=tag, record=record, at=at)
            ]
        except MloopError as exc:
            if not stages.is_cold(exc):
                raise
            # Some user has no features: find which (unlogged probes), then ask once for the others.
            warm = [i for i in range(len(rows)) if len(rows) > 1 and self._answers(endpoint, rows[i], at)]
            for i in set(range(len(rows))) - set(warm):
                found[i].cold_start, found[i].reason = True, "unknown user: no online features for the tower"
            answers = []
            if warm:
                picked = [rows[i] for i in warm]
                answers = [
                    self.inference.predict(
                        self.project, endpoint, picked, request_id=tag, record=record, at=at
                    )
                ]
        if not answers:
            return None
        answer = answers[0]
        where = {**filter, **stage.where}  # the stage's own filters hold whatever the request asks
        index = self.indexes.get(answer.model, answer.version)
        hits = stages.search(index, stages.embeddings(answer.predictions), stage, where)
        for i, hit in zip(warm, hits, strict=True):
            found[i] = hit
        return answer.version

    def _answers(self, endpoint: str, row: Mapping[str, Any], at: datetime | None = None) -> bool:
        """Whether ``endpoint`` answers for ``row`` (a probe, not logged)."""
        try:
            self.inference.predict(self.project, endpoint, [row], record=False, at=at)
            return True
        except MloopError as exc:
            if not stages.is_cold(exc):
                raise
            return False

    def _rank_stage(
        self, stage: Stage, pipeline: Pipeline, rows: Sequence[Mapping[str, Any]], found: list[Candidates],
        rid: str, at: datetime | None = None,
    ) -> int | None:  # fmt: skip
        assert stage.endpoint is not None
        ranked, owner = stages.rank_rows(rows, found, pipeline.item_key)
        if not ranked:
            return None
        answer = self.inference.predict(self.project, stage.endpoint, ranked, request_id=f"{rid}/{stage.name}",
                                        record=stages.sampled(stage), at=at)  # fmt: skip
        stages.reorder(found, owner, answer.predictions)
        return answer.version

    def _top_stage(
        self, stage: Stage, pipeline: Pipeline, rows: Sequence[Mapping[str, Any]], found: list[Candidates],
        exclude: set[str], n: int | None, at: datetime | None = None,
    ) -> None:  # fmt: skip
        held: list[Any] = [None] * len(rows)
        if stage.exclude:
            column = stage.exclude.split(":", 1)[1]
            looked = self.project.features.online([dict(r) for r in rows], [stage.exclude], at=at)
            held = looked.get(column, held)
        for cands, value in zip(found, held, strict=True):
            stages.top(cands, n or stage.n or pipeline.n, exclude | stages.excluded_ids(value), stage.dedupe)

    def _cold_start(
        self, pipeline: Pipeline, rows: Sequence[Mapping[str, Any]], found: list[Candidates], exclude: set[str],
        n: int,
    ) -> None:  # fmt: skip
        cold = [c for c in found if c.cold_start]
        fallback = pipeline.cold_start
        if not cold:
            return
        if fallback is None:
            for c in cold:
                c.reason = f"{c.reason}; no cold_start fallback is configured for this pipeline"
            return
        items = list(fallback.items)
        if fallback.kind == "feature":
            assert fallback.feature is not None
            looked = self.project.features.online([dict(fallback.key)], [fallback.feature])
            value = looked.get(fallback.feature.split(":", 1)[1], [None])[0]
            items = stages.id_list(value)
        for c in cold:
            c.items, c.scores = list(items), [0.0] * len(items)
            stages.top(c, n, exclude, True)
            c.reason = f"{c.reason}; answered the cold_start fallback ({fallback.kind})"

    # ---- the prediction log ---------------------------------------------------------------------------

    def _log(self, answer: PipelineAnswer, rows: Sequence[Mapping[str, Any]]) -> None:
        log = self.inference.prediction_log
        if log is None:
            return
        names = list(dict.fromkeys(k for row in rows for k in row))
        inputs: dict[str, list[Any]] = {k: [row.get(k) for row in rows] for k in names}
        for stage, facts in answer.stages.items():
            inputs[f"stage.{stage}.version"] = [facts["version"]] * len(rows)
            inputs[f"stage.{stage}.seconds"] = [round(facts["seconds"], 6)] * len(rows)
        inputs["cold_start"] = [r["cold_start"] for r in answer.rows]
        record = Answer(answer.request_id, answer.pipeline, f"pipeline:{answer.pipeline}", 0, 0,
                        [r["items"] for r in answer.rows], inputs, answer.seconds)  # fmt: skip
        log.record(record, required=True)  # no answer without its line, as an endpoint's (inference.py)

    # ---- the endpoint table's poll --------------------------------------------------------------------

    def check_deployment(self, deployment: Any) -> None:
        """Refuse to serve a retrieve endpoint's revision whose versions have no index of their own."""
        pipeline = self._retrieve.get(str(deployment.endpoint))
        if pipeline is None:
            return
        model = str(deployment.model)
        for version in deployment.versions:
            source = self.indexes.source_of(model, int(version))
            if source != (model, int(version)):
                raise MloopError(
                    f"{model!r} v{version} serves the retrieve stage of pipeline {pipeline!r} but its vector "
                    f"index {'is missing' if source is None else f'was built from {source}'}: attach or rebuild "
                    f"the index of v{version}."
                )

    def refresh_indexes(self) -> None:
        """Reload the indexes whose stamp changed, for every version a retrieve endpoint serves."""
        wanted = []
        for endpoint in self._retrieve:
            live = self.inference.table.endpoints().get(endpoint)
            if live is not None:
                wanted += [(p.name, p.version) for p in live.predictors.values()]
        self.indexes.refresh(wanted)
