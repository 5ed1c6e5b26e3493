"""Feature references: ``"view:feature"``, ``"view:*"``, for feature views and on-demand views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mloop.errors import SchemaError
from mloop.features.definitions import FeatureView, OnDemandView


@dataclass
class Resolved:
    views: dict[str, list[str]] = field(default_factory=dict)  # feature view -> features, in request order
    on_demand: list[tuple[OnDemandView, list[str]]] = field(default_factory=list)
    objects: dict[str, FeatureView | OnDemandView] = field(default_factory=dict)

    @property
    def view_names(self) -> list[str]:
        return list(self.views)


def resolve(refs: Sequence[str], objects: Mapping[str, FeatureView | OnDemandView]) -> Resolved:
    if isinstance(refs, str):
        refs = [refs]
    if not refs:
        raise SchemaError("No features asked for: pass features=['view:feature', 'view:*', ...].")
    out = Resolved()
    on_demand: dict[str, list[str]] = {}
    for ref in refs:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise SchemaError(f"Feature reference {ref!r} must look like 'view:feature' or 'view:*'.")
        name, feature = ref.split(":")
        item = objects.get(name)
        if item is None:
            known = ", ".join(sorted(objects)) or "none applied yet"
            raise SchemaError(
                f"Unknown feature view {name!r} in {ref!r}; views: {known}. Apply it with mloop features apply."
            )
        available = item.feature_names
        wanted = available if feature == "*" else [feature]
        for f in wanted:
            if f not in available:
                raise SchemaError(
                    f"Feature view {name!r} has no feature {f!r}; it has: {', '.join(available)}."
                )
        out.objects[name] = item
        if isinstance(item, OnDemandView):
            target = on_demand.setdefault(name, [])
        else:
            target = out.views.setdefault(name, [])
        target.extend(f for f in wanted if f not in target)
    for name, outputs in on_demand.items():
        odv = objects[name]
        assert isinstance(odv, OnDemandView)
        out.on_demand.append((odv, outputs))
        for ref in odv.inputs:
            view_name = ref.split(":")[0]
            view = objects.get(view_name)
            if not isinstance(view, FeatureView):
                raise SchemaError(f"On-demand view {name!r} reads {ref!r}, but {view_name!r} is not applied.")
            out.objects[view_name] = view
    return out
