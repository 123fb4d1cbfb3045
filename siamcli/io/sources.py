"""Frame sources: a video file or a folder of image frames, read with OpenCV."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..errors import SiamcliError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def natural_key(path: Path) -> Tuple:
    """Sort key that orders ``img2.jpg`` before ``img10.jpg``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name))


def list_frames(folder: Path) -> List[Path]:
    """Image files of a folder in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=natural_key)


class FrameSource:
    """Iterate over BGR uint8 frames. ``frame_count`` may be None when unknown.

    After iteration, ``frames_read`` is the number of frames delivered and
    ``ended_early`` tells whether a video stopped before the frame count its
    header claims (a damaged or truncated stream).
    """

    path: Path
    fps: float
    frame_count: Optional[int]
    frames_read: int = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    @property
    def ended_early(self) -> bool:
        return self.frame_count is not None and self.frames_read < self.frame_count

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFolderSource(FrameSource):
    """Frames from the image files of a folder (natural sort order)."""

    def __init__(self, folder: Path, fps: float = 30.0) -> None:
        self.path = folder
        self.files = list_frames(folder)
        if not self.files:
            raise SiamcliError(
                f"no image frames in folder {folder} (looked for {', '.join(IMAGE_SUFFIXES[:4])}, ...)"
            )
        self.fps = fps
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        self.frames_read = 0
        for file in self.files:
            frame = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if frame is None:
                raise SiamcliError(f"cannot decode frame {self.frames_read} of {self.path}: {file.name}")
            self.frames_read += 1
            yield frame


class VideoSource(FrameSource):
    """Frames decoded from a video file by OpenCV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            self._cap.release()
            raise SiamcliError(f"cannot open video {path}: not a video file OpenCV can decode")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            self._cap.release()
            raise SiamcliError(f"video {path} has no decodable frames")
        self._first: Optional[np.ndarray] = frame
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is None:
            raise RuntimeError("a VideoSource can be iterated only once")
        frame, self._first = self._first, None
        self.frames_read = 1
        yield frame
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            self.frames_read += 1
            yield frame

    def close(self) -> None:
        self._cap.release()


def open_source(path: Union[str, Path]) -> FrameSource:
    """Open a video file or a folder of frames, with a clear error when it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise SiamcliError(f"source not found: {path}")
    if path.is_dir():
        img = path / "img"
        if img.is_dir() and not list_frames(path):
            path = img  # an OTB-style sequence folder
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SiamcliError(f"{path} is a single image; give a video file or a folder of frames")
    return VideoSource(path)
