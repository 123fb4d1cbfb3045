"""Context crops around the target, as the published reference tracker takes them.

The reference (pysot ``get_subwindow``) pads a copy of the frame with the
first frame's channel means (truncated to uint8), cuts a square of
``original_size`` pixels centred on the target and resizes it (bilinear) to
``model_size`` when the two differ. Only the square is materialised here:
pixels inside the frame are copied, the rest take the fill colour, which
gives the same patch without copying the whole frame.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np


def context_size(width: float, height: float, context_amount: float) -> float:
    """Side of the square context region: sqrt((w + c(w+h)) * (h + c(w+h)))."""
    pad = context_amount * (width + height)
    return math.sqrt((width + pad) * (height + pad))


def channel_mean(frame: np.ndarray) -> np.ndarray:
    """Per-channel mean of a frame (float64, length 3)."""
    return np.asarray(cv2.mean(frame)[:3], dtype=np.float64)


def square(center: Sequence[float], original_size: int) -> tuple:
    """``(size, xmin, ymin)``: the side and top-left pixel of the square centred on ``center``
    (the reference's rounding)."""
    size = int(original_size)
    if size < 1:
        raise ValueError(f"crop size must be at least 1 pixel, got {original_size}")
    half = (size + 1) / 2
    return size, int(math.floor(center[0] - half + 0.5)), int(math.floor(center[1] - half + 0.5))


def crop_patch(
    frame: np.ndarray,
    center: Sequence[float],
    model_size: int,
    original_size: int,
    fill: np.ndarray,
) -> np.ndarray:
    """Square ``original_size`` crop centred on ``center`` (x, y), resized to ``model_size``.

    Returns a (model_size, model_size, 3) uint8 array. ``fill`` is the colour
    of the area outside the frame (the reference truncates it to uint8).
    """
    size, xmin, ymin = square(center, original_size)
    xmax, ymax = xmin + size, ymin + size  # exclusive
    height, width = frame.shape[:2]
    if xmin >= 0 and ymin >= 0 and xmax <= width and ymax <= height:
        patch = frame[ymin:ymax, xmin:xmax]
    else:
        patch = np.empty((size, size, 3), dtype=np.uint8)
        patch[:] = np.asarray(fill, dtype=np.float64).astype(np.uint8)
        x0, y0 = max(xmin, 0), max(ymin, 0)
        x1, y1 = min(xmax, width), min(ymax, height)
        if x1 > x0 and y1 > y0:
            patch[y0 - ymin:y1 - ymin, x0 - xmin:x1 - xmin] = frame[y0:y1, x0:x1]
    if model_size != size:
        patch = cv2.resize(patch, (model_size, model_size))
    return np.ascontiguousarray(patch)


def warp_patch(
    frame: np.ndarray,
    center: Sequence[float],
    model_size: int,
    original_size: int,
    fill: np.ndarray,
) -> np.ndarray:
    """The same square as :func:`crop_patch`, taken with one ``cv2.warpAffine``.

    The affine map reproduces ``cv2.resize``'s pixel-centre alignment and the
    constant border takes the (truncated) fill colour, so nothing but the
    output patch is allocated, whatever the target's size or position. Values
    differ from the reference crop by at most a grey level (interpolation
    rounding).
    """
    size, xmin, ymin = square(center, original_size)
    step = size / model_size  # source pixels per patch pixel
    # patch pixel u samples source x = xmin + (u + 0.5) * step - 0.5
    matrix = np.array([[step, 0.0, xmin + 0.5 * step - 0.5],
                       [0.0, step, ymin + 0.5 * step - 0.5]])
    border = tuple(int(v) for v in np.asarray(fill, dtype=np.float64).astype(np.uint8))
    return cv2.warpAffine(frame, matrix, (model_size, model_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def fast_patch(
    frame: np.ndarray,
    center: Sequence[float],
    model_size: int,
    original_size: int,
    fill: np.ndarray,
) -> np.ndarray:
    """The reference crop where the square lies inside the frame (a view, then a resize),
    one warp where it crosses the border (no padded copy, whatever the target's size)."""
    size, xmin, ymin = square(center, original_size)
    height, width = frame.shape[:2]
    if xmin >= 0 and ymin >= 0 and xmin + size <= width and ymin + size <= height:
        return crop_patch(frame, center, model_size, original_size, fill)
    return warp_patch(frame, center, model_size, original_size, fill)


CROPS = {"reference": crop_patch, "fast": fast_patch}
