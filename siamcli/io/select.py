"""Drawing the first box with the mouse (needs a display and OpenCV's GUI build)."""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from ..errors import SiamcliError

NO_DISPLAY = "no display to draw the target on: pass the first box with --init x,y,w,h"


def select_box(frame: np.ndarray, window: str = "siamcli: draw the target, then ENTER") -> Tuple[float, float, float, float]:
    """Let the user draw a box on ``frame``; raise :class:`SiamcliError` when that is impossible."""
    from .window import require_display

    require_display("pass the first box with --init x,y,w,h")
    try:
        x, y, w, h = cv2.selectROI(window, frame, showCrosshair=True, fromCenter=False)
        cv2.destroyWindow(window)
    except cv2.error:
        raise SiamcliError(
            NO_DISPLAY + " (this OpenCV has no GUI support; `pip install opencv-python` for the GUI build)"
        ) from None
    if w <= 0 or h <= 0:
        raise SiamcliError("no box was drawn (selection cancelled)")
    return float(x), float(y), float(w), float(h)
