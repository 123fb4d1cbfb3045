"""Run a tracker over annotated sequences and score it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from ..errors import SiamcliError
from .datasets import Sequence, valid_boxes
from .metrics import score_sequence


@dataclass
class SequenceResult:
    name: str
    frames: int
    fps: float
    metrics: Dict[str, float]
    boxes: np.ndarray = field(repr=False)


def track_sequence(tracker, seq: Sequence, on_frame: Optional[Callable[[], None]] = None) -> SequenceResult:
    """Initialise on the first annotated frame and track to the end.

    The first frame's box is the ground truth (OTB convention); fps counts
    frame decoding and tracking of every frame after the first.
    """
    annotated = np.flatnonzero(valid_boxes(seq.groundtruth))
    if annotated.size == 0:
        raise SiamcliError(f"sequence {seq.name} has no annotated frame to start from")
    start = int(annotated[0])
    boxes = np.zeros((len(seq), 4))
    first = cv2.imread(str(seq.frames[start]))
    if first is None:
        raise SiamcliError(f"cannot decode {seq.frames[start]}")
    tracker.init(first, seq.groundtruth[start])
    boxes[start] = seq.groundtruth[start]
    t0 = time.perf_counter()
    for i in range(start + 1, len(seq)):
        frame = cv2.imread(str(seq.frames[i]))
        if frame is None:
            raise SiamcliError(f"cannot decode {seq.frames[i]}")
        boxes[i] = tracker.update(frame).box
        if on_frame:
            on_frame()
    elapsed = time.perf_counter() - t0
    tracked = len(seq) - start - 1
    fps = tracked / elapsed if elapsed > 0 and tracked else 0.0
    return SequenceResult(seq.name, len(seq), fps, score_sequence(boxes[start:], seq.groundtruth[start:]), boxes)


def summarise(results: List[SequenceResult]) -> Dict[str, float]:
    """Overall figures: metrics averaged over sequences (as the OTB toolkits do), fps over all frames."""
    keys = ("success_auc", "precision_20px", "mean_iou", "success_50")
    overall = {k: float(np.mean([r.metrics[k] for r in results])) for k in keys}
    frames = sum(r.frames - 1 for r in results)
    seconds = sum((r.frames - 1) / r.fps for r in results if r.fps > 0)
    overall["fps"] = frames / seconds if seconds > 0 else 0.0
    overall["frames"] = sum(r.frames for r in results)
    return overall
