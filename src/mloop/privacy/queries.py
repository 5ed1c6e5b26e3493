"""The SQL of ``project.privacy``: model versions and the feature views their lineage names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mloop.store.schema import ModelVersionRow, RegisteredModelRow


def trained_on(session: Session, project_id: int, views: set[str]) -> list[str]:
    """``"model vN"`` of every model version whose lineage names one of ``views``, oldest first."""
    if not views:
        return []
    rows = session.execute(
        select(RegisteredModelRow.name, ModelVersionRow.version, ModelVersionRow.lineage)
        .join(ModelVersionRow, ModelVersionRow.model_id == RegisteredModelRow.id)
        .where(RegisteredModelRow.project_id == project_id)
        .order_by(RegisteredModelRow.name, ModelVersionRow.version)
    )
    out = []
    for model, version, lineage in rows:
        named = [
            (v.get("name") if isinstance(v, dict) else v) for v in (lineage or {}).get("feature_views", [])
        ]
        if views.intersection(n for n in named if isinstance(n, str)):
            out.append(f"{model} v{version}")
    return out
