"""The Siamese tracker loop, step for step as the published reference trackers run it.

Per frame: crop the search region around the last centre (context-padded,
first-frame-mean filled), run the network against the cached template
features, decode the candidates (anchors or points), apply the scale/ratio
change penalty and the cosine window, take the best, smooth the size with the
learning rate, clip to the frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import SiamcliError
from .anchors import cosine_window, generate_anchors, generate_points
from .crop import CROPS, channel_mean, context_size, square
from .params import TrackerParams
from .states import TRACKING, classify

Box = Tuple[float, float, float, float]
#: crop pairs an int8 engine is calibrated on (the first frame's target and random boxes)
CALIBRATION_CROPS = 16
#: with an engine that crops on its device and leaves the choice to the tracker
#: (``device_select=None``), the best candidate is picked on the device from this many candidates
#: up: the selector's small kernels cost GPU time that only a large map's pick on the host repays
#: (docs/performance.md)
DEVICE_SELECT_CANDIDATES = 1000


def picks_on_device(engine: Any, candidates: int) -> bool:
    """Whether the best of ``candidates`` is picked by ``engine`` on its device."""
    choice = getattr(engine, "device_select", False)
    return candidates >= DEVICE_SELECT_CANDIDATES if choice is None else bool(choice)


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer: ``box`` as 0-based (x, y, w, h) floats, the raw score and the
    loss state (``"tracking"``, ``"uncertain"`` or ``"lost"``, see :func:`.states.classify`)."""

    box: Box
    score: float
    state: str = TRACKING


#: smallest width and height of a first box, in pixels: the template is cut around it
MIN_BOX_SIDE = 1.0
#: how many times the frame's width, height and area a first box may span. Coordinates meant
#: for a larger source still track (with a warning, see :func:`siamcli.runloop.outside_warnings`);
#: the context square of a box far beyond that would take gigabytes to cut.
MAX_BOX_FRAMES = 16


def validate_box(box: Sequence[float], frame_shape: Sequence[int]) -> Box:
    """Check an initial box against the frame; raise :class:`SiamcliError` if unusable."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError, OverflowError):
        raise SiamcliError(f"a box needs four numbers x,y,w,h, got {box!r}") from None
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


def _softmax_foreground(logits: np.ndarray) -> np.ndarray:
    """Softmax over 2 rows (background, foreground) -> foreground probability."""
    diff = logits[0].astype(np.float64) - logits[1].astype(np.float64)
    return 1.0 / (1.0 + np.exp(diff))


def _change(ratio: np.ndarray) -> np.ndarray:
    return np.maximum(ratio, 1.0 / ratio)


def _padded_size(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


class SiameseTracker:
    """Single-target tracker: ``init(frame, box)`` then ``update(frame)`` per frame.

    ``engine`` runs the network (see :class:`siamcli.engines.Engine`);
    ``params`` are the hyper-parameters of the model family.
    """

    def __init__(self, engine: Any, params: TrackerParams) -> None:
        self.engine = engine
        self.params = params
        size = params.score_size
        if params.family == "rpn":
            self._grid = generate_anchors(params.stride, params.anchor_ratios, params.anchor_scales, size)
        else:
            self._grid = generate_points(params.stride, size)
        self._window = cosine_window(size, params.anchor_num)
        self._wide: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self._zf: Any = None
        self._avg = np.zeros(3)
        self.center = np.zeros(2)
        self.size = np.zeros(2)

    # -- helpers -------------------------------------------------------------
    def _prepare(self, patch: np.ndarray) -> np.ndarray:
        if self.params.input_order == "rgb":
            return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
        return patch

    def _context(self) -> float:
        return context_size(self.size[0], self.size[1], self.params.context_amount)

    def _decode(self, cls: np.ndarray, loc: np.ndarray, grid: Optional[np.ndarray] = None,
                prior: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Network outputs for one sample -> (scores (M,), boxes (4, M) as cx, cy, w, h).

        With ``box_units == "target"``, ``prior`` is the current target size (w, h) in
        patch pixels: the anchors take that shape, BAN distances are in its units.
        """
        score = _softmax_foreground(cls.reshape(2, -1))
        delta = loc.reshape(4, -1).astype(np.float64)
        grid = self._grid if grid is None else grid
        relative = self.params.box_units == "target"
        boxes = np.empty_like(delta)
        if self.params.family == "rpn":
            if relative:
                size = np.array([[prior[0]], [prior[1]]], dtype=np.float64)
            else:
                size = grid[2:4]
            np.multiply(delta[:2], size, out=boxes[:2])
            boxes[:2] += grid[:2]
            np.exp(delta[2:], out=boxes[2:])
            boxes[2:] *= size
        else:
            if relative:
                delta *= np.array([prior[0], prior[1], prior[0], prior[1]])[:, None]
            low = grid[:2] - delta[:2]  # x1, y1
            high = grid[:2] + delta[2:]  # x2, y2
            np.add(low, high, out=boxes[:2])
            boxes[:2] /= 2
            np.subtract(high, low, out=boxes[2:])
        return score, boxes

    # -- API -------------------------------------------------------------------
    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        """Start tracking the target in ``box`` (0-based x, y, w, h) on ``frame`` (BGR uint8)."""
        x, y, w, h = validate_box(box, frame.shape)
        p = self.params
        self.center = np.array([x + (w - 1) / 2, y + (h - 1) / 2], dtype=np.float64)
        self.size = np.array([w, h], dtype=np.float64)
        self._avg = channel_mean(frame)
        needs_calibration = getattr(self.engine, "needs_calibration", None)
        if needs_calibration is not None and needs_calibration(frame):
            self.engine.calibrate(self.calibration_crops(frame), frame)
        s_z = round(self._context())
        z = CROPS[p.crop](frame, self.center, p.exemplar_size, s_z, self._avg)
        self._zf = self.engine.template(self._prepare(z))

    def calibration_crops(self, frame: np.ndarray, count: int = CALIBRATION_CROPS) -> list:
        """(template, search) crop pairs of ``frame`` for an int8 engine's calibration: the
        target's own pair, then pairs around random boxes (:func:`siamcli.engines.quantize.calibration_crops`)."""
        from ..engines.quantize import calibration_crops

        p = self.params
        s_z = self._context()
        s_x = s_z * p.instance_size / p.exemplar_size
        own = (CROPS[p.crop](frame, self.center, p.exemplar_size, round(s_z), self._avg),
               CROPS[p.crop](frame, self.center, p.instance_size, round(s_x), self._avg))
        others = calibration_crops([frame], count - 1, p.exemplar_size, p.instance_size, p.context_amount)
        return [tuple(self._prepare(c) for c in pair) for pair in [own, *others]]

    def update(self, frame: np.ndarray) -> TrackResult:
        """Locate the target in the next frame."""
        p = self.params
        return self.commit(frame, self.search(frame, p.instance_size, p.window_influence))

    def commit(self, frame: np.ndarray, found: Tuple[float, float, float, float, float]) -> TrackResult:
        """Clip a search result ``(cx, cy, w, h, score)`` to the frame, store it as the new state."""
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

    def _grid_and_window(self, score_size: int) -> Tuple[np.ndarray, np.ndarray]:
        """Anchors/points and cosine window for a score map of side ``score_size`` (cached)."""
        if score_size == self.params.score_size:
            return self._grid, self._window
        cached = self._wide.get(score_size)
        if cached is None:
            p = self.params
            if p.family == "rpn":
                grid = generate_anchors(p.stride, p.anchor_ratios, p.anchor_scales, score_size)
            else:
                grid = generate_points(p.stride, score_size)
            cached = self._wide[score_size] = (grid, cosine_window(score_size, p.anchor_num))
        return cached

    def search(self, frame: np.ndarray, instance_size: int, window_influence: float):
        """One search around the current centre: the best candidate, unclipped, as
        ``(cx, cy, w, h, score)`` in frame pixels, with the size already smoothed.

        ``update`` runs it with the model's own ``instance_size`` and window; the
        re-detector (:mod:`.redetect`) with a wider region and almost no window.
        Nothing is stored: the caller decides whether to move the target.
        """
        if self._zf is None:
            raise RuntimeError("update() called before init()")
        if getattr(self.engine, "device_crop", False):
            region, scale_z = self.search_region(instance_size)
            args = (frame, [region], instance_size, [self._avg], self.params.input_order == "rgb", self._zf)
            if picks_on_device(self.engine, self._grid.shape[1]):
                rows = self.engine.track_regions(*args, select=self.selection([self], window_influence))
                return self.finish(rows[0], scale_z)
            cls, loc = self.engine.track_regions(*args)
        else:
            patch, scale_z = self.search_patch(frame, instance_size)
            cls, loc = self.engine.track(patch, self._zf)
        return self.pick(cls[0], loc[0], scale_z, window_influence)

    def _search_side(self, instance_size: int) -> Tuple[int, float]:
        """Side of the search square in frame pixels (rounded, as the reference crops it) and the
        scale from frame to patch pixels."""
        s_z = self._context()
        return round(s_z * instance_size / self.params.exemplar_size), self.params.exemplar_size / s_z

    def search_region(self, instance_size: int) -> Tuple[Tuple[int, int, int], float]:
        """The search square around the current centre, ``(size, xmin, ymin)`` in frame pixels
        (:func:`.crop.square`), and its scale: what :meth:`search_patch` cuts, for an engine
        that crops on its device."""
        side, scale_z = self._search_side(instance_size)
        return square(self.center, side), scale_z

    def search_patch(self, frame: np.ndarray, instance_size: int) -> Tuple[np.ndarray, float]:
        """The search crop around the current centre (network channel order) and its scale."""
        side, scale_z = self._search_side(instance_size)
        patch = CROPS[self.params.crop](frame, self.center, instance_size, side, self._avg)
        return self._prepare(patch), scale_z

    def selection(self, targets: Sequence["SiameseTracker"], window_influence: float):
        """What an engine needs to pick the best candidate of each of ``targets`` (trackers with
        this one's parameters) on its device (:class:`siamcli.engines.device_select.Selection`)."""
        from ..engines.device_select import CandidateSelector, Selection

        p = self.params
        key = (p.family, p.box_units, p.penalty_k, p.stride, tuple(p.anchor_ratios), tuple(p.anchor_scales))
        # one STATE row per target, all built in one array: its size in patch pixels, aspect ratio,
        # window influence
        states = np.array([(t.size[0] * s, t.size[1] * s, t.size[0] / t.size[1], window_influence)
                           for t, s in ((t, t._scale()) for t in targets)], dtype=np.float32)
        return Selection(key, lambda size: CandidateSelector(*self._grid_and_window(size), p.family,
                                                             p.box_units == "target", p.penalty_k), states)

    def _scale(self) -> float:
        return self.params.exemplar_size / self._context()

    def finish(self, row: np.ndarray, scale_z: float):
        """A device selector's row (:data:`siamcli.engines.device_select.FIELDS`) -> ``(cx, cy, w, h,
        score)`` in frame pixels, the size smoothed, as :meth:`pick` returns it."""
        if row[7] <= 0:  # no usable candidate: the target stays where it was
            return float(self.center[0]), float(self.center[1]), float(self.size[0]), float(self.size[1]), 0.0
        return self._smooth(np.asarray(row[1:5], dtype=np.float64), float(row[6]), float(row[5]), scale_z)

    def _smooth(self, box: Sequence[float], penalty: float, score: float, scale_z: float):
        """The chosen candidate (cx, cy, w, h in patch pixels around the patch centre) -> the new
        ``(cx, cy, w, h, score)`` in frame pixels, the size moved towards it by the learning rate
        (times the candidate's penalty and score, as the reference trackers do). With the params'
        ``aspect_lr``, the size's scale moves by ``lr`` and its aspect by ``aspect_lr``, in log space."""
        bx, by, bw, bh = (float(v) / scale_z for v in box)
        rate = float(penalty) * float(score)
        w0, h0 = float(self.size[0]), float(self.size[1])
        if self.params.aspect_lr is None:
            lr = rate * self.params.lr
            width = w0 * (1 - lr) + bw * lr
            height = h0 * (1 - lr) + bh * lr
        else:
            log_w, log_h = math.log(bw / w0), math.log(bh / h0)
            scale = (log_w + log_h) / 2 * rate * self.params.lr
            aspect = (log_w - log_h) / 2 * rate * self.params.aspect_lr
            width, height = w0 * math.exp(scale + aspect), h0 * math.exp(scale - aspect)
        return bx + float(self.center[0]), by + float(self.center[1]), width, height, float(score)

    def _extents(self, delta: np.ndarray, grid: np.ndarray, prior: Sequence[float]) -> np.ndarray:
        """(2, M) widths and heights of every candidate (patch pixels), as :meth:`_decode` gives them."""
        if self.params.family == "rpn":
            size = np.array([[prior[0]], [prior[1]]]) if self.params.box_units == "target" else grid[2:4]
            wh = np.exp(delta[2:], dtype=np.float64)
            wh *= size
            return wh
        d = delta.astype(np.float64)
        if self.params.box_units == "target":
            d *= np.array([[prior[0]], [prior[1]], [prior[0]], [prior[1]]])
        return (grid[:2] + d[2:]) - (grid[:2] - d[:2])  # (x2, y2) - (x1, y1)

    def _centre_at(self, delta: np.ndarray, grid: np.ndarray, prior: Sequence[float], i: int) -> Tuple[float, float]:
        """Candidate ``i``'s centre (cx, cy) in patch pixels, with :meth:`_decode`'s arithmetic."""
        d = [float(v) for v in delta[:, i]]
        gx, gy = float(grid[0, i]), float(grid[1, i])
        relative = self.params.box_units == "target"
        if self.params.family == "rpn":
            sw, sh = (float(prior[0]), float(prior[1])) if relative else (float(grid[2, i]), float(grid[3, i]))
            return d[0] * sw + gx, d[1] * sh + gy
        if relative:
            d = [d[0] * prior[0], d[1] * prior[1], d[2] * prior[0], d[3] * prior[1]]
        return ((gx - d[0]) + (gx + d[2])) / 2, ((gy - d[1]) + (gy + d[3])) / 2

    def _penalised(self, score: np.ndarray, w: np.ndarray, h: np.ndarray, scale_z: float, window: np.ndarray,
                   window_influence: float) -> Tuple[np.ndarray, np.ndarray]:
        """(penalty, penalised and windowed score) of candidates of sizes ``w``, ``h`` (patch pixels):
        the scale/ratio change penalty exp(-(r_c * s_c - 1) * k) against the current size. Call
        under ``np.errstate`` (degenerate sizes give inf/NaN, which never win)."""
        w0, h0 = float(self.size[0]), float(self.size[1])
        pad = w + h
        pad *= 0.5
        s_c = np.add(w, pad)
        s_c *= np.add(h, pad, out=pad)
        np.sqrt(s_c, out=s_c)
        s_c /= _padded_size(w0 * scale_z, h0 * scale_z)
        penalty = _change(s_c)
        penalty *= _change(np.divide(w0 / h0, np.divide(w, h)))
        np.subtract(1.0, penalty, out=penalty)
        penalty *= self.params.penalty_k
        np.exp(penalty, out=penalty)
        pscore = penalty * score
        pscore *= 1 - window_influence
        pscore += window * window_influence
        return penalty, pscore

    def pick(self, cls: np.ndarray, loc: np.ndarray, scale_z: float, window_influence: float):
        """Decode one sample's outputs, penalise, window, take the best, smooth the size.

        Only the candidates' sizes are decoded for the whole map (the penalty needs them); the
        best one's centre is decoded alone. Same arithmetic as decoding everything
        (:meth:`pick_decoding_all`, which also serves when the best candidate is unusable).
        """
        anchors = self.params.anchor_num
        if cls.shape[-3] != 2 * anchors or loc.shape[-3] != 4 * anchors:
            raise SiamcliError(f"the network gives {cls.shape[-3]} score and {loc.shape[-3]} box maps where these "
                               f"tracker settings take {2 * anchors} and {4 * anchors}: the weights or ONNX files "
                               "belong to another model than the one named")
        grid, window = self._grid_and_window(int(cls.shape[-1]))
        width, height = float(self.size[0]) * scale_z, float(self.size[1]) * scale_z
        logits = cls.reshape(2, -1)
        delta = loc.reshape(4, -1)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            score = np.subtract(logits[0], logits[1], dtype=np.float64)  # softmax's foreground:
            np.exp(score, out=score)  # 1 / (1 + exp(bg - fg))
            score += 1.0
            np.reciprocal(score, out=score)
            w, h = self._extents(delta, grid, (width, height))
            penalty, pscore = self._penalised(score, w, h, scale_z, window, window_influence)
        best = int(np.argmax(pscore))
        # a network can emit overflowing or degenerate boxes (e.g. untrained weights): such
        # candidates never win (argmax returns a NaN first); the usual usable best needs no mask
        box = (*self._centre_at(delta, grid, (width, height), best), float(w[best]), float(h[best]))
        if not (math.isfinite(pscore[best]) and all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0):
            return self.pick_decoding_all(cls, loc, scale_z, window_influence)
        return self._smooth(box, penalty[best], score[best], scale_z)

    def pick_decoding_all(self, cls: np.ndarray, loc: np.ndarray, scale_z: float, window_influence: float):
        """:meth:`pick` decoding every candidate's box first, skipping unusable ones (with none
        usable, the target stays where it was)."""
        grid, window = self._grid_and_window(int(cls.shape[-1]))
        width, height = float(self.size[0]) * scale_z, float(self.size[1]) * scale_z
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            score, pred = self._decode(cls, loc, grid, (width, height))
            penalty, pscore = self._penalised(score, pred[2], pred[3], scale_z, window, window_influence)
            usable = np.isfinite(pred).all(axis=0) & (pred[2] > 0) & (pred[3] > 0) & np.isfinite(pscore)
        if not usable.any():
            return float(self.center[0]), float(self.center[1]), float(self.size[0]), float(self.size[1]), 0.0
        best = int(np.argmax(np.where(usable, pscore, -np.inf)))
        return self._smooth(pred[:, best], penalty[best], score[best], scale_z)
