"""Result sinks: box files (CSV, JSON, MOT, OTB; written frame by frame) and the annotated video.

A box file holds whole rows only. Each row goes to disk with one unbuffered
write as it comes, and a write that fails (a full disk, an I/O error) is
undone back to the last whole row before the error is raised: the rows before
it stay, readable. The file is created with its first row, so a run refused
before tracking (a bad first box) leaves none behind. Lines end in ``\\n`` in
every format.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import SiamcliError
from .files import WriteError, write_error

CSV_COLUMNS = ("frame", "x", "y", "w", "h", "score", "state")
FORMATS = ("csv", "json", "mot", "otb")
#: containers the annotated video can be written in (MJPG for .avi, mp4v for the others)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".m4v", ".mkv")


class BoxWriter:
    """A box file written as the frames come: ``write(frame, box, score, state, target)`` per
    frame and target, on disk before ``write`` returns, so an interrupted run keeps every box so
    far. Boxes are 0-based pixel ``x, y, w, h``; ``frame`` is the 0-based index of the frame in the
    source. With ``multi_target`` the file says which target (0, 1, ...) each box belongs to.

    The file is created by the first ``write`` (or :meth:`open`); a failed write raises
    :class:`SiamcliError` saying how many boxes the file keeps."""

    suffix = ".txt"
    #: False for formats that can hold one target only
    holds_several_targets = True

    def __init__(self, path: Union[str, Path], multi_target: bool = False) -> None:
        if multi_target and not self.holds_several_targets:
            raise SiamcliError(f"the {type(self).__name__.replace('BoxWriter', '').lower()} format holds one "
                               "target only: use csv, json or mot for several targets")
        self.multi_target = multi_target
        self.path = Path(path)
        self._file = None
        self._seekable = False
        #: bytes of the file that hold whole rows (the header included, the closing text not)
        self._whole = 0
        self._failed = False
        self.rows = 0

    # -- what a format writes ---------------------------------------------------------
    def _header(self) -> str:
        return ""

    def _row(self, frame: int, box: Sequence[float], score: float, state: str, target: int) -> str:
        raise NotImplementedError

    def _closing(self) -> str:
        """Text that ends the document (kept after the last row, so the file is whole after each one)."""
        return ""

    # -- the file ---------------------------------------------------------------------------
    def open(self) -> None:
        """Create the file and write its header (done by the first ``write`` when not called)."""
        if self._file is not None:
            return
        try:
            self._file = open(self.path, "wb", buffering=0)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        try:
            self._seekable = self._file.seekable()
        except OSError:
            self._seekable = False
        try:
            self._append(self._header())
        except SiamcliError:  # not even the header fits: no file rather than an empty one
            self._file.close()
            if self.path.is_file():  # a regular file; never a device such as /dev/full
                self.path.unlink(missing_ok=True)
            raise

    def _append(self, text: str) -> None:
        data = text.encode()
        closing = self._closing().encode() if self._seekable else b""
        try:
            if self._seekable:
                self._file.seek(self._whole)
            _write_all(self._file, data + closing)
        except OSError as exc:
            self._failed = True
            self._undo(closing)
            raise self._failure(exc) from None
        self._whole += len(data)

    def _undo(self, closing: bytes) -> None:
        """Cut a partly written row off (keep the closing text where it fits)."""
        if not self._seekable:
            return
        for end in ((closing, self._whole + len(closing)), (b"", self._whole)):
            try:
                self._file.seek(self._whole)
                if end[0]:
                    _write_all(self._file, end[0])
                os.ftruncate(self._file.fileno(), end[1])
                return
            except OSError:
                continue

    def _failure(self, exc: OSError) -> WriteError:
        return write_error(self.path, exc, f"; {self.rows} box{'es' if self.rows > 1 else ''} kept in it"
                           if self.rows else "")

    @property
    def failed(self) -> bool:
        """Whether a write failed (the file then keeps the rows before it)."""
        return self._failed

    def write(self, frame: int, box: Sequence[float], score: float, state: str = "tracking",
              target: int = 0) -> None:
        if self._file is None:
            self.open()
        self._append(self._row(frame, box, score, state, target))
        self.rows += 1

    def close(self) -> None:
        if self._file is None or self._file.closed:
            return
        try:
            if not self._seekable and not self._failed:
                _write_all(self._file, self._closing().encode())
        except OSError as exc:
            self._failed = True
            raise self._failure(exc) from None
        finally:
            try:
                self._file.close()
            except OSError:
                pass

    def __enter__(self) -> "BoxWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_all(file, data: bytes) -> None:
    """``data`` written whole to an unbuffered file (a raw write may take only part of it)."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        view = view[written:]


class CsvBoxWriter(BoxWriter):
    """``frame,x,y,w,h,score,state`` with a header row (``frame,target,x,...`` for several targets)."""

    suffix = ".csv"

    def _header(self) -> str:
        columns = CSV_COLUMNS[:1] + ("target",) + CSV_COLUMNS[1:] if self.multi_target else CSV_COLUMNS
        return ",".join(columns) + "\n"

    def _row(self, frame, box, score, state, target) -> str:
        x, y, w, h = box
        row = [str(frame), f"{x:.4f}", f"{y:.4f}", f"{w:.4f}", f"{h:.4f}", f"{score:.6f}", state]
        if self.multi_target:
            row.insert(1, str(target))
        return ",".join(row) + "\n"


class JsonBoxWriter(BoxWriter):
    """One JSON document: ``{"box_convention": ..., "frames": [{frame, box, score, state}, ...]}``.

    The closing brackets follow the last entry from the first one on (each entry is written over
    them, with them), so the file is a valid document after every frame, even if the process is
    killed; written to a pipe they come at :meth:`close`.
    """

    suffix = ".json"

    def _header(self) -> str:
        return '{"box_convention": "x,y,w,h in 0-based pixels", "frames": ['

    def _row(self, frame, box, score, state, target) -> str:
        entry = {"frame": frame, "box": [round(float(v), 4) for v in box], "score": round(float(score), 6),
                 "state": state}
        if self.multi_target:
            entry["target"] = target
        return ("," if self.rows else "") + "\n  " + json.dumps(entry)

    def _closing(self) -> str:
        return "\n]}\n"


class MotBoxWriter(BoxWriter):
    """MOTChallenge lines ``frame,id,x,y,w,h,score,-1,-1,-1``, frames 1-based, track id = target + 1."""

    def _row(self, frame, box, score, state, target) -> str:
        x, y, w, h = box
        return f"{frame + 1},{target + 1},{x:.4f},{y:.4f},{w:.4f},{h:.4f},{score:.6f},-1,-1,-1\n"


class OtbBoxWriter(BoxWriter):
    """One ``x,y,w,h`` line per frame (the result format of the OTB/pysot/got10k toolkits)."""

    holds_several_targets = False

    def _row(self, frame, box, score, state, target) -> str:
        return ",".join(f"{v:.4f}" for v in box) + "\n"


WRITERS = {"csv": CsvBoxWriter, "json": JsonBoxWriter, "mot": MotBoxWriter, "otb": OtbBoxWriter}


def box_format(path: Union[str, Path], fmt: Optional[str]) -> str:
    """The format named by ``fmt``, or guessed from the file name (``.json`` -> json, else csv)."""
    if fmt:
        if fmt not in WRITERS:
            raise SiamcliError(f"unknown box format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    return "json" if Path(path).suffix.lower() == ".json" else "csv"


def open_box_writer(path: Union[str, Path], fmt: Optional[str] = None, multi_target: bool = False) -> BoxWriter:
    """A writer for ``path`` in format ``fmt`` (csv, json, mot, otb)."""
    return WRITERS[box_format(path, fmt)](path, multi_target=multi_target)


def _fourcc(path: Path) -> int:
    codec = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    return cv2.VideoWriter_fourcc(*codec)


def check_video_path(path: Union[str, Path], option: str = "--save-video") -> None:
    """Refuse a video name whose container the writer cannot fill (checked before a run starts)."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise SiamcliError(f"{option} {path}: cannot write a {suffix or 'suffix-less'} video; "
                           f"name it {' or '.join(VIDEO_SUFFIXES[:2])} ({', '.join(VIDEO_SUFFIXES[2:])} also work)")


#: free bytes on the video's file system below which it counts as full (FFmpeg reports
#: nothing to its caller when a write fails, so the writer looks for itself)
_FULL_BELOW = 64 * 1024
#: frames between two looks at the free space
_SPACE_CHECK_FRAMES = 25


def _free_bytes(folder: Path) -> Optional[int]:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # not on a POSIX system: only the check at close remains
        return None
    return st.f_bavail * st.f_frsize


class AnnotatedVideoWriter:
    """Writes frames to a video file (MJPG for .avi, mp4v for the other containers); opened on the
    first frame.

    OpenCV's writer says nothing when the disk fills up (FFmpeg's failed writes only log), so
    the writer checks the free space every few frames and, on :meth:`close`, that the file
    opens as a video with every frame: a video that fails either check is removed (it would not
    play) and :class:`SiamcliError` says why.
    """

    def __init__(self, path: Union[str, Path], fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps > 0 else 30.0
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[Tuple[int, int]] = None
        self.frames = 0
        check_video_path(self.path)
        if not self.path.parent.exists():
            raise SiamcliError(f"cannot write {self.path}: folder {self.path.parent} does not exist")

    def write(self, frame: np.ndarray) -> None:
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._writer = cv2.VideoWriter(str(self.path), _fourcc(self.path), self.fps, size)
            if not self._writer.isOpened():
                self._writer = None
                self._remove()
                raise SiamcliError(f"cannot write video {self.path}: the encoder could not open it")
            self._size = size
        if size != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1
        if self.frames % _SPACE_CHECK_FRAMES == 0:
            free = _free_bytes(self.path.parent)
            if free is not None and free < _FULL_BELOW:
                self._fail(os.strerror(errno.ENOSPC) + " (ENOSPC)", errno.ENOSPC)

    def _remove(self) -> None:
        try:
            if self.path.is_file():  # a regular file; never a device
                self.path.unlink()
        except OSError:
            pass

    def _fail(self, reason: str, code: Optional[int] = None) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._remove()
        raise WriteError(f"cannot write video {self.path}: {reason}; the partial video was removed", code)

    def _complete(self) -> bool:
        """Whether the file just written opens as a video whose last frame decodes (a file cut
        short by a full disk either lacks its index or ends before that frame)."""
        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened() or int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) < self.frames:
                return False
            capture.set(cv2.CAP_PROP_POS_FRAMES, self.frames - 1)
            return bool(capture.read()[0])
        finally:
            capture.release()

    def discard(self) -> None:
        """Stop writing and remove the file (a run that failed)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._remove()

    def close(self) -> None:
        """Finish the file; raises :class:`SiamcliError` (the file removed) if it is not a whole video."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if not self._complete():
            free = _free_bytes(self.path.parent)
            full = free is not None and free < _FULL_BELOW
            if full:
                self._fail(os.strerror(errno.ENOSPC) + " (ENOSPC)", errno.ENOSPC)
            self._fail("the file written is not a readable video")

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
