"""OTB-style sequence folders: ``img/`` with the frames and ``groundtruth_rect.txt``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from ..errors import SiamcliError, quoted
from ..io.boxes import read_box_text
from ..io.sources import list_frames
from .metrics import annotated

GROUNDTRUTH = "groundtruth_rect.txt"
#: the largest coordinate or size a ground-truth box may hold, in pixels: far beyond any frame
#: OpenCV decodes (2^30 pixels at most), and far below where box arithmetic overflows
MAX_COORDINATE = 1e6


@dataclass
class Sequence:
    """One annotated sequence: frame files and (N, 4) x, y, w, h ground truth."""

    name: str
    frames: List[Path]
    groundtruth: np.ndarray
    #: why fewer frames are scored than the folder holds (ground truth and frames of different
    #: lengths), or None
    note: Optional[str] = None
    #: the sequence's folder (its ground truth lies there)
    folder: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.frames)


def read_groundtruth(path: Union[str, Path]) -> np.ndarray:
    """Boxes one per line, separated by commas, tabs or spaces (mixed is fine). A row holding
    ``NaN`` or an infinity is a frame without an annotation (:func:`valid_boxes`); a finite value
    beyond :data:`MAX_COORDINATE` is refused, naming the file and line."""
    path = Path(path)
    rows = []
    for number, line in enumerate(read_box_text(path, str(path), "ground truth").splitlines(), 1):
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise SiamcliError(f"{path}:{number}: not a box: {quoted(line.strip())}") from None
        if len(values) != 4:
            raise SiamcliError(f"{path}:{number}: expected 4 numbers x,y,w,h, found {len(values)}")
        if any(abs(v) > MAX_COORDINATE for v in values if np.isfinite(v)):
            raise SiamcliError(f"{path}:{number}: {quoted(line.strip())} is no box in pixels (values beyond "
                               f"{MAX_COORDINATE:.0e})")
        rows.append(values)
    if not rows:
        raise SiamcliError(f"{path} holds no boxes")
    return np.asarray(rows, dtype=np.float64)


def valid_boxes(gt: np.ndarray) -> np.ndarray:
    """Mask of annotated frames: finite values, positive width and height (``0,0,0,0`` and rows
    holding ``NaN`` = not annotated)."""
    return annotated(gt)


def load_sequence(folder: Path) -> Sequence:
    """The sequence in ``folder``; frames and ground truth are cut to the shorter of the two
    (the sequence's ``note`` then says so)."""
    img = folder / "img"
    frames = list_frames(img if img.is_dir() else folder)
    if not frames:
        raise SiamcliError(f"sequence {folder} has no image frames")
    gt = read_groundtruth(folder / GROUNDTRUTH)
    n = min(len(frames), len(gt))
    note = None
    if len(gt) < len(frames):
        note = (f"{GROUNDTRUTH} has {len(gt)} boxes for {len(frames)} frames: "
                f"the frames from {len(gt)} on are neither tracked nor scored")
    elif len(gt) > len(frames):
        note = f"{GROUNDTRUTH} has {len(gt)} boxes for {len(frames)} frames: the extra boxes are not used"
    return Sequence(folder.name, frames[:n], gt[:n], note, folder)


def scan_sequences(root: Union[str, Path]) -> Tuple[List[Sequence], List[Tuple[str, str]]]:
    """The sequences at ``root`` (itself one, or the sequence folders directly under it, sorted)
    that load, and ``(name, reason)`` for each that does not; raises :class:`SiamcliError` when
    ``root`` holds no sequence folder at all."""
    root = Path(root)
    if not root.is_dir():
        if root.is_file():
            raise SiamcliError(f"{root} is a file: eval scores a folder of OTB-style sequences (img/ + "
                               f"{GROUNDTRUTH}) or one such sequence; to track a video, use `siamcli track`")
        raise SiamcliError(f"dataset folder not found: {root}")
    folders = [root] if (root / GROUNDTRUTH).is_file() else [
        d for d in sorted(root.iterdir()) if d.is_dir() and (d / GROUNDTRUTH).is_file()]
    if not folders:
        raise SiamcliError(f"no OTB-style sequences (img/ + {GROUNDTRUTH}) under {root}")
    found, failed = [], []
    for folder in folders:
        try:
            found.append(load_sequence(folder))
        except SiamcliError as exc:
            failed.append((folder.name, str(exc)))
    return found, failed


def find_sequences(root: Union[str, Path]) -> List[Sequence]:
    """The sequence at ``root`` itself, or every sequence folder directly under it (sorted); the
    first that cannot be loaded raises :class:`SiamcliError`."""
    found, failed = scan_sequences(root)
    if failed:
        raise SiamcliError(failed[0][1])
    return found
