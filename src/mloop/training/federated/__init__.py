"""Federated training: one process per client, each training on its own partition, only weights and
scalars crossing to the aggregator (FedAvg or FedProx, optionally with Opacus DP-SGD).

>>> pipeline = ml.TrainingPipeline(..., model=TorchClassifier(MLP, module__inputs=30),
...                                federated=Federated(clients="field_region", rounds=20))  # doctest: +SKIP
"""

from mloop.training.federated.partitions import ClientData, FramePartition, Partition, PipelinePartition
from mloop.training.federated.protocol import ProtocolError
from mloop.training.federated.runner import FederatedResult, train
from mloop.training.federated.spec import DP, Federated

__all__ = [
           "DP",
           "ClientData",
           "Federated",
           "FederatedResult",
           "FramePartition",
           "Partition",
           "PipelinePartition",
           "ProtocolError",
           "train",
]  # fmt: skip
