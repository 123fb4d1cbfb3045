"""Frame sources: a video file or a folder of image frames, read with OpenCV."""
from __future__ import annotations

import queue
import re
import threading
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..errors import SiamcliError, quoted
from .paths import input_file

#: frames of a file read ahead of the tracker, in a background thread (:class:`Prefetcher`, which
#: :func:`siamcli.frame_loop.track_frames` runs)
PREFETCH_FRAMES = 4
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def natural_key(path: Path) -> Tuple:
    """Sort key that orders ``img2.jpg`` before ``img10.jpg``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name))


def list_frames(folder: Path) -> List[Path]:
    """Image files of a folder in natural order. Hidden files are no frames: macOS leaves an
    AppleDouble ``._0001.jpg`` of metadata beside each file copied to a foreign disk, and editors
    and sync tools leave dot-files of their own."""
    return sorted((p for p in folder.iterdir()
                   if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
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
    #: frames that may be decoded ahead in a background thread (0: decode when asked, as a live
    #: camera should, or the frames shown would lag behind the scene)
    prefetch: int = 0
    #: index of the first frame delivered (:meth:`start_at`)
    start: int = 0

    def _frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def start_at(self, index: int) -> None:
        """Deliver the frames from ``index`` (0-based) on; call before iterating. A start past the
        last frame raises :class:`SiamcliError` when the iteration begins."""
        self.start = int(index)

    def _past_end(self, frames: int) -> SiamcliError:
        return SiamcliError(f"start frame {self.start} is past the end of {self.path} ({frames} frames)")

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames()

    @property
    def ended_early(self) -> bool:
        return self.frame_count is not None and self.frames_read < self.frame_count

    def stop_message(self) -> Optional[str]:
        """Why the frames ran out before the end (a damaged file, a lost camera), or None."""
        return None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFolderSource(FrameSource):
    """Frames from the image files of a folder (natural sort order), or the ``files`` given (a
    sequence's, named ``label`` in messages)."""

    def __init__(self, folder: Path, fps: float = 30.0, files: Optional[List[Path]] = None,
                 label: Optional[str] = None) -> None:
        self.path = folder
        self.label = label or str(folder)
        self.files = list_frames(folder) if files is None else list(files)
        if not self.files:
            raise SiamcliError(
                f"no image frames in folder {folder} (looked for {', '.join(IMAGE_SUFFIXES[:4])}, ...)"
            )
        self.fps = fps
        self.frame_count = len(self.files)
        self.prefetch = PREFETCH_FRAMES

    def _frames(self) -> Iterator[np.ndarray]:
        if self.start >= len(self.files):
            raise self._past_end(len(self.files))
        self.frames_read = self.start
        shape = None
        for file in self.files[self.start:]:
            frame = decode_frame(file, f"frame {self.frames_read} of {self.label}", shape)
            shape = frame.shape
            self.frames_read += 1
            yield frame


def decode_frame(file: Path, what: str, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """An image file as a BGR frame. ``shape``: the size of the frames before it, which this one
    must share: a tracker's geometry (its box, its search region) belongs to one frame size, and
    a frame of another size is another picture, not the next frame of this one."""
    try:
        frame = cv2.imread(str(file), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV refuses an image whose header declares more pixels than it decodes
        reason = getattr(exc, "err", None) or type(exc).__name__
        raise SiamcliError(f"cannot decode {what}: {file.name} (OpenCV refuses it: {reason[:100]})") from None
    if frame is None:
        raise SiamcliError(f"cannot decode {what}: {file.name}")
    if shape is not None and frame.shape != shape:
        raise SiamcliError(f"{what} ({file.name}) is {frame.shape[1]}x{frame.shape[0]}, the frames before it "
                           f"{shape[1]}x{shape[0]}: the frames of a sequence must share one size")
    return frame


class Prefetcher:
    """Runs a frame generator in a background thread, ``depth`` frames ahead of the consumer.

    OpenCV decodes with the GIL released, so decoding overlaps the network. An
    exception in the generator (a frame that cannot be decoded) is raised to the
    consumer at the position it happened; :meth:`close` stops the thread (the
    owning source calls it before releasing its decoder).
    """

    _END = object()

    def __init__(self, frames: Iterator[np.ndarray], depth: int) -> None:
        self._queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(frames,), name="siamcli-decode", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, frames: Iterator[np.ndarray]) -> None:
        try:
            for frame in frames:
                if not self._put(frame):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return
                continue
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _usable(frame: Optional[np.ndarray]) -> bool:
    return frame is not None and frame.size > 0


class VideoSource(FrameSource):
    """Frames decoded by OpenCV's ``VideoCapture``: a video file, or (``live=True``) a camera
    index or stream URL.

    A live source skips up to ``warmup`` unusable frames (none, empty or all
    black, as cameras deliver while they start) before its first frame;
    ``skipped`` counts them.
    """

    def __init__(self, path: Union[str, Path, int], live: bool = False, warmup: int = 0) -> None:
        self.path = path if isinstance(path, int) else Path(path)
        self.live = live
        self.label = f"camera {path}" if isinstance(path, int) else str(path)
        target = path if isinstance(path, int) else str(path)
        self._cap = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            if live:
                raise SiamcliError(f"cannot open {self.label}: no such camera, or a stream OpenCV cannot read")
            raise SiamcliError(f"cannot open video {path}: not a video file OpenCV can decode")
        self.skipped = 0
        ok, frame = self._cap.read()
        while live and (not ok or not _usable(frame) or not frame.any()) and self.skipped < warmup:
            self.skipped += 1
            ok, frame = self._cap.read()
        if not ok or not _usable(frame):
            self._cap.release()
            what = f"{self.label} delivered no usable frame" + (f" in its first {warmup + 1} reads" if live else "")
            raise SiamcliError(what if live else f"video {path} has no decodable frames")
        self._first: Optional[np.ndarray] = frame
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 and not isinstance(path, int) else None
        self.exhausted = False
        self.prefetch = 0 if live else PREFETCH_FRAMES

    def _frames(self) -> Iterator[np.ndarray]:
        if self._first is None:
            raise RuntimeError("a VideoSource can be iterated only once")
        frame, self._first = self._first, None
        self.frames_read = 1
        if self.start:
            for _ in range(self.start - 1):  # grab: passed over without decoding
                if not self._cap.grab():
                    raise self._past_end(self.frames_read)
                self.frames_read += 1
            ok, frame = self._cap.read()
            if not ok or not _usable(frame):
                raise self._past_end(self.frames_read)
            self.frames_read += 1
        yield frame
        while True:
            ok, frame = self._cap.read()
            if not ok or not _usable(frame):
                self.exhausted = True
                return
            self.frames_read += 1
            yield frame

    def stop_message(self) -> Optional[str]:
        """Why the frames ran out before they should have, or None (call after the source is exhausted)."""
        if not self.exhausted:
            return None
        last = self.frames_read - 1
        if self.ended_early:
            return (f"{self.label} stopped decoding after frame {last}: {self.frames_read} of the "
                    f"{self.frame_count} frames its header claims (damaged or truncated stream)")
        if self.live and self.frame_count is None:
            return f"{self.label} stopped delivering frames after frame {last} (disconnected or stream ended)"
        return None

    def close(self) -> None:
        self._cap.release()


def open_camera(camera: str, warmup: int = 60) -> VideoSource:
    """A camera by index (``"0"``), or any source ``VideoCapture`` opens: a stream URL or a file."""
    text = str(camera).strip()
    if text.isdigit():
        return VideoSource(int(text), live=True, warmup=warmup)
    if "://" not in text and not Path(text).exists():
        raise SiamcliError(f"camera {quoted(text)} not found: give a device index (0, 1, ...), a stream URL or a "
                           "video file")
    return VideoSource(text, live=True, warmup=warmup)


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
    # a FIFO or a device would keep OpenCV waiting for data; a stream is read with `siamcli webcam -c`
    input_file(path, "video")
    return VideoSource(path)
