"""The continuous-training loop: policies, triggers, gates, canary rollouts, promotion and rollback."""

from mloop.loop.policy import (
    Canary,
    Gate,
    LoopPolicy,
    OnDrift,
    OnNewData,
    OnPerformance,
    OnSLOBreach,
    Schedule,
)

__all__ = ["Canary", "Gate", "LoopPolicy", "OnDrift", "OnNewData", "OnPerformance", "OnSLOBreach", "Schedule"]
