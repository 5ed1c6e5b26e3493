"""Server-side pages of a list: ``?page=N&per=M`` read and bounded once, the offset handed to the service
(which cuts the list in the database), and the links of the pager that ``fragments/pager.html`` draws.

>>> paging = Paging.read(request, param="page")          # doctest: +SKIP
>>> rows, total = viewer.data.dataset_page(offset=paging.offset, limit=paging.per)   # doctest: +SKIP
>>> pager = paging.links(request, total)                  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

PER = 50
MAX_PER = 500


@dataclass(frozen=True)
class Paging:
    page: int
    per: int
    param: str  # the page number's query parameter (two lists on one page need two: page/per, qpage/qper)

    @classmethod
    def read(cls, request: Request, *, param: str = "page", per: int = PER) -> Paging:
        return cls(_int(request.query_params.get(param), 1, 1, 10**9),
                   _int(request.query_params.get(param.replace("page", "per")), per, 1, MAX_PER), param)  # fmt: skip

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per

    def links(self, request: Request, total: int, *, label: str = "rows") -> dict[str, Any]:
        """What the pager shows: where this page is in ``total`` and the links to its neighbours."""
        last = max(1, -(-total // self.per))
        return {
            "page": self.page, "last": last, "total": total, "label": label, "param": self.param,
            "first_row": min(total, self.offset + 1), "last_row": min(total, self.offset + self.per),
            "prev": _link(request, self.param, self.page - 1) if self.page > 1 else None,
            "next": _link(request, self.param, self.page + 1) if self.page < last else None,
        }  # fmt: skip

    def open_ended(self, request: Request, shown: int, more: bool, *, label: str = "rows") -> dict[str, Any]:
        """:meth:`links` for a list that is not counted: the service was asked for one row more than a
        page (``more``: it had it), so there is a next page exactly when that row came back."""
        known = self.offset + shown + (1 if more else 0)
        pager = self.links(request, known, label=label)
        pager.update(total=None, last=None)
        return pager


def _link(request: Request, param: str, page: int) -> str:
    """This page's path and query with another page number: relative, so it holds behind a proxy."""
    url = request.url.include_query_params(**{param: page})
    return f"{url.path}?{url.query}"


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        value = default
    return min(max(value, low), high)
