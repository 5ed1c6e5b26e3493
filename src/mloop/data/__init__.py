"""Data ingestion and validation (``project.data``): sources (CSV, Parquet, DataFrames, DuckDB SQL),
dataset schemas, the rules checked on every row, quarantine of bad rows with their reasons, and the
catalog of datasets and their ingestions."""
