"""Soft targets from a pretrained tracker, for distillation into the lite models.

A *teacher* (NanoTrack v2 here: the same 127/255 crops, stride 16, points
centred on the patch) scores every training pair's template and search crops.
Its 16x16 maps are cut to the student's 11x11 points: both grids start at
``-(S // 2) * 16`` px from the patch centre, so student point ``i`` is teacher
point ``i + 3`` and they lie at the same pixels. Kept per pair: the teacher's
target probability at each student point and its box there, as patch-pixel
corners (x1, y1, x2, y2). The teacher reads BGR 0-255 pixels; the pairs are RGB.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Union

import numpy as np
import torch

from ..tracking.anchors import generate_points
from .objectives import CENTER


class Teacher:
    """A NanoTrack v2 checkpoint run on pairs' crops, its outputs at a student's ``size`` x ``size`` points."""

    def __init__(self, weights: Union[str, Path], size: int, stride: int = 16, engine: str = "onnx") -> None:
        from ..api import create_engine as make_engine

        self.engine = make_engine("nanotrack_v2", weights, engine=engine, precision="fp32")
        self.size = size
        self.points = torch.from_numpy(generate_points(stride, size).astype(np.float64) + CENTER).float()

    def __call__(self, template: np.ndarray, search: np.ndarray) -> Dict[str, torch.Tensor]:
        """``prob`` (N, S*S) and ``box`` (N, 4, S*S) for (N, 127, 127, 3) and (N, 255, 255, 3) RGB uint8 crops."""
        zf = self.engine.template(np.ascontiguousarray(template[..., ::-1]))
        cls, loc = (torch.from_numpy(np.asarray(a, dtype=np.float32))
                    for a in self.engine.track(np.ascontiguousarray(search[..., ::-1]), zf))
        full = cls.shape[-1]
        lo = full // 2 - self.size // 2
        cut = slice(lo, lo + self.size)
        n = cls.shape[0]
        prob = torch.softmax(cls[:, :, cut, cut], dim=1)[:, 1].reshape(n, -1)
        l, t, r, b = loc[:, :, cut, cut].reshape(n, 4, -1).unbind(1)
        px, py = self.points
        box = torch.stack([px - l, py - t, px + r, py + b], dim=1)
        return {"prob": prob.half(), "box": box.half()}
