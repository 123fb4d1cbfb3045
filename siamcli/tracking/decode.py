"""From the network's two maps to the target's next box: one decoder per head family.

:class:`AnchorDecoder` (SiamRPN) and :class:`PointDecoder` (SiamBAN, NanoTrack) differ only in how
a candidate's box is read from the box map (:meth:`Decoder.boxes`); every other step is shared:

1. the foreground probability of every candidate (softmax over background, foreground);
2. every candidate's box, in search-patch pixels around the patch centre;
3. the scale/ratio change penalty against the current size, ``exp(-(r_c * s_c - 1) * k)``;
4. the cosine window, weighted by the window influence;
5. the best usable candidate (finite, positive size): a network can emit overflowing or
   degenerate boxes (untrained weights), and those never win;
6. the size moved towards the winner by the learning rate (times its penalty and score).

The arithmetic is the published trackers' (pysot's ``SiamRPNTracker.track``), in float64.
"""
from __future__ import annotations

import math
from typing import Dict, NamedTuple, Sequence, Tuple

import numpy as np

from ..errors import SiamcliError
from .anchors import cosine_window, generate_anchors, generate_points
from .params import TrackerParams


class Found(NamedTuple):
    """A search's answer in frame pixels, before clipping: the new centre and (smoothed) size, and
    the winner's raw score (0 when no candidate was usable and the target stays where it was)."""

    cx: float
    cy: float
    width: float
    height: float
    score: float


def foreground(cls: np.ndarray) -> np.ndarray:
    """(2K, S, S) logits -> (K*S*S,) foreground probabilities, float64."""
    logits = cls.reshape(2, -1)
    score = np.subtract(logits[0], logits[1], dtype=np.float64)  # softmax's foreground column:
    np.exp(score, out=score)  # 1 / (1 + exp(bg - fg))
    score += 1.0
    np.reciprocal(score, out=score)
    return score


def _change(ratio: np.ndarray) -> np.ndarray:
    return np.maximum(ratio, 1.0 / ratio)


def _usable(box: np.ndarray, pscore: float) -> bool:
    """A candidate can be followed: finite box and score, positive size."""
    return bool(np.isfinite(box).all() and box[2] > 0 and box[3] > 0 and math.isfinite(pscore))


def _padded_size(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


class Decoder:
    """Decode, penalise, window, pick and smooth for one set of tracker settings (see module doc).

    Grids and windows are kept per score-map side: the re-detector searches wider patches,
    whose maps are larger than the model's own.
    """

    def __init__(self, params: TrackerParams) -> None:
        self.params = params
        self._maps: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self.grid_and_window(params.score_size)

    def grid(self, score_size: int) -> np.ndarray:
        """The anchors or points of a score map of side ``score_size`` (see :mod:`.anchors`)."""
        raise NotImplementedError

    def boxes(self, delta: np.ndarray, grid: np.ndarray, prior: Tuple[float, float]) -> np.ndarray:
        """(4, M) box outputs -> (4, M) boxes ``cx, cy, w, h`` (float64, patch pixels). ``prior``:
        the current target size in patch pixels, the unit of ``box_units == "target"`` outputs."""
        raise NotImplementedError

    def grid_and_window(self, score_size: int) -> Tuple[np.ndarray, np.ndarray]:
        cached = self._maps.get(score_size)
        if cached is None:
            cached = self._maps[score_size] = (self.grid(score_size),
                                               cosine_window(score_size, self.params.anchor_num))
        return cached

    def _check(self, cls: np.ndarray, loc: np.ndarray) -> None:
        anchors = self.params.anchor_num
        if cls.shape[-3] != 2 * anchors or loc.shape[-3] != 4 * anchors:
            raise SiamcliError(f"the network gives {cls.shape[-3]} score and {loc.shape[-3]} box maps where these "
                               f"tracker settings take {2 * anchors} and {4 * anchors}: the weights or ONNX files "
                               "belong to another model than the one named")

    def penalised(self, score: np.ndarray, w: np.ndarray, h: np.ndarray, size: Sequence[float], scale_z: float,
                  window: np.ndarray, window_influence: float) -> Tuple[np.ndarray, np.ndarray]:
        """(penalty, penalised and windowed score) of candidates of sizes ``w``, ``h`` (patch pixels)
        against the current ``size`` (frame pixels; ``scale_z`` patch pixels per frame pixel).
        Degenerate sizes give inf/NaN: call under ``np.errstate``; such candidates are not usable."""
        w0, h0 = float(size[0]), float(size[1])
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

    def step(self, cls: np.ndarray, loc: np.ndarray, center: Sequence[float], size: Sequence[float],
             scale_z: float, window_influence: float) -> Found:
        """One sample's network outputs (``cls`` (2K, S, S), ``loc`` (4K, S, S)) -> the new centre and
        size in frame pixels. ``center`` and ``size`` are the target's current ones, ``scale_z`` the
        patch pixels per frame pixel of the search crop, centred on ``center``."""
        self._check(cls, loc)
        grid, window = self.grid_and_window(int(cls.shape[-1]))
        current = (float(size[0]) * scale_z, float(size[1]) * scale_z)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            score = foreground(cls)
            pred = self.boxes(loc.reshape(4, -1), grid, current)
            penalty, pscore = self.penalised(score, pred[2], pred[3], size, scale_z, window, window_influence)
        # the plain argmax is the answer whenever it lands on a usable candidate (a NaN score is
        # returned first, so it never hides one); the mask is built only when it does not
        best = int(np.argmax(pscore))
        if not _usable(pred[:, best], pscore[best]):
            with np.errstate(invalid="ignore"):
                usable = np.isfinite(pred).all(axis=0) & (pred[2] > 0) & (pred[3] > 0) & np.isfinite(pscore)
            if not usable.any():  # nothing to follow: the target stays where it was
                return Found(float(center[0]), float(center[1]), float(size[0]), float(size[1]), 0.0)
            best = int(np.argmax(np.where(usable, pscore, -np.inf)))
        return self.smooth(pred[:, best], float(penalty[best]), float(score[best]), center, size, scale_z)

    def smooth(self, box: Sequence[float], penalty: float, score: float, center: Sequence[float],
               size: Sequence[float], scale_z: float) -> Found:
        """The winner (cx, cy, w, h in patch pixels around the patch centre) -> the new state in frame
        pixels, the size moved towards it by ``lr`` times its penalty and score, as the reference
        trackers do. With ``aspect_lr``, the size's scale moves by ``lr`` and its aspect by
        ``aspect_lr``, in log space."""
        p = self.params
        bx, by, bw, bh = (float(v) / scale_z for v in box)
        rate = penalty * score
        w0, h0 = float(size[0]), float(size[1])
        if p.aspect_lr is None:
            lr = rate * p.lr
            width = w0 * (1 - lr) + bw * lr
            height = h0 * (1 - lr) + bh * lr
        else:
            log_w, log_h = math.log(bw / w0), math.log(bh / h0)
            scale = (log_w + log_h) / 2 * rate * p.lr
            aspect = (log_w - log_h) / 2 * rate * p.aspect_lr
            width, height = w0 * math.exp(scale + aspect), h0 * math.exp(scale - aspect)
        return Found(bx + float(center[0]), by + float(center[1]), width, height, score)


class AnchorDecoder(Decoder):
    """SiamRPN: each candidate is an anchor shifted by ``(dx, dy)`` times its size and scaled by
    ``exp(dw)``, ``exp(dh)``. With ``box_units == "target"`` every anchor takes the current target
    size (siamcli's own models)."""

    def grid(self, score_size: int) -> np.ndarray:
        p = self.params
        return generate_anchors(p.stride, p.anchor_ratios, p.anchor_scales, score_size)

    def boxes(self, delta: np.ndarray, grid: np.ndarray, prior: Tuple[float, float]) -> np.ndarray:
        out = np.empty(delta.shape, dtype=np.float64)
        if self.params.box_units == "target":
            size = np.array([[prior[0]], [prior[1]]], dtype=np.float64)
        else:
            size = grid[2:4]
        np.multiply(delta[:2], size, out=out[:2], dtype=np.float64)
        out[:2] += grid[:2]
        np.exp(delta[2:], out=out[2:], dtype=np.float64)
        out[2:] *= size
        return out


class PointDecoder(Decoder):
    """SiamBAN and NanoTrack: each candidate is the box whose left, top, right and bottom edges lie
    the predicted distances from a grid point (in patch pixels, or in target widths and heights
    with ``box_units == "target"``)."""

    def grid(self, score_size: int) -> np.ndarray:
        return generate_points(self.params.stride, score_size)

    def boxes(self, delta: np.ndarray, grid: np.ndarray, prior: Tuple[float, float]) -> np.ndarray:
        d = delta.astype(np.float64)
        if self.params.box_units == "target":
            d *= np.array([[prior[0]], [prior[1]], [prior[0]], [prior[1]]])
        low = grid[:2] - d[:2]  # x1, y1
        high = grid[:2] + d[2:]  # x2, y2
        out = np.empty_like(d)
        np.add(low, high, out=out[:2])
        out[:2] /= 2
        np.subtract(high, low, out=out[2:])
        return out


def decoder_for(params: TrackerParams) -> Decoder:
    """The decoder of ``params.family``: anchors for ``"rpn"``, points for ``"ban"``."""
    return AnchorDecoder(params) if params.family == "rpn" else PointDecoder(params)
