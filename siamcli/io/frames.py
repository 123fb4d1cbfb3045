"""A frame handed in from Python, as the tracker takes it: an H x W x 3 uint8 array in BGR order.

OpenCV reads BGR; PIL, ``np.asarray(pil_image)``, the GOT-10k toolkit and most PyTorch code give RGB.
An RGB array taken as BGR still tracks, only worse (the networks were trained on one order), so the
order is declared by the caller (``color``) rather than guessed. A PIL image is RGB whatever the
declaration; PIL itself is never imported here: an object can only be a PIL image if the program
that made it has imported PIL already.
"""
from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np

from ..errors import SiamcliError

#: the channel orders a caller may declare
COLOR_ORDERS = ("bgr", "rgb")


def check_color(color: Any) -> str:
    """``color`` if it is one of :data:`COLOR_ORDERS`, else a :class:`SiamcliError`."""
    if color not in COLOR_ORDERS:
        raise SiamcliError(f"color must be one of {', '.join(map(repr, COLOR_ORDERS))}, got {color!r}")
    return color


def _pil_image_type() -> Any:
    module = sys.modules.get("PIL.Image")
    return getattr(module, "Image", None)


def as_bgr(frame: Any, color: str = "bgr") -> np.ndarray:
    """``frame`` as an H x W x 3 uint8 BGR array: a numpy array in channel order ``color``
    (``"bgr"``: returned as it is; ``"rgb"``: reordered), or a PIL image of any mode."""
    pil_image = _pil_image_type()
    if pil_image is not None and isinstance(frame, pil_image):
        frame, color = np.asarray(frame.convert("RGB")), "rgb"
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = (f"an array of shape {frame.shape} and type {frame.dtype}" if isinstance(frame, np.ndarray)
               else type(frame).__name__)
        raise SiamcliError(f"a frame must be an H x W x 3 uint8 array (BGR as cv2.imread and "
                           f"cv2.VideoCapture.read give it, or RGB with color='rgb') or a PIL image, got {got}")
    if color == "rgb":
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
    return frame
