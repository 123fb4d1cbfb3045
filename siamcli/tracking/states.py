"""Target-loss states, decided from the raw score of each frame.

``tracking``  score >= ``params.uncertain_threshold``
``uncertain`` ``params.lost_threshold`` <= score < ``params.uncertain_threshold``
``lost``      score < ``params.lost_threshold``
"""
from __future__ import annotations

TRACKING = "tracking"
UNCERTAIN = "uncertain"
LOST = "lost"


def classify(score: float, params) -> str:
    """The state of a frame whose best raw score is ``score`` under ``params``' thresholds."""
    if score < params.lost_threshold:
        return LOST
    if score < params.uncertain_threshold:
        return UNCERTAIN
    return TRACKING
