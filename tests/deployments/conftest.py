"""The deployment tests use the served fraud project of the serving tests (two trained versions)."""

from tests.serving.conftest import trained, trained_template

__all__ = ["trained", "trained_template"]
