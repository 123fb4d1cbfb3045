"""Re-detection after target loss, in the manner of pysot's long-term SiamRPN tracker.

While the target is lost the tracker keeps the last confident box and searches
a wider region around it each frame (the search patch grows by
``params.redetect_growth`` pixels per lost frame up to
``params.lost_instance_size``, with the cosine window almost switched off,
``params.lost_window_influence``). A candidate scoring at least
``params.recover_threshold`` ends the loss: the target moves there and normal
tracking (the reference ``update``) resumes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .states import LOST, TRACKING
from .tracker import SiameseTracker, TrackResult


class RedetectingTracker:
    """Wraps a :class:`SiameseTracker`; same ``init`` / ``update`` interface."""

    def __init__(self, tracker: SiameseTracker) -> None:
        self.tracker = tracker
        self.lost_frames = 0
        self._confident = (np.zeros(2), np.zeros(2))

    @property
    def engine(self):
        return self.tracker.engine

    @property
    def params(self):
        return self.tracker.params

    @params.setter
    def params(self, value) -> None:
        self.tracker.params = value

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        self.tracker.init(frame, box)
        self.lost_frames = 0
        self._remember()

    def _remember(self) -> None:
        self._confident = (self.tracker.center.copy(), self.tracker.size.copy())

    def _confident_box(self):
        (cx, cy), (w, h) = self._confident
        return (float(cx - w / 2), float(cy - h / 2), float(w), float(h))

    def search_size(self) -> int:
        """Side of the search patch for the current lost frame count (no wider than the engine
        runs: NanoTrack's published head.onnx takes one search size only)."""
        p = self.params
        widest = self.engine.max_instance_size or p.lost_instance_size
        return int(min(p.instance_size + self.lost_frames * p.redetect_growth, p.lost_instance_size, widest))

    def update(self, frame: np.ndarray) -> TrackResult:
        t, p = self.tracker, self.params
        if not self.lost_frames:
            result = t.update(frame)
            if result.state == TRACKING:
                self._remember()
            if result.state != LOST:
                return result
            # lost: go back to the last confident box and widen the search from the next frame on
            t.center, t.size = self._confident[0].copy(), self._confident[1].copy()
            self.lost_frames = 1
            return TrackResult(self._confident_box(), result.score, LOST)

        found = t.search(frame, self.search_size(), p.lost_window_influence)
        if found.score < p.recover_threshold:
            self.lost_frames += 1
            return TrackResult(self._confident_box(), found.score, LOST)
        self.lost_frames = 0
        result = t.commit(frame, found)
        if result.state == TRACKING:
            self._remember()
        return result
