"""Faults on purpose in the user's own deployment (``mloop chaos run``): each bounded in time, on this
machine only, under steady load, with what the clients saw measured.

>>> from mloop.chaos import run
>>> result = run(project, "online-store-pause", endpoint="fraud", seconds=5)   # doctest: +SKIP
>>> result.row()["recovery_s"]                                                 # doctest: +SKIP
0.02
"""

from mloop.chaos.experiment import run
from mloop.chaos.faults import FAULTS, MAX_SECONDS, ChaosRefused
from mloop.chaos.result import ChaosResult, Phase

__all__ = ["FAULTS", "MAX_SECONDS", "ChaosRefused", "ChaosResult", "Phase", "run"]
