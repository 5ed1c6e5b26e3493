"""Fraud detection on card transactions: a synthetic generator, a bundled sample and its schema."""

from pathlib import Path

HERE = Path(__file__).parent
SAMPLE_CSV = HERE / "transactions.csv"
SCHEMA_YAML = HERE / "transactions.yaml"
