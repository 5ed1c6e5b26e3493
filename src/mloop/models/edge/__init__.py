"""Edge packages: a version's ONNX model with its signature, preprocessing constants, a checksum manifest
and a runner that needs only ``numpy`` and ``onnxruntime`` (see :mod:`mloop.models.edge.build`)."""

from mloop.models.edge.build import EdgePackage, check_preprocessing, raw_inputs, write_package

__all__ = ["EdgePackage", "check_preprocessing", "raw_inputs", "write_package"]
