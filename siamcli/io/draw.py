"""Drawing the tracked box (coloured by loss state) and the live status line on a frame."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

GREEN = (0, 220, 0)
AMBER = (0, 190, 255)
RED = (40, 40, 235)
#: box colour (BGR) per loss state
STATE_COLORS = {"tracking": GREEN, "uncertain": AMBER, "lost": RED}


def draw_box(frame: np.ndarray, box: Sequence[float], score: Optional[float] = None,
             color: Optional[Tuple[int, int, int]] = None, label: str = "",
             state: str = "tracking") -> np.ndarray:
    """Draw ``box`` (x, y, w, h) and an optional score label on ``frame`` in place.

    The colour follows ``state`` (green tracking, amber uncertain, red lost) unless ``color`` is given;
    a state other than tracking is also written next to the score.
    """
    color = color or STATE_COLORS.get(state, GREEN)
    x, y, w, h = (int(round(v)) for v in box)
    thickness = max(1, round(min(frame.shape[:2]) / 240))
    cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness)
    parts = (label, f"{score:.2f}" if score is not None else "", state if state != "tracking" else "")
    text = " ".join(t for t in parts if t)
    if text:
        scale = max(0.4, min(frame.shape[:2]) / 600)
        org = (max(x, 0), max(y - 4, int(14 * scale) + 2))
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, max(1, thickness - 1), cv2.LINE_AA)
    return frame


def draw_status(frame: np.ndarray, text: str) -> np.ndarray:
    """Write a status line (model, fps, keys) at the top left of ``frame``, on a dark band, in place."""
    scale = max(0.45, min(frame.shape[:2]) / 700)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(frame, (0, 0), (min(tw + 10, frame.shape[1]), th + base + 8), (0, 0, 0), -1)
    cv2.putText(frame, text, (5, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame
