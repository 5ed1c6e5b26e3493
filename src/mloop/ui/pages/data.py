"""``/ui/data``: the datasets with their row counts and last ingestion; ``/ui/data/{dataset}``: its
ingestions and its quarantined rows with their reasons, each list paged in the database;
``/ui/data/{dataset}/quarantine.csv``: every quarantined row with its reasons, streamed as CSV.
The same from the CLI: ``mloop data list``, ``mloop data show NAME``, ``mloop data quarantine NAME``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from mloop.errors import MloopError
from mloop.ui.pages._paging import Paging
from mloop.ui.render import error_page, render
from mloop.ui.session import Sessions

INTERNAL = ("_row", "_line", "_file", "_reason", "_reasons", "_raw", "_ingest_id")


def router(sessions: Sessions) -> APIRouter:
    r = APIRouter()

    @r.get("/data")
    def datasets(request: Request) -> HTMLResponse:
        viewer = sessions.viewer(request)
        paging = Paging.read(request)
        try:
            rows, total = viewer.data.dataset_page(offset=paging.offset, limit=paging.per)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "data.html", viewer, title="Data", page="data", cli="mloop data list",
                      rows=rows, pager=paging.links(request, total, label="datasets"))  # fmt: skip

    @r.get("/data/{dataset}")
    def dataset(request: Request, dataset: str) -> HTMLResponse:
        viewer = sessions.viewer(request)
        ingested = Paging.read(request, param="page", per=20)
        held = Paging.read(request, param="qpage", per=50)
        try:
            info = viewer.data.info(dataset)
            ingestions, n_ingestions = viewer.data.ingestion_page(dataset, offset=ingested.offset,
                                                                  limit=ingested.per)  # fmt: skip
            frame, n_held = viewer.data.quarantine_page(dataset, offset=held.offset, limit=held.per)
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return render(request, "data_dataset.html", viewer, title=f"Dataset {dataset}", page="data",
                      cli=f"mloop data show {dataset} --all && mloop data quarantine {dataset}", info=info,
                      ingestions=ingestions, ingestion_pager=ingested.links(request, n_ingestions, label="ingestions"),
                      quarantined=_quarantined(frame.to_dict(orient="records")),
                      quarantine_pager=held.links(request, n_held, label="quarantined rows"))  # fmt: skip

    @r.get("/data/{dataset}/quarantine.csv")
    def quarantine_csv(request: Request, dataset: str) -> Response:
        viewer = sessions.viewer(request)
        try:
            batches = viewer.data.quarantine_batches(dataset)  # checks data.read before anything is sent
        except MloopError as exc:
            return error_page(request, viewer, exc)
        return StreamingResponse(_csv(batches), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{_filename(dataset)}-quarantine.csv"'})  # fmt: skip

    return r


def _quarantined(records: list[dict[Any, Any]]) -> list[dict[str, Any]]:
    """Each row as a person reads it (as ``mloop data quarantine`` prints it): where it was, why it was
    refused, and the values of the row."""
    out = []
    for record in records:
        reasons = str(_present(record.get("_reasons")) or _present(record.get("_reason")) or "")
        values = {k: v for k, v in record.items() if k not in INTERNAL and _present(v) is not None}
        row = _present(record.get("_row"))
        out.append({"row": int(row) + 1 if row is not None else None, "line": _present(record.get("_line")),
                    "file": _present(record.get("_file")), "reasons": reasons.split("; ") if reasons else [],
                    "cells": values, "raw": _present(record.get("_raw"))})  # fmt: skip
    return out


def _present(value: Any) -> Any:
    """None for a missing cell (None, NaN, NaT, empty text), else the value."""
    if value is None or value != value or value == "":  # NaN != NaN
        return None
    return value


def _csv(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    """CSV text, one chunk per batch, the header once (pyarrow writes what DuckDB read, typed)."""
    header = True
    for batch in batches:
        sink = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), sink, pacsv.WriteOptions(include_header=header))
        header = False
        yield sink.getvalue()


def _filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
