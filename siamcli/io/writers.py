"""Result sinks: the box CSV (flushed row by row) and the annotated video."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import SiamcliError

CSV_COLUMNS = ("frame", "x", "y", "w", "h", "score")


class CsvBoxWriter:
    """Writes ``frame,x,y,w,h,score`` rows (0-based pixel boxes) and flushes each one,
    so an interrupted run keeps every box written so far."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "w", newline="")
        except OSError as exc:
            raise SiamcliError(f"cannot write {self.path}: {exc.strerror}") from None
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS)
        self._file.flush()
        self.rows = 0

    def write(self, frame: int, box: Sequence[float], score: float) -> None:
        x, y, w, h = box
        self._csv.writerow([frame, f"{x:.4f}", f"{y:.4f}", f"{w:.4f}", f"{h:.4f}", f"{score:.6f}"])
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "CsvBoxWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fourcc(path: Path) -> int:
    codec = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    return cv2.VideoWriter_fourcc(*codec)


class AnnotatedVideoWriter:
    """Writes frames to a video file (mp4v for .mp4/.mov, MJPG for .avi); opened on the first frame."""

    def __init__(self, path: Union[str, Path], fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps > 0 else 30.0
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[Tuple[int, int]] = None
        self.frames = 0
        if not self.path.parent.exists():
            raise SiamcliError(f"cannot write {self.path}: folder {self.path.parent} does not exist")

    def write(self, frame: np.ndarray) -> None:
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), _fourcc(self.path), self.fps, size)
            if not self._writer.isOpened():
                raise SiamcliError(f"cannot write video {self.path} (unsupported container? use .mp4 or .avi)")
            self._size = size
        if size != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
