"""Anchor (SiamRPN) and point (SiamBAN, NanoTrack) grids over the score map.

Both are returned as float32 arrays in search-patch pixels relative to the
patch centre, flattened in the order the score map is read:
anchors anchor-major (``k * S*S + y * S + x``), points row-major (``y * S + x``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def anchor_shapes(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """(K, 2) anchor widths and heights: base area stride**2, per ratio h/w, times each scale."""
    area = stride * stride
    shapes = []
    for ratio in ratios:
        ws = int(math.sqrt(area / ratio))
        hs = int(ws * ratio)
        for scale in scales:
            shapes.append((ws * scale, hs * scale))
    return np.asarray(shapes, dtype=np.float32)


def _grid(stride: int, size: int) -> tuple:
    origin = -(size // 2) * stride
    coords = origin + stride * np.arange(size, dtype=np.float32)
    xx, yy = np.meshgrid(coords, coords)  # xx varies along x (columns)
    return xx.ravel(), yy.ravel()


def generate_anchors(stride: int, ratios: Sequence[float], scales: Sequence[float], score_size: int) -> np.ndarray:
    """(4, K*S*S) anchors as rows cx, cy, w, h."""
    shapes = anchor_shapes(stride, ratios, scales)
    k = len(shapes)
    xx, yy = _grid(stride, score_size)
    n = score_size * score_size
    out = np.empty((4, k * n), dtype=np.float32)
    out[0] = np.tile(xx, k)
    out[1] = np.tile(yy, k)
    out[2] = np.repeat(shapes[:, 0], n)
    out[3] = np.repeat(shapes[:, 1], n)
    return out


def generate_points(stride: int, score_size: int) -> np.ndarray:
    """(2, S*S) point centres as rows x, y."""
    xx, yy = _grid(stride, score_size)
    return np.stack([xx, yy]).astype(np.float32)


def cosine_window(score_size: int, repeats: int = 1) -> np.ndarray:
    """Outer product of two Hanning windows, flattened and tiled ``repeats`` times."""
    hann = np.hanning(score_size)
    return np.tile(np.outer(hann, hann).ravel(), repeats).astype(np.float64)
