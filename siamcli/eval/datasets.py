"""OTB-style sequence folders: ``img/`` with the frames and ``groundtruth_rect.txt``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Union

import numpy as np

from ..errors import SiamcliError
from ..io.sources import list_frames

GROUNDTRUTH = "groundtruth_rect.txt"


@dataclass
class Sequence:
    """One annotated sequence: frame files and (N, 4) x, y, w, h ground truth."""

    name: str
    frames: List[Path]
    groundtruth: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def read_groundtruth(path: Union[str, Path]) -> np.ndarray:
    """Boxes one per line, separated by commas, tabs or spaces (mixed is fine)."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise SiamcliError(f"{path}:{number}: not a box: {line.strip()!r}") from None
        if len(values) != 4:
            raise SiamcliError(f"{path}:{number}: expected 4 numbers x,y,w,h, found {len(values)}")
        rows.append(values)
    if not rows:
        raise SiamcliError(f"{path} holds no boxes")
    return np.asarray(rows, dtype=np.float64)


def valid_boxes(gt: np.ndarray) -> np.ndarray:
    """Mask of annotated frames: positive width and height (``0,0,0,0`` = not annotated)."""
    return (gt[:, 2] > 0) & (gt[:, 3] > 0)


def load_sequence(folder: Path) -> Sequence:
    img = folder / "img"
    frames = list_frames(img if img.is_dir() else folder)
    if not frames:
        raise SiamcliError(f"sequence {folder} has no image frames")
    gt = read_groundtruth(folder / GROUNDTRUTH)
    n = min(len(frames), len(gt))
    return Sequence(folder.name, frames[:n], gt[:n])


def find_sequences(root: Union[str, Path]) -> List[Sequence]:
    """The sequence at ``root`` itself, or every sequence folder directly under it (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise SiamcliError(f"dataset folder not found: {root}")
    if (root / GROUNDTRUTH).is_file():
        return [load_sequence(root)]
    found = [load_sequence(d) for d in sorted(root.iterdir()) if d.is_dir() and (d / GROUNDTRUTH).is_file()]
    if not found:
        raise SiamcliError(f"no OTB-style sequences (img/ + {GROUNDTRUTH}) under {root}")
    return found
