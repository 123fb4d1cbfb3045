"""Several targets in one network pass per frame.

Each target keeps its own state (a :class:`SiameseTracker`: centre, size,
first-frame mean, template features). Per frame, every target's search crop is
stacked into one batch that the engine runs against the batch of templates,
sample ``i`` against template ``i``; decoding, penalty, window and smoothing
then run per target exactly as for a single target.
"""
from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np

from .params import TrackerParams
from .tracker import SiameseTracker, TrackResult, picks_on_device


class MultiTracker:
    """``init(frame, boxes)`` then ``update(frame) -> [TrackResult, ...]`` (one per box, in order)."""

    def __init__(self, engine: Any, params: TrackerParams) -> None:
        self.engine = engine
        self.params = params
        self.targets: List[SiameseTracker] = []
        self._zf: Any = None

    def init(self, frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> None:
        """Start tracking every box of ``boxes`` on ``frame`` (replaces any earlier targets)."""
        self.targets = []
        for box in boxes:
            target = SiameseTracker(self.engine, self.params)
            target.init(frame, box)
            self.targets.append(target)
        self._join()

    def add(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Add one more target, initialised on ``frame``."""
        target = SiameseTracker(self.engine, self.params)
        target.init(frame, box)
        self.targets.append(target)
        self._join()

    def _join(self) -> None:
        zfs = [t._zf for t in self.targets]
        join = getattr(self.engine, "join_templates", None)
        self._zf = zfs[0] if len(zfs) == 1 or join is None else join(zfs)

    def update(self, frame: np.ndarray) -> List[TrackResult]:
        """Locate every target in the next frame with one batched network call."""
        if not self.targets:
            raise RuntimeError("update() called before init()")
        p = self.params
        if getattr(self.engine, "device_crop", False):
            regions = [t.search_region(p.instance_size) for t in self.targets]
            scales = [scale_z for _, scale_z in regions]
            args = (frame, [r for r, _ in regions], p.instance_size, [t._avg for t in self.targets],
                    p.input_order == "rgb", self._zf)
            if picks_on_device(self.engine, self.targets[0]._grid.shape[1]):
                rows = self.engine.track_regions(*args, select=self.targets[0].selection(self.targets,
                                                                                         p.window_influence))
                return [t.commit(frame, t.finish(rows[i], scales[i])) for i, t in enumerate(self.targets)]
            cls, loc = self.engine.track_regions(*args)
        else:
            crops = [t.search_patch(frame, p.instance_size) for t in self.targets]
            batch = np.stack([patch for patch, _ in crops])
            if len(self.targets) > 1 and getattr(self.engine, "join_templates", None) is None:
                outputs = [self.engine.track(patch[None], t._zf) for (patch, _), t in zip(crops, self.targets)]
                cls = np.concatenate([c for c, _ in outputs])
                loc = np.concatenate([l for _, l in outputs])
            else:
                cls, loc = self.engine.track(batch, self._zf)
            scales = [scale_z for _, scale_z in crops]
        return [
            t.commit(frame, t.pick(cls[i], loc[i], scale_z, p.window_influence))
            for i, (t, scale_z) in enumerate(zip(self.targets, scales))
        ]
