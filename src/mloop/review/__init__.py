"""The architecture review of a live project (``mloop review``): checks across the nine concerns of an
architecture review, each with its evidence and fix; the ML Test Score and the MLOps maturity level they
give; delivery (DORA) and ML team metrics; cost and energy.

This package reads the whole project through :class:`~mloop.review.platform.Reviewed`; ``Project`` is one.
"""

from mloop.review.model import CHECKS, CONCERNS, SEVERITIES, Check, Finding, Outcome
from mloop.review.service import Review, Reviews

__all__ = ["CHECKS", "CONCERNS", "SEVERITIES", "Check", "Finding", "Outcome", "Review", "Reviews"]
