"""``project.deployments``: which model versions serve each endpoint, as numbered revisions
(:class:`Deployment`), changed only through :class:`DeploymentService` (deploy, canary, A/B, shadow,
rollback, undeploy), each change an audit event. The inference service reads the live revisions; the
loop writes its canary steps and rollbacks here.

>>> project.deployments.deploy("fraud", "fraud", version=2, canary=0.1)   # doctest: +SKIP
"""

from mloop.deployments.revision import Deployment, Route
from mloop.deployments.service import DeploymentService

__all__ = ["Deployment", "DeploymentService", "Route"]
