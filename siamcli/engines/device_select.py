"""The best candidate of each sample chosen where the network runs.

:meth:`siamcli.tracking.tracker.SiameseTracker.pick` decodes the score map in numpy on the
host: on a GPU that means reading every candidate back (2205 anchors x 6 values for alex)
and a series of numpy calls each frame, a large share of the frame once the crop and the
network run in one CUDA graph. :class:`CandidateSelector` does the same arithmetic in torch, inside
the graph: softmax, box decoding (anchors or points, absolute or relative to the current
size), the scale/ratio change penalty, the cosine window, and the argmax over the usable
candidates (finite, positive size), so only one row per sample comes back:

``(index, cx, cy, w, h, score, penalty, usable)`` -- the box in search-patch pixels relative
to the patch centre, its raw score and penalty (the tracker's size learning rate uses both),
and whether any candidate was usable.

It computes in float32 where ``pick`` uses float64: the chosen box agrees to about 1e-4 px.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import torch

#: columns of a selector's output row
FIELDS = ("index", "cx", "cy", "w", "h", "score", "penalty", "usable")
#: per-sample state columns: current width and height in patch pixels, current aspect
#: ratio (w / h), window influence
STATE = ("width", "height", "ratio", "window_influence")


def _padded(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


class CandidateSelector(torch.nn.Module):
    """Decode, penalise, window and pick for one score-map size (see module doc).

    ``grid``: the tracker's anchors (4, M) or points (2, M); ``window``: its (M,) cosine
    window; ``family``: "rpn" or "ban"; ``relative``: boxes in units of the current size
    (``box_units == "target"``); ``penalty_k``: the penalty's k.
    """

    def __init__(self, grid: np.ndarray, window: np.ndarray, family: str, relative: bool,
                 penalty_k: float) -> None:
        super().__init__()
        self.register_buffer("grid", torch.as_tensor(np.asarray(grid, dtype=np.float32)))
        self.register_buffer("window", torch.as_tensor(np.asarray(window, dtype=np.float32)))
        self.rpn = family == "rpn"
        self.relative = relative
        self.penalty_k = float(penalty_k)

    def forward(self, cls: torch.Tensor, loc: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``cls`` (N, 2K, S, S), ``loc`` (N, 4K, S, S), ``state`` (N, 4) -> (N, 8) rows of :data:`FIELDS`."""
        count = cls.shape[0]
        logits = cls.float().reshape(count, 2, -1)
        score = torch.sigmoid(logits[:, 1] - logits[:, 0])  # softmax's foreground column
        delta = loc.float().reshape(count, 4, -1)
        width, height = state[:, 0:1], state[:, 1:2]
        grid = self.grid
        if self.rpn:
            sw, sh = (width, height) if self.relative else (grid[2], grid[3])
            cx = delta[:, 0] * sw + grid[0]
            cy = delta[:, 1] * sh + grid[1]
            w = torch.exp(delta[:, 2]) * sw
            h = torch.exp(delta[:, 3]) * sh
        else:
            if self.relative:
                scale = torch.cat([width, height, width, height], 1)[:, :, None]
                delta = delta * scale
            x1, y1 = grid[0] - delta[:, 0], grid[1] - delta[:, 1]
            x2, y2 = grid[0] + delta[:, 2], grid[1] + delta[:, 3]
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        s_c = _change(_padded(w, h) / _padded(width, height))
        r_c = _change(state[:, 2:3] / (w / h))
        penalty = torch.exp(-(r_c * s_c - 1) * self.penalty_k)
        influence = state[:, 3:4]
        pscore = penalty * score * (1 - influence) + self.window * influence
        usable = (torch.isfinite(cx) & torch.isfinite(cy) & torch.isfinite(w) & torch.isfinite(h)
                  & (w > 0) & (h > 0) & torch.isfinite(pscore))
        best = torch.argmax(torch.where(usable, pscore, torch.full_like(pscore, -float("inf"))), dim=1,
                            keepdim=True)
        columns = [best.float()] + [t.gather(1, best) for t in (cx, cy, w, h, score, penalty)]
        columns.append(usable.any(dim=1, keepdim=True).float())
        return torch.cat(columns, 1)


@dataclass(frozen=True)
class Selection:
    """What an engine needs to pick on its device: ``key`` names the selector's settings (the
    engine keeps one selector per key and score-map size), ``factory(score_size)`` builds it,
    ``states`` holds one :data:`STATE` row per sample."""

    key: Hashable
    factory: Callable[[int], CandidateSelector]
    states: np.ndarray
