"""Object tracks mined from static-camera video, for object-level training pairs.

Where the camera stands still, a background model tells moving objects from
the scene: OpenCV's MOG2 subtractor (shadows marked and dropped), an opening
and a closing, then connected components give one box per moving object. The
boxes are linked from frame to frame by overlap, one to one; a track ends when
its object is lost, touches the frame border, meets another blob (a merge or a
split is ambiguous) or changes its area abruptly. What remains are real objects
followed over seconds, with the pose, deformation and size change that random
textured boxes (``siamcli.training.data``) never show. The boxes are those of
the foreground masks: their extent is the object's, which is what a tracker
must report. Frames in which too much of the picture moves (a camera that
pans, a light change) give no boxes; a hand-held or slowly panning shot still
leaves fragments (part of an object, a flicker) that pass every check, so only
a video known to come from a still camera should be mined (the training script
mines OpenCV's vtest.avi alone).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

import cv2
import numpy as np

from ..eval.metrics import iou


@dataclass(eq=False)
class Track:
    """One object followed through ``frames`` (frame indices, increasing by one) with its
    box (x, y, w, h) on each."""

    frames: List[int] = field(default_factory=list)
    boxes: List[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)


def _overlaps(tracks: Sequence[Track], boxes: Sequence[np.ndarray]) -> np.ndarray:
    """(len(tracks), len(boxes)) IoU of each track's last box with each box."""
    if not tracks or not boxes:
        return np.zeros((len(tracks), len(boxes)))
    last = np.array([track.boxes[-1] for track in tracks])
    found = np.array(boxes)
    pairs = iou(np.repeat(last, len(found), axis=0), np.tile(found, (len(last), 1)))
    return pairs.reshape(len(last), len(found))


def moving_boxes(frames: Sequence[np.ndarray], warmup: int = 30, min_area: float = 3e-4,
                 max_area: float = 0.2, max_moving: float = 0.15, border: int = 2) -> List[List[np.ndarray]]:
    """Boxes (x, y, w, h) of the moving blobs on each frame (none during the first ``warmup``
    frames, while the background is learnt, nor on frames of which more than ``max_moving``
    moves). Blobs are kept between ``min_area`` and ``max_area`` of the frame and away from
    its border."""
    subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    out: List[List[np.ndarray]] = []
    for i, frame in enumerate(frames):
        mask = subtractor.apply(frame)
        height, width = frame.shape[:2]
        area = float(height * width)
        fg = (mask == 255).astype(np.uint8)  # 127 marks shadows
        if i < warmup or fg.mean() > max_moving:
            out.append([])
            continue
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel, iterations=2)
        count, _, stats, _ = cv2.connectedComponentsWithStats(fg)
        boxes = []
        for x, y, w, h, pixels in stats[1:count]:
            if not min_area * area <= w * h <= max_area * area or min(w, h) < 8:
                continue
            if x < border or y < border or x + w > width - border or y + h > height - border:
                continue
            if pixels < 0.3 * w * h:  # a thin or scattered blob, not one object
                continue
            boxes.append(np.array([x, y, w, h], dtype=np.float64))
        out.append(boxes)
    return out


def link_tracks(detections: Sequence[Sequence[np.ndarray]], min_iou: float = 0.3, max_change: float = 1.4,
                min_length: int = 10) -> List[Track]:
    """Link per-frame boxes into tracks: a box continues a track when it is the only box
    overlapping the track's last box and that box overlaps no other (IoU above 0.05; a merge or
    a split ends the track), their IoU reaches ``min_iou`` and its area is within ``max_change``
    times the last one's. Tracks shorter than ``min_length`` frames are dropped."""
    done: List[Track] = []
    active: List[Track] = []
    for t, boxes in enumerate(detections):
        overlap = _overlaps(active, boxes)
        touching = overlap > 0.05
        taken = set()
        still: List[Track] = []
        for i, track in enumerate(active):
            hits = np.flatnonzero(touching[i])
            j = int(hits[0]) if len(hits) == 1 else -1
            if j >= 0 and touching[:, j].sum() == 1:
                last, box = track.boxes[-1], boxes[j]
                ratio = (box[2] * box[3]) / (last[2] * last[3])
                if overlap[i, j] >= min_iou and 1 / max_change <= ratio <= max_change:
                    track.frames.append(t)
                    track.boxes.append(box)
                    taken.add(j)
                    still.append(track)
                    continue
            done.append(track)
        for j, box in enumerate(boxes):
            if j not in taken and not touching[:, j].any():
                still.append(Track([t], [box]))
        active = still
    done += active
    return [tr for tr in done if len(tr) >= min_length]


def mine_tracks(frames: Sequence[np.ndarray], min_length: int = 10) -> List[Track]:
    """Object tracks of a static-camera video (see the module doc for other videos)."""
    return link_tracks(moving_boxes(frames), min_length=min_length)
