"""The live window: can one be opened here, showing frames, reading keys (OpenCV's GUI build)."""
from __future__ import annotations

import os
import re
import socket
import sys
from typing import Optional

import cv2
import numpy as np

from ..errors import SiamcliError

GUI_WHEEL = "pip install opencv-python (the GUI build) in place of opencv-python-headless, or `pip install 'siamcli[gui]'`"


def opencv_has_gui() -> bool:
    """True when this OpenCV was built with a window backend (Qt, GTK, Win32, Cocoa)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NONE"


def _x_display_reachable(display: str) -> bool:
    match = re.fullmatch(r"(?:unix)?([^:]*):(\d+)(?:\.\d+)?", display)
    if not match:
        return False
    host, number = match.group(1), int(match.group(2))
    try:
        if not host:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(f"/tmp/.X11-unix/X{number}")
            return True
        with socket.create_connection((host, 6000 + number), timeout=1.0):
            return True
    except OSError:
        return False


def display_problem() -> Optional[str]:
    """Why no window can be opened here (one line), or None when it can."""
    if sys.platform.startswith("linux"):
        display = os.environ.get("DISPLAY")
        if not display and not os.environ.get("WAYLAND_DISPLAY"):
            return "no display (DISPLAY is not set)"
        if display and not os.environ.get("WAYLAND_DISPLAY") and not _x_display_reachable(display):
            return f"cannot connect to the X display {display!r}"
    if not opencv_has_gui():
        return f"this OpenCV has no GUI support ({GUI_WHEEL})"
    return None


def require_display(fix: str) -> None:
    """Raise one clear :class:`SiamcliError` when no window can be opened; ``fix`` says what to do instead."""
    problem = display_problem()
    if problem:
        raise SiamcliError(f"{problem}: {fix}")


class LiveWindow:
    """An OpenCV window: ``show(frame)`` draws it and returns the key pressed (or -1)."""

    def __init__(self, title: str = "siamcli") -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as exc:
            raise SiamcliError(f"cannot open a window ({exc.err.strip() or 'OpenCV GUI error'})") from None

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        cv2.imshow(self.title, frame)
        return cv2.waitKey(wait_ms)

    def wait_key(self, wait_ms: int = 30) -> int:
        return cv2.waitKey(wait_ms)

    def select(self, frame: np.ndarray):
        """Draw a box with the mouse on ``frame`` (ENTER/SPACE accepts, c cancels); None if cancelled."""
        x, y, w, h = cv2.selectROI(self.title, frame, showCrosshair=True, fromCenter=False)
        if w <= 0 or h <= 0:
            return None
        return float(x), float(y), float(w), float(h)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
