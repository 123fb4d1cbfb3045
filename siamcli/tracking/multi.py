"""Several targets in one network pass per frame.

Each target keeps its own state (a :class:`SiameseTracker`: centre, size, first-frame mean,
template features). Per frame, every target's search crop is stacked into one batch that the
engine runs against the batch of templates, sample ``i`` against template ``i``; each target's
decoder then reads its own sample exactly as for a single target.
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from .engine import Engine
from .params import TrackerParams
from .tracker import SiameseTracker, TrackResult


class MultiTracker:
    """``init(frame, boxes)`` then ``update(frame) -> [TrackResult, ...]`` (one per box, in order)."""

    def __init__(self, engine: Engine, params: TrackerParams) -> None:
        self.engine = engine
        self.params = params
        self.targets: List[SiameseTracker] = []
        self._features: Any = None

    def init(self, frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> None:
        """Start tracking every box of ``boxes`` on ``frame`` (replaces any earlier targets)."""
        self.targets = []
        for box in boxes:
            self.add(frame, box)

    def add(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Add one more target, initialised on ``frame``."""
        target = SiameseTracker(self.engine, self.params)
        target.init(frame, box)
        self.targets.append(target)
        features = [t.features for t in self.targets]
        self._features = features[0] if len(features) == 1 else self.engine.join_templates(features)

    def update(self, frame: np.ndarray) -> List[TrackResult]:
        """Locate every target in the next frame with one batched network call."""
        if not self.targets:
            raise RuntimeError("update() called before init()")
        p = self.params
        if self.engine.crops_on_device:
            regions = [t.search_region(p.instance_size) for t in self.targets]
            cls, loc = self.engine.track_regions(frame, [r for r, _ in regions], p.instance_size,
                                                 [t.fill for t in self.targets], p.input_order == "rgb",
                                                 self._features)
            scales = [scale_z for _, scale_z in regions]
        else:
            crops = [t.search_patch(frame, p.instance_size) for t in self.targets]
            cls, loc = self.engine.track(np.stack([patch for patch, _ in crops]), self._features)
            scales = [scale_z for _, scale_z in crops]
        return [t.commit(frame, t.locate(cls[i], loc[i], scales[i], p.window_influence))
                for i, t in enumerate(self.targets)]
