"""Parsing boxes typed by users."""
from __future__ import annotations

import re
from typing import Tuple

from ..errors import SiamcliError


def parse_box(text: str, what: str = "--init") -> Tuple[float, float, float, float]:
    """``"x,y,w,h"`` (commas, spaces or tabs) -> four floats."""
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise SiamcliError(f"{what} expects four numbers x,y,w,h (e.g. 120,80,40,60), got {text!r}")
    return values  # type: ignore[return-value]
