"""Erasure in the feature store: the push log's files and the online store's rows and events of a subject.

The offline store has no tables of its own: a training set reads datasets (erased by
:mod:`mloop.data.erasure`), push logs (here) and Parquet sources that are the user's own files, which
mloop does not rewrite (:meth:`FeatureEraser.external` names the views that read one).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from mloop._service import Service
from mloop.data.erasure import column_equals, filter_file
from mloop.data.sources import ParquetSource
from mloop.features import queries
from mloop.features.definitions import DatasetSource, Entity, FeatureView, PushSource
from mloop.features.online import open_online_store
from mloop.features.online.base import OnlineStore, entity_key
from mloop.features.tables import push_log


@dataclass
class FeatureErasure:
    """What erasure found (or removed) in the feature store."""

    push_rows: dict[str, int] = field(default_factory=dict)  # push source -> rows
    online_keys: dict[str, int] = field(default_factory=dict)  # feature view -> keys that held values
    external: list[str] = field(default_factory=list)  # views reading files mloop does not manage
    composite: list[str] = field(default_factory=list)  # views keyed by several columns: not erased online

    def to_dict(self) -> dict[str, Any]:
        return {"push_rows": self.push_rows, "online_keys": self.online_keys, "external": self.external,
                "composite_keys": self.composite}  # fmt: skip


class FeatureEraser(Service):
    """The feature store's part of erasure; the caller checks the permission and audits."""

    def erase(self, column: str, value: Any, *, dry_run: bool) -> FeatureErasure:
        found = FeatureErasure()
        views = self.views()
        self._push_log(column, value, found, dry_run=dry_run)
        store = self._online()
        for view, version in views:
            if column not in view.join_keys:
                continue
            if isinstance(view.source, ParquetSource):
                found.external.append(view.name)
            if len(view.join_keys) > 1:
                found.composite.append(view.name)
                continue
            keys = candidate_keys(value)
            namespace = f"{view.name}.v{version}"
            if dry_run:
                read = store.read([(namespace, k) for k in keys], [(namespace, k, -(2**62)) for k in keys])
                held = sum(1 for row, events in zip(read.rows, read.events, strict=True) if row or events)
            else:
                held = store.delete(namespace, keys)
            found.online_keys[view.name] = held
        return found

    def views(self) -> list[tuple[FeatureView, int]]:
        """Every applied feature view with its version."""
        with self._ctx.store.read() as session:
            stored = queries.latest(session, self._ctx.project_id)
        out = []
        for (kind, name), item in stored.items():
            if kind == "feature_view":
                view = queries.load(stored, kind, name)
                assert isinstance(view, FeatureView)
                out.append((view, item.version))
        return out

    def pii_names(self) -> set[str]:
        """Every name tagged PII in the feature definitions: tagged fields of views, on-demand views and
        push sources, and the join keys of tagged entities."""
        with self._ctx.store.read() as session:
            stored = queries.latest(session, self._ctx.project_id)
        names: set[str] = set()
        for (kind, name), _ in stored.items():
            item = queries.load(stored, kind, name)
            if isinstance(item, Entity) and item.pii:
                names.update(item.join_keys)
            fields = [
                *getattr(item, "features", ()),
                *getattr(item, "outputs", ()),
                *getattr(item, "request", ()),
            ]
            if isinstance(item, PushSource):
                fields += list(item.schema)
            names.update(f.name for f in fields if getattr(f, "pii", False))
        return names

    def sources(self, views: list[str]) -> dict[str, tuple[str, str]]:
        """``{view: ("dataset" | "push" | "parquet", name)}`` of the named views that still exist."""
        out = {}
        for view, _ in self.views():
            if view.name in views:
                source = view.source
                if isinstance(source, DatasetSource):
                    out[view.name] = ("dataset", source.dataset)
                elif isinstance(source, PushSource):
                    out[view.name] = ("push", source.name)
                else:
                    out[view.name] = ("parquet", "")
        return out

    def _push_log(self, column: str, value: Any, found: FeatureErasure, *, dry_run: bool) -> None:
        storage = self._ctx.data
        root = push_log(storage, "")
        remove = column_equals(column, value)
        by_source: dict[str, list[str]] = {}
        with storage.reaching():
            for path in storage.list(root):
                by_source.setdefault(path[len(root) :].strip("/").split("/", 1)[0], []).append(path)
            for source, paths in sorted(by_source.items()):
                rows = sum(
                    filter_file(p, remove, dry_run=dry_run, parquet=self._ctx.parquet)[0] for p in paths
                )
                if rows:
                    found.push_rows[source] = rows

    def _online(self) -> OnlineStore:
        return self._ctx.resources.get(
            "online_store",
            lambda: open_online_store(
                self._ctx.settings.online_url, timeout=self._ctx.settings.online_timeout_ms / 1000
            ),
        )


def candidate_keys(value: Any) -> list[str]:
    """The online keys ``value`` may be stored under: as given, and as the integer a text of digits
    names (the command line gives text; a join key is often an integer)."""
    keys = [entity_key([value])]
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            keys.append(entity_key([int(value)]))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        keys.append(entity_key([str(value)]))
    return list(dict.fromkeys(keys))
