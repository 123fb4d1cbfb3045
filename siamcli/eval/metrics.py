"""One-pass evaluation metrics, as the OTB toolkits compute them.

IoU on x, y, w, h boxes with ``right = x + w``; success AUC = mean of the
success rate over 21 IoU thresholds 0, 0.05, ..., 1 (``iou > t``); precision =
share of frames whose centre error (centre ``x + (w-1)/2``) is within 20 px.
Frames whose ground truth has no positive size, or holds a value that is not a finite number
(``NaN``: the target is not annotated there), are left out of every metric.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

THRESHOLDS = np.linspace(0.0, 1.0, 21)


def annotated(gt: np.ndarray) -> np.ndarray:
    """Mask of the annotated rows of (N, 4) ground truth: every value finite, width and height
    positive (``0,0,0,0`` and ``NaN`` rows mark frames without an annotation)."""
    gt = np.asarray(gt, float)
    return np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two (N, 4) x, y, w, h arrays, in [0, 1]."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), 0.0, 1.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ca = a[:, :2] + (a[:, 2:] - 1) / 2
    cb = b[:, :2] + (b[:, 2:] - 1) / 2
    return np.linalg.norm(ca - cb, axis=1)


def success_curve(overlaps: np.ndarray) -> np.ndarray:
    return np.array([(overlaps > t).mean() if overlaps.size else 0.0 for t in THRESHOLDS])


def score_sequence(pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    """Metrics of one sequence over its annotated frames."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    mask = annotated(gt)
    p, g = pred[mask], gt[mask]
    ov = iou(p, g)
    err = center_error(p, g)
    return {
        "frames_scored": int(mask.sum()),
        "success_auc": float(success_curve(ov).mean()),
        "precision_20px": float((err <= 20).mean()) if err.size else 0.0,
        "mean_iou": float(ov.mean()) if ov.size else 0.0,
        "success_50": float((ov > 0.5).mean()) if ov.size else 0.0,
    }
