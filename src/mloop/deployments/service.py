"""``project.deployments``: which model versions serve each endpoint, as numbered revisions.

Every change (deploy, canary, A/B, shadow, rollback, undeploy) appends a revision to the metadata store
and an event to the audit log in the same transaction; the newest revision of an endpoint is live. A
running server polls :meth:`DeploymentService.stamp` and switches to new revisions by itself.

A deployment pins versions: ``alias="champion"`` is resolved when you deploy and recorded beside the
version, so moving the alias later does not change what serves until you deploy again (the loop
controller does that as one decision, with its reason).

>>> project.deploy("fraud", "fraud-gbm", alias="champion")            # doctest: +SKIP
>>> project.deploy("fraud", "fraud-gbm", version=4, canary=0.05)      # doctest: +SKIP
>>> project.rollback("fraud")                                         # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from mloop._service import Service
from mloop._time import utcnow
from mloop.deployments import queries
from mloop.deployments.revision import (
    Deployment,
    Route,
    check_endpoint,
    check_options,
    check_share,
    from_row,
    spec_of,
    version_key,
)
from mloop.errors import MloopError, NotFound
from mloop.store.schema import DeploymentRow


class DeploymentService(Service):
    """Deployment revisions. Reads need ``deployments.read``; deploy and undeploy ``deployments.write``;
    rollback ``deployments.rollback``; all on ``endpoint:NAME``."""

    def deploy(
        self,
        endpoint: str,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        canary: float | None = None,
        ab: Mapping[Any, float] | None = None,
        sticky_key: str | None = None,
        shadow: int | builtins.list[int] | tuple[int, ...] | None = None,
        options: Mapping[str, Any] | None = None,
        runtime: str = "native",
    ) -> Deployment:
        """A new revision of ``endpoint``.

        - ``version=`` or ``alias=``: that version takes all the traffic;
        - with ``canary=0.1``: it takes 10% and the live primary keeps the rest (same model);
        - ``ab={"v3": 0.5, "v4": 0.5}``: the listed versions split the traffic (shares sum to 1);
        - ``sticky_key="customer_id"``: a request's version follows from that field of its first row;
        - ``shadow=5``: version 5 gets a copy of every request, its answers logged, never returned;
        - ``runtime="onnx"``: every version serves from its ONNX export (``project.models.export``), which
          each must have; ``"native"`` (the default) serves each with its own flavour.
        """
        check_endpoint(endpoint)
        self._authorize("deployments.write", f"endpoint:{endpoint}")
        registry = self._registry()
        if ab is not None:
            if version is not None or alias is not None or canary is not None:
                raise MloopError("Pass either ab={...} or version=/alias= (with canary=), not both.")
            routes = self._ab_routes(model, ab, registry)
        else:
            if (version is None) == (alias is None):
                raise MloopError(
                    f"Say which version of {model!r} to deploy: version=N or alias='champion' (one of them)."
                )
            found = registry.get(model, version=version, alias=alias)
            routes = (Route(found.version, 1.0),)
            if canary is not None:
                routes = self._canary_routes(endpoint, model, found.version, check_share(canary, "canary"))
        shadows = self._shadows(model, shadow, routes, registry)
        if sticky_key is not None and (not isinstance(sticky_key, str) or not sticky_key):
            raise MloopError(f"sticky_key must be a request field name, got {sticky_key!r}.")
        _check_runtime(registry, model, routes, shadows, runtime)
        _check_index(self._ctx.settings.pipelines, registry, endpoint, model, routes, shadows)
        spec = Deployment(
            endpoint, 0, model, routes, shadows, sticky_key, alias, "deploy", options=check_options(options),
            runtime=runtime,
        )  # fmt: skip
        return self._append(endpoint, spec, "deployments.write")

    def rollback(self, endpoint: str) -> Deployment:
        """A new revision restoring the one the live revision replaced; rolling back again goes further
        back along the chain."""
        check_endpoint(endpoint)
        self._authorize("deployments.rollback", f"endpoint:{endpoint}")
        with self._ctx.store.read() as session:
            current = queries.latest(session, self._ctx.project_id, endpoint)
            if current is None:
                raise NotFound(queries.missing(session, self._ctx.project_id, endpoint))
            live = from_row(current)
            if live.previous is None:
                raise MloopError(
                    f"Endpoint {endpoint!r} has nothing to roll back to: revision {live.revision} is its first. "
                    f"Deploy another version, or undeploy it with `mloop undeploy {endpoint}`."
                )
            row = queries.revision(session, self._ctx.project_id, endpoint, live.previous)
            target = from_row(row)
        restored = Deployment(
            endpoint, 0, target.model, target.routes, target.shadow, target.sticky_key, target.alias,
            "rollback", previous=target.previous, active=target.active, options=target.options,
            runtime=target.runtime,
        )  # fmt: skip
        return self._append(endpoint, restored, "deployments.rollback", restored_revision=target.revision)

    def undeploy(self, endpoint: str) -> Deployment:
        """A new, inactive revision: the endpoint stops serving (404) until deployed or rolled back."""
        check_endpoint(endpoint)
        self._authorize("deployments.write", f"endpoint:{endpoint}")
        live = self.get(endpoint)
        if not live.active:
            raise MloopError(
                f"Endpoint {endpoint!r} is not deployed (revision {live.revision} undeployed it)."
            )
        spec = Deployment(
            endpoint, 0, live.model, live.routes, live.shadow, live.sticky_key, live.alias, "undeploy",
            active=False, options=live.options, runtime=live.runtime,
        )  # fmt: skip
        return self._append(endpoint, spec, "deployments.write")

    # ---- read -----------------------------------------------------------------------------------------

    def get(self, endpoint: str, revision: int | None = None) -> Deployment:
        """The live (newest) revision of ``endpoint``, or revision ``revision``."""
        self._authorize("deployments.read", f"endpoint:{endpoint}")
        with self._ctx.store.read() as session:
            if revision is not None:
                return from_row(queries.revision(session, self._ctx.project_id, endpoint, revision))
            row = queries.latest(session, self._ctx.project_id, endpoint)
            if row is None:
                raise NotFound(queries.missing(session, self._ctx.project_id, endpoint))
            return from_row(row)

    def list(
        self, *, include_inactive: bool = False, offset: int = 0, limit: int | None = None
    ) -> builtins.list[Deployment]:
        """The newest revision of every endpoint, by endpoint name (undeployed ones only if asked). A page
        (``limit`` from ``offset``) counts undeployed endpoints too, so pass ``include_inactive=True`` with
        it: :meth:`count` counts them all."""
        self._authorize("deployments.read", "endpoint:*")
        with self._ctx.store.read() as session:
            rows = queries.newest(session, self._ctx.project_id, offset=offset, limit=limit)
            found = [from_row(row) for row in rows]
        return [d for d in found if include_inactive or d.active]

    def count(self) -> int:
        """How many endpoints were ever deployed (undeployed ones included)."""
        self._authorize("deployments.read", "endpoint:*")
        with self._ctx.store.read() as session:
            return queries.endpoints(session, self._ctx.project_id)

    def history(
        self, endpoint: str, *, offset: int = 0, limit: int | None = None, newest_first: bool = False
    ) -> builtins.list[Deployment]:
        """The revisions of ``endpoint``, oldest first (or ``newest_first``): all, or ``limit`` from
        ``offset`` (the live revision's number is how many there are)."""
        self._authorize("deployments.read", f"endpoint:{endpoint}")
        with self._ctx.store.read() as session:
            rows = queries.history(session, self._ctx.project_id, endpoint, offset=offset, limit=limit,
                                   newest_first=newest_first)  # fmt: skip
            if not rows and queries.latest(session, self._ctx.project_id, endpoint) is None:
                raise NotFound(queries.missing(session, self._ctx.project_id, endpoint))
            return [from_row(row) for row in rows]

    def serving(self, model: str, version: int | None = None) -> builtins.list[Deployment]:
        """The live revisions that route traffic to (or shadow) ``model`` (``version`` of it, if given), by
        endpoint: what a model version's lineage ends in. Only endpoints the caller may read are listed."""
        self.actor.require_somewhere("deployments.read", "endpoint")
        with self._ctx.store.read() as session:
            live = [from_row(row) for row in queries.newest(session, self._ctx.project_id)]
        return [
            d for d in live
            if d.active and d.model == model and (version is None or version in d.versions)
            and self.actor.can("deployments.read", f"endpoint:{d.endpoint}")
        ]  # fmt: skip

    def stamp(self) -> int:
        """A number that grows with every new revision in the project (0 when there is none): one indexed
        query, for servers to poll."""
        with self._ctx.store.read() as session:
            return queries.stamp(session, self._ctx.project_id)

    # ---- internals ------------------------------------------------------------------------------------

    def _registry(self) -> Any:
        from mloop.registry.service import ModelRegistry

        return ModelRegistry(self._ctx)

    def _append(self, endpoint: str, spec: Deployment, permission: str, **payload: Any) -> Deployment:
        with self._mutate(permission, f"endpoint:{endpoint}", action=permission) as change:
            session = change.session
            latest = queries.latest(session, self._ctx.project_id, endpoint)
            revision = 1 if latest is None else latest.revision + 1
            body = spec_of(spec)
            if spec.kind != "rollback":
                body["previous"] = None if latest is None else latest.revision
            row = DeploymentRow(
                project_id=self._ctx.project_id,
                endpoint=endpoint,
                revision=revision,
                spec=body,
                created_at=utcnow(),
                created_by=self.actor.name,
            )
            session.add(row)
            session.flush()
            change.payload.update(
                revision=revision, kind=spec.kind, model=spec.model, routes=body["routes"],
                shadow=body["shadow"], active=spec.active, runtime=spec.runtime, **payload,
            )  # fmt: skip
            return from_row(row)

    def _canary_routes(self, endpoint: str, model: str, version: int, share: float) -> tuple[Route, ...]:
        with self._ctx.store.read() as session:
            row = queries.latest(session, self._ctx.project_id, endpoint)
        live = from_row(row) if row is not None else None
        if live is None or not live.active:
            raise MloopError(
                f"A canary needs a live version to compare with, and endpoint {endpoint!r} serves none: deploy "
                f"a version first (`mloop deploy {endpoint} {model} --version N`), then the canary."
            )
        if live.model != model:
            raise MloopError(
                f"Endpoint {endpoint!r} serves model {live.model!r}; a canary of {model!r} would mix two models. "
                "Deploy the new model on its own endpoint, or deploy it fully."
            )
        if live.primary == version:
            raise MloopError(
                f"Version {version} is already the primary of {endpoint!r}; canary another version."
            )
        if share >= 1:
            return (Route(version, 1.0),)
        return (Route(live.primary, 1.0 - share), Route(version, share))

    def _ab_routes(self, model: str, ab: Mapping[Any, float], registry: Any) -> tuple[Route, ...]:
        if not ab:
            raise MloopError(
                'ab= needs at least one version and its share, for example {"v3": 0.5, "v4": 0.5}.'
            )
        routes = []
        for key, share in ab.items():
            number = version_key(key)
            registry.get(model, version=number)
            routes.append(Route(number, check_share(share, f"The share of v{number}")))
        if len({r.version for r in routes}) != len(routes):
            raise MloopError("ab= lists a version twice; list each version once.")
        total = sum(r.weight for r in routes)
        if abs(total - 1.0) > 1e-6:
            raise MloopError(f"The ab= shares sum to {total:g}; make them sum to 1.")
        return tuple(routes)

    def _shadows(self, model: str, shadow: Any, routes: tuple[Route, ...], registry: Any) -> tuple[int, ...]:
        if shadow is None:
            return ()
        versions = [shadow] if isinstance(shadow, int) else list(shadow)
        out = []
        for version in versions:
            if isinstance(version, bool) or not isinstance(version, int):
                raise MloopError(f"shadow= takes version numbers, got {version!r}.")
            if any(r.version == version for r in routes):
                raise MloopError(
                    f"Version {version} already serves traffic here; a shadow must be another version."
                )
            registry.get(model, version=version)
            out.append(version)
        return tuple(dict.fromkeys(out))


def _check_runtime(
    registry: Any, model: str, routes: tuple[Route, ...], shadows: tuple[int, ...], runtime: str
) -> None:
    """Every version to serve has what ``runtime`` loads (an export of that format, unless native)."""
    from mloop.registry.exports import RUNTIMES

    if runtime not in RUNTIMES:
        raise MloopError(f"Runtime {runtime!r} is not one of: {', '.join(RUNTIMES)}.")
    if runtime == "native":
        return
    versions = [r.version for r in routes] + [v for v in shadows if v not in {r.version for r in routes}]
    missing = [v for v in versions if not any(e.format == runtime for e in registry.exports(model, v))]
    if missing:
        shown = ", ".join(f"v{v}" for v in missing)
        raise MloopError(
            f"Runtime {runtime!r} serves each version from its {runtime} export, and {model!r} {shown} "
            f"{'has' if len(missing) == 1 else 'have'} none: `mloop models export {model}:{missing[0]} "
            f"--format {runtime}` first, or deploy with the native runtime."
        )


def _check_index(
    pipelines: Mapping[str, Any], registry: Any, endpoint: str, model: str, routes: tuple[Route, ...],
    shadows: tuple[int, ...],
) -> None:  # fmt: skip
    """An endpoint that a pipeline's retrieve stage calls serves only versions whose vector index was built
    from that very version: a user tower searching another version's item embeddings answers nonsense."""
    if endpoint in pipelines:
        raise MloopError(
            f"{endpoint!r} is a pipeline endpoint (pipelines: in mloop.yaml); its stages are endpoints of their "
            "own: deploy to those, or rename the pipeline."
        )
    from mloop.config.pipelines import retrieve_endpoints

    pipeline = retrieve_endpoints(dict(pipelines)).get(endpoint)
    if pipeline is None:
        return
    for version in dict.fromkeys([r.version for r in routes] + list(shadows)):
        if registry.index_stamp(model, version) is None:
            raise MloopError(
                f"Endpoint {endpoint!r} is the retrieve stage of pipeline {pipeline!r}, and {model!r} v{version} "
                f"has no vector index: attach one built from its item embeddings first "
                f"(project.models.attach_index({model!r}, {version}, VectorIndex.build(...)))."
            )
        source = tuple(registry.index(model, version).source or ())
        if len(source) != 2 or (str(source[0]), int(source[1])) != (model, version):
            raise MloopError(
                f"Endpoint {endpoint!r} is the retrieve stage of pipeline {pipeline!r}, and the index attached "
                f"to {model!r} v{version} was built from {source or 'an unknown model'}: its item embeddings "
                f"do not match this user tower. Rebuild it from v{version} "
                f"(project.models.rebuild_index({model!r}, {version}, index))."
            )
