"""Batch scoring (``mloop score``): a Parquet file of rows in, the same rows with their predictions out
(:func:`score`), features looked up point in time, chunks scored in a pool of worker processes; with
``partition_by`` a resumable folder of partitions, which :class:`ScoringJob` fills on the loop's schedule and
:func:`export_geojson` turns into a map layer."""

from mloop.serving.scoring.geojson import GeoJSONReport, export_geojson
from mloop.serving.scoring.job import ScoreReport, score
from mloop.serving.scoring.partitions import read_scores
from mloop.serving.scoring.scheduled import ScoringJob

__all__ = ["GeoJSONReport", "ScoreReport", "ScoringJob", "export_geojson", "read_scores", "score"]
