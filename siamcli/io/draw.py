"""Drawing the tracked box on a frame."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

GREEN = (0, 220, 0)


def draw_box(frame: np.ndarray, box: Sequence[float], score: Optional[float] = None,
             color: Tuple[int, int, int] = GREEN, label: str = "") -> np.ndarray:
    """Draw ``box`` (x, y, w, h) and an optional score label on ``frame`` in place."""
    x, y, w, h = (int(round(v)) for v in box)
    thickness = max(1, round(min(frame.shape[:2]) / 240))
    cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness)
    text = " ".join(t for t in (label, f"{score:.2f}" if score is not None else "") if t)
    if text:
        scale = max(0.4, min(frame.shape[:2]) / 600)
        org = (max(x, 0), max(y - 4, int(14 * scale) + 2))
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, max(1, thickness - 1), cv2.LINE_AA)
    return frame
