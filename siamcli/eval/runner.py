"""Run a tracker over annotated sequences and score it.

One-pass evaluation (OPE) starts once, on the first annotated frame. The
robustness evaluations of the OTB benchmark (Wu, Lim and Yang, 2013) start
several times per sequence: temporal (TRE) from frames spread over the
sequence, each run to the end; spatial (SRE) from the first frame with the
ground-truth box shifted or scaled. A sequence's figures are then the mean over
its runs, so one unlucky drift weighs less than in a single pass.
"""
from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence as Seq, Tuple

import numpy as np

from ..errors import SiamcliError
from ..frame_loop import RunReport, track_frames
from ..io.sources import ImageFolderSource
from .datasets import Sequence, valid_boxes
from .metrics import score_sequence


@dataclass
class SequenceResult:
    name: str
    frames: int
    fps: float
    metrics: Dict[str, float]
    boxes: np.ndarray = field(repr=False)
    #: runs averaged into ``metrics`` (1: one pass; more: TRE/SRE, ``boxes`` then hold the first run's)
    runs: int = 1
    #: frames tracked after the first of each run (None: ``frames - 1``)
    tracked: Optional[int] = None

    @property
    def frames_tracked(self) -> int:
        """Frames tracked after the first of each run (what ``fps`` counts)."""
        return self.frames - 1 if self.tracked is None else self.tracked


#: OTB's SRE: the ground-truth box shifted by 10 % of its size (4 sides, 4 corners) as (dx, dy) in
#: units of (w, h), then scaled about its centre by 0.8, 0.9, 1.1 and 1.2
SRE_SHIFTS = ((-0.1, 0.0), (0.1, 0.0), (0.0, -0.1), (0.0, 0.1),
              (-0.1, -0.1), (0.1, -0.1), (-0.1, 0.1), (0.1, 0.1))
SRE_SCALES = (0.8, 0.9, 1.1, 1.2)

Run = Tuple[int, Tuple[float, float, float, float]]


def first_annotated(seq: Sequence) -> int:
    annotated = np.flatnonzero(valid_boxes(seq.groundtruth))
    if annotated.size == 0:
        raise SiamcliError(f"sequence {seq.name} has no annotated frame to start from")
    return int(annotated[0])


def sre_boxes(box: Seq[float]) -> List[Tuple[float, float, float, float]]:
    """The 12 perturbed first boxes of OTB's spatial robustness evaluation (:data:`SRE_SHIFTS`,
    :data:`SRE_SCALES`)."""
    x, y, w, h = (float(v) for v in box)
    out = [(x + dx * w, y + dy * h, w, h) for dx, dy in SRE_SHIFTS]
    cx, cy = x + w / 2, y + h / 2
    out += [(cx - w * s / 2, cy - h * s / 2, w * s, h * s) for s in SRE_SCALES]
    return out


def robustness_runs(seq: Sequence, starts: int = 1, shifts: bool = False) -> List[Run]:
    """(start frame, first box) of every run on ``seq``: ``starts`` start frames spread evenly over
    the sequence (the first annotated frame, then each annotated frame at or after ``k * len / starts``;
    TRE), each with the ground-truth box, or with the 12 boxes of :func:`sre_boxes` (SRE).
    ``starts=1, shifts=False`` is the one-pass evaluation."""
    if starts < 1:
        raise SiamcliError(f"--starts must be at least 1, got {starts}")
    annotated = np.flatnonzero(valid_boxes(seq.groundtruth))
    first = first_annotated(seq)
    frames: List[int] = []
    for k in range(starts):
        later = annotated[annotated >= max(first, (k * len(seq)) // starts)]
        if later.size and int(later[0]) < len(seq) - 1 and int(later[0]) not in frames:
            frames.append(int(later[0]))
    frames = frames or [first]
    runs: List[Run] = []
    for f in frames:
        gt = tuple(float(v) for v in seq.groundtruth[f])
        runs += [(f, b) for b in sre_boxes(gt)] if shifts else [(f, gt)]
    return runs


def track_sequence(tracker, seq: Sequence, on_frame: Optional[Callable[[], None]] = None,
                   start: Optional[int] = None, box: Optional[Seq[float]] = None) -> SequenceResult:
    """Initialise on the first annotated frame (or on ``start`` with ``box``) and track to the end.

    The first frame's box is the ground truth (OTB convention) unless ``box`` is given; fps counts
    frame decoding and tracking of every frame after the first, over wall time. Frames are decoded
    a few ahead in a second thread, as ``siamcli track`` decodes a source, so fps is the rate that
    command reaches. Metrics cover the frames from the start on.
    """
    start = first_annotated(seq) if start is None else int(start)
    init = seq.groundtruth[start] if box is None else np.asarray(box, float)
    boxes = np.zeros((len(seq), 4))
    frames = ImageFolderSource(seq.folder or seq.frames[0].parent, files=seq.frames, label=f"sequence {seq.name}")
    frames.start_at(start)
    report = RunReport()
    with closing(track_frames(tracker, frames, init, first_index=start, report=report)) as run:
        for index, _, result in run:
            boxes[index] = result.box
            if on_frame and index > start:
                on_frame()
    tracked = len(seq) - start - 1
    fps = tracked / report.elapsed if report.elapsed > 0 and tracked else 0.0
    return SequenceResult(seq.name, len(seq), fps, score_sequence(boxes[start:], seq.groundtruth[start:]), boxes,
                          tracked=tracked)


def run_length(seq: Sequence, run: Run) -> int:
    """Frames a run reads (its start frame included)."""
    return len(seq) - run[0]


def track_runs(tracker, seq: Sequence, runs: List[Run],
               on_frame: Optional[Callable[[], None]] = None) -> SequenceResult:
    """Every run of :func:`robustness_runs` on ``seq``; metrics are the mean over the runs, fps over
    all tracked frames, ``boxes`` those of the first run."""
    results = [track_sequence(tracker, seq, on_frame, start, box) for start, box in runs]
    if len(results) == 1:
        return results[0]
    metrics = {k: float(np.mean([r.metrics[k] for r in results])) for k in results[0].metrics}
    metrics["frames_scored"] = int(sum(r.metrics["frames_scored"] for r in results))
    tracked, fps = pooled_fps(results)
    return SequenceResult(seq.name, len(seq), fps, metrics, results[0].boxes, runs=len(runs), tracked=tracked)


def pooled_fps(results: List[SequenceResult]) -> Tuple[int, float]:
    """(frames tracked, fps over them) of several results together: their time summed, not their fps averaged."""
    frames = sum(r.frames_tracked for r in results)
    seconds = sum(r.frames_tracked / r.fps for r in results if r.fps > 0)
    return frames, frames / seconds if seconds > 0 else 0.0


def summarise(results: List[SequenceResult]) -> Dict[str, float]:
    """Overall figures: metrics averaged over sequences (as the OTB toolkits do), fps over all frames."""
    keys = ("success_auc", "precision_20px", "mean_iou", "success_50")
    overall = {k: float(np.mean([r.metrics[k] for r in results])) for k in keys}
    overall["fps"] = pooled_fps(results)[1]
    overall["frames"] = sum(r.frames for r in results)
    return overall
