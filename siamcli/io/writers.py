"""Result sinks: box files (CSV, JSON, MOT, OTB; flushed frame by frame) and the annotated video."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import SiamcliError

CSV_COLUMNS = ("frame", "x", "y", "w", "h", "score", "state")
FORMATS = ("csv", "json", "mot", "otb")


class BoxWriter:
    """A box file written as the frames come: ``write(frame, box, score, state, target)`` per
    frame and target, flushed each time, so an interrupted run keeps every box so far. Boxes
    are 0-based pixel ``x, y, w, h``; ``frame`` is the 0-based index of the frame in the
    source. With ``multi_target`` the file says which target (0, 1, ...) each box belongs to."""

    suffix = ".txt"
    #: False for formats that can hold one target only
    holds_several_targets = True

    def __init__(self, path: Union[str, Path], multi_target: bool = False) -> None:
        if multi_target and not self.holds_several_targets:
            raise SiamcliError(f"the {type(self).__name__.replace('BoxWriter', '').lower()} format holds one "
                               "target only: use csv, json or mot for several targets")
        self.multi_target = multi_target
        self.path = Path(path)
        try:
            self._file = open(self.path, "w", newline="")
        except OSError as exc:
            raise SiamcliError(f"cannot write {self.path}: {exc.strerror}") from None
        self.rows = 0
        self._start()
        self._file.flush()

    def _start(self) -> None:
        pass

    def _row(self, frame: int, box: Sequence[float], score: float, state: str, target: int) -> str:
        raise NotImplementedError

    def _end(self) -> None:
        pass

    def write(self, frame: int, box: Sequence[float], score: float, state: str = "tracking",
              target: int = 0) -> None:
        self._file.write(self._row(frame, box, score, state, target))
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._file.closed:
            self._end()
            self._file.close()

    def __enter__(self) -> "BoxWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CsvBoxWriter(BoxWriter):
    """``frame,x,y,w,h,score,state`` with a header row (``frame,target,x,...`` for several targets)."""

    suffix = ".csv"

    def _start(self) -> None:
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS[:1] + ("target",) + CSV_COLUMNS[1:] if self.multi_target else CSV_COLUMNS)

    def write(self, frame: int, box: Sequence[float], score: float, state: str = "tracking",
              target: int = 0) -> None:
        x, y, w, h = box
        row = [frame, f"{x:.4f}", f"{y:.4f}", f"{w:.4f}", f"{h:.4f}", f"{score:.6f}", state]
        if self.multi_target:
            row.insert(1, target)
        self._csv.writerow(row)
        self._file.flush()
        self.rows += 1


class JsonBoxWriter(BoxWriter):
    """One JSON document: ``{"box_convention": ..., "frames": [{frame, box, score, state}, ...]}``.

    Entries are streamed as they come; the closing brackets are written by
    :meth:`close` (also on an interrupt), which makes the document valid.
    """

    suffix = ".json"

    def _start(self) -> None:
        self._file.write('{"box_convention": "x,y,w,h in 0-based pixels", "frames": [')

    def _row(self, frame, box, score, state, target) -> str:
        entry = {"frame": frame, "box": [round(float(v), 4) for v in box], "score": round(float(score), 6),
                 "state": state}
        if self.multi_target:
            entry["target"] = target
        return ("," if self.rows else "") + "\n  " + json.dumps(entry)

    def _end(self) -> None:
        self._file.write("\n]}\n")


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
