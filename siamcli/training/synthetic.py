"""Synthetic tracking sequences for choosing tracker settings without touching real benchmarks.

A cut-out (a textured region of one source under a soft-edged random shape,
as in the paste pairs of :mod:`.data`) moves smoothly over the frames of
another source, drifting in size, aspect and colour, sometimes with a
second cut-out wandering past as a distractor. The ground truth is the
pasted shape's box, exact on every frame.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .data import Source, paste, photometric, propose_box, random_mask


class _Mover:
    """One cut-out with a smooth random walk in position, size and aspect."""

    def __init__(self, region: np.ndarray, side: float, frame_shape, rng: np.random.Generator) -> None:
        self.rng = rng
        self.region = region
        h, w = region.shape[:2]
        self.aspect = (w / h) * math.exp(rng.uniform(-0.2, 0.2))
        self.side = side
        height, width = frame_shape[:2]
        self.pos = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height])
        speed = side * rng.uniform(0.02, 0.12)
        angle = rng.uniform(0, 2 * math.pi)
        self.vel = speed * np.array([math.cos(angle), math.sin(angle)])
        self.size_rate = 0.0
        self.mask_seed = int(rng.integers(1 << 30))
        self.gain = np.ones(3)

    def step(self, frame_shape) -> None:
        rng = self.rng
        height, width = frame_shape[:2]
        self.vel = 0.9 * self.vel + rng.normal(0, 0.03 * self.side, size=2)
        self.pos = self.pos + self.vel
        w, h = self.wh()
        for axis, (lo, hi) in enumerate(((w / 2, width - w / 2), (h / 2, height - h / 2))):
            if not lo <= self.pos[axis] <= hi:  # bounce off the border
                self.pos[axis] = min(max(self.pos[axis], lo), hi)
                self.vel[axis] = -self.vel[axis]
        self.size_rate = 0.9 * self.size_rate + rng.normal(0, 0.004)
        self.side = float(np.clip(self.side * math.exp(self.size_rate), 12, 0.6 * min(width, height)))
        self.aspect *= math.exp(rng.normal(0, 0.005))
        self.gain = np.clip(self.gain * np.exp(rng.normal(0, 0.01, size=3)), 0.7, 1.3)

    def wh(self) -> Tuple[int, int]:
        w = max(8, int(round(self.side * math.sqrt(self.aspect))))
        h = max(8, int(round(self.side / math.sqrt(self.aspect))))
        return w, h

    def draw(self, frame: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        w, h = self.wh()
        obj = np.clip(cv2.resize(self.region, (w, h)).astype(np.float32) * self.gain, 0, 255).astype(np.uint8)
        alpha = random_mask(h, w, np.random.default_rng(self.mask_seed))
        x = int(round(self.pos[0] - w / 2))
        y = int(round(self.pos[1] - h / 2))
        return paste(frame, obj, alpha, x, y), np.array([x, y, w, h], dtype=np.float64)


def synthetic_sequence(sources: Sequence[Source], seed: int, length: int = 80, distractor: float = 0.5
                       ) -> Tuple[List[np.ndarray], np.ndarray]:
    """``length`` frames and their (x, y, w, h) ground truth (see module doc)."""
    rng = np.random.default_rng(seed)
    videos = [s for s in sources if len(s.frames) >= length] or list(sources)
    bg = videos[int(rng.integers(len(videos)))]
    start = int(rng.integers(max(1, len(bg.frames) - length + 1)))
    shape = bg.frames[0].shape

    def cutout(side: float) -> _Mover:
        src = sources[int(rng.integers(len(sources)))]
        frame = src.frames[int(rng.integers(len(src.frames)))]
        x, y, w, h = propose_box(frame, rng)
        region = photometric(frame[int(y):int(y + h), int(x):int(x + w)], rng, blur=0.0)
        return _Mover(region, side, shape, rng)

    side = math.exp(rng.uniform(math.log(0.1), math.log(0.35))) * min(shape[:2])
    target = cutout(side)
    other = cutout(side * math.exp(rng.uniform(-0.3, 0.3))) if rng.random() < distractor else None
    frames, boxes = [], []
    for i in range(length):
        frame = bg.frames[min(start + i, len(bg.frames) - 1)]
        if other is not None:
            frame, _ = other.draw(frame)
            other.step(shape)
        frame, box = target.draw(frame)
        target.step(shape)
        frames.append(frame)
        boxes.append(box)
    return frames, np.array(boxes)
