"""The Siamese tracker, step for step as the published reference trackers run it.

Per frame: crop the search region around the last centre (context-padded, first-frame-mean
filled; :mod:`.crop`), run the network against the template features kept since ``init``
(:class:`.engine.Engine`), let the head family's decoder pick the best candidate and smooth the
size (:mod:`.decode`), clip to the frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Tuple

import cv2
import numpy as np

from ..errors import SiamcliError, quoted
from .crop import CROPS, channel_mean, context_size, square
from .decode import Decoder, Found, decoder_for
from .engine import Engine, Region
from .params import TrackerParams
from .states import LOST, TRACKING, classify

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer: ``box`` as 0-based (x, y, w, h) floats, the raw score and the
    loss state (``"tracking"``, ``"uncertain"`` or ``"lost"``, see :func:`.states.classify`).

    It also unpacks as OpenCV's trackers answer, ``ok, box = tracker.update(frame)``, ``ok``
    being :attr:`ok`, so that code written for ``cv2.Tracker`` runs unchanged.
    """

    box: Box
    score: float
    state: str = TRACKING

    @property
    def ok(self) -> bool:
        """Whether the target is still held: the state is not ``"lost"``."""
        return self.state != LOST

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ok, self.box))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Any:
        return (self.ok, self.box)[index]


#: smallest width and height of a first box, in pixels: the template is cut around it
MIN_BOX_SIDE = 1.0
#: how many times the frame's width, height and area a first box may span. Coordinates meant
#: for a larger source still track (with a warning, see :func:`siamcli.frame_loop.outside_warnings`);
#: the context square of a box far beyond that would take gigabytes to cut.
MAX_BOX_FRAMES = 16


def validate_box(box: Sequence[float], frame_shape: Sequence[int]) -> Box:
    """Check an initial box against the frame; raise :class:`SiamcliError` if unusable."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError, OverflowError):
        raise SiamcliError(f"a box needs four numbers x,y,w,h, got {quoted(box)}") from None
    text = f"box {x:g},{y:g},{w:g},{h:g}"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise SiamcliError(f"{text} has a non-finite value")
    if w <= 0 or h <= 0:
        raise SiamcliError(f"{text} has zero or negative size; width and height must be > 0")
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise SiamcliError(f"{text} is smaller than a pixel; width and height must be at least "
                           f"{MIN_BOX_SIDE:g}")
    height, width = frame_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise SiamcliError(
            f"{text} lies outside the {width}x{height} frame"
        )
    k = MAX_BOX_FRAMES
    if w > k * width or h > k * height or w * h > k * width * height:
        raise SiamcliError(f"{text} is far larger than the {width}x{height} frame (at most {k} times its "
                           "width, height and area); are its coordinates for this source's size?")
    return x, y, w, h


class SiameseTracker:
    """Single-target tracker: ``init(frame, box)`` then ``update(frame)`` per frame.

    ``engine`` runs the network (:class:`.engine.Engine`); ``params`` are the tracker settings of
    the model (changing them later changes the decoder with them).
    """

    def __init__(self, engine: Engine, params: TrackerParams) -> None:
        self.engine = engine
        self.params = params
        self.features: Any = None
        self.fill = np.zeros(3)
        self.center = np.zeros(2)
        self.size = np.zeros(2)

    @property
    def params(self) -> TrackerParams:
        return self._params

    @params.setter
    def params(self, value: TrackerParams) -> None:
        self._params = value
        self.decoder: Decoder = decoder_for(value)

    def _prepare(self, patch: np.ndarray) -> np.ndarray:
        if self.params.input_order == "rgb":
            return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
        return patch

    def _context(self) -> float:
        return context_size(self.size[0], self.size[1], self.params.context_amount)

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Start tracking the target in ``box`` (0-based x, y, w, h) on ``frame`` (BGR uint8)."""
        x, y, w, h = validate_box(box, frame.shape)
        p = self.params
        self.center = np.array([x + (w - 1) / 2, y + (h - 1) / 2], dtype=np.float64)
        self.size = np.array([w, h], dtype=np.float64)
        self.fill = channel_mean(frame)
        z = CROPS[p.crop](frame, self.center, p.exemplar_size, round(self._context()), self.fill)
        self.features = self.engine.template(self._prepare(z))

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next frame."""
        p = self.params
        return self.commit(frame, self.search(frame, p.instance_size, p.window_influence))

    def commit(self, frame: np.ndarray, found: Found) -> TrackResult:
        """Clip a search's answer to the frame and keep it as the new state."""
        p = self.params
        cx, cy, width, height, best_score = found
        frame_h, frame_w = frame.shape[:2]
        cx = min(max(cx, 0.0), float(frame_w))
        cy = min(max(cy, 0.0), float(frame_h))
        width = min(max(width, p.min_size), float(frame_w))
        height = min(max(height, p.min_size), float(frame_h))

        self.center = np.array([cx, cy])
        self.size = np.array([width, height])
        box = (cx - width / 2, cy - height / 2, width, height)
        return TrackResult(box=tuple(float(v) for v in box), score=best_score, state=classify(best_score, p))

    def search(self, frame: np.ndarray, instance_size: int, window_influence: float) -> Found:
        """One search around the current centre: the decoder's answer, unclipped.

        ``update`` runs it with the model's own ``instance_size`` and window; the
        re-detector (:mod:`.redetect`) with a wider region and almost no window.
        Nothing is stored: the caller decides whether to move the target.
        """
        if self.features is None:
            raise RuntimeError("update() called before init()")
        if self.engine.crops_on_device:
            region, scale_z = self.search_region(instance_size)
            cls, loc = self.engine.track_regions(frame, [region], instance_size, [self.fill],
                                                 self.params.input_order == "rgb", self.features)
        else:
            patch, scale_z = self.search_patch(frame, instance_size)
            cls, loc = self.engine.track(patch, self.features)
        return self.locate(cls[0], loc[0], scale_z, window_influence)

    def locate(self, cls: np.ndarray, loc: np.ndarray, scale_z: float, window_influence: float) -> Found:
        """This target's answer from one sample's network outputs on its search crop."""
        return self.decoder.step(cls, loc, self.center, self.size, scale_z, window_influence)

    def _search_side(self, instance_size: int) -> Tuple[int, float]:
        """Side of the search square in frame pixels (rounded, as the reference crops it) and the
        scale from frame to patch pixels."""
        s_z = self._context()
        return round(s_z * instance_size / self.params.exemplar_size), self.params.exemplar_size / s_z

    def search_region(self, instance_size: int) -> Tuple[Region, float]:
        """The search square around the current centre (what :meth:`search_patch` cuts, for an
        engine that crops on its device) and its scale."""
        side, scale_z = self._search_side(instance_size)
        return square(self.center, side), scale_z

    def search_patch(self, frame: np.ndarray, instance_size: int) -> Tuple[np.ndarray, float]:
        """The search crop around the current centre (network channel order) and its scale."""
        side, scale_z = self._search_side(instance_size)
        patch = CROPS[self.params.crop](frame, self.center, instance_size, side, self.fill)
        return self._prepare(patch), scale_z
