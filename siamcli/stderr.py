"""siamcli's stderr belongs to siamcli: the libraries' own logging never reaches the user.

OpenCV (its logger and its video back-ends), FFmpeg (through OpenCV's video
I/O), libjpeg ("Premature end of JPEG file") and onnxruntime write to file
descriptor 2 from C code, bypassing Python, and several of them from the
frame-decoding thread. Silencing each one by its own switch leaves the ones
without a switch (libjpeg), so while a command runs descriptor 2 points at
the null device and Python's ``sys.stderr`` writes to a copy of the original
descriptor: what siamcli says (its one-line errors, warnings, progress, and
Python's own traceback should a bug escape) reaches the terminal, and what
the libraries print does not. Their log levels are lowered too, which spares
the formatting work and covers child processes started with another stderr.

A user who sets ``OPENCV_LOG_LEVEL`` or ``OPENCV_FFMPEG_LOGLEVEL`` asked to see
the libraries' messages: descriptor 2 is then left alone.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

#: the switches a user sets to see the libraries' own messages
LIBRARY_LOG_SWITCHES = ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")


def quiet_library_logs() -> None:
    """Lower OpenCV's and FFmpeg's log levels (read when OpenCV starts, so set before it loads;
    OpenCV's own level is also set now in case it has loaded already)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "cv2" in sys.modules and os.environ["OPENCV_LOG_LEVEL"] == "SILENT":
        try:
            sys.modules["cv2"].setLogLevel(0)
        except Exception:  # an OpenCV build without the call: its messages go to the null device anyway
            pass


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # pytest's capture, io.StringIO, a closed stream
        return False


@contextmanager
def owned_stderr() -> Iterator[None]:
    """Within the block, descriptor 2 goes to the null device and ``sys.stderr`` (if it wrote to
    descriptor 2) to a copy of the original; both are restored afterwards."""
    asked = any(name in os.environ for name in LIBRARY_LOG_SWITCHES)
    quiet_library_logs()
    if asked:
        yield
        return
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no descriptor 2 to take over
        yield
        return
    previous = sys.stderr
    swapped = _writes_to_fd2(previous)
    if swapped:
        sys.stderr = open(real, "w", buffering=1, encoding=getattr(previous, "encoding", None) or "utf-8",
                          errors="backslashreplace", closefd=False)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)
        os.close(real)
        if swapped:
            sys.stderr = previous
