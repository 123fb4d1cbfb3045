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


def read_box_file(path) -> Tuple[float, float, float, float]:
    """The first box of a text file: its first non-empty line, ``x,y,w,h`` (commas, spaces or tabs)."""
    from pathlib import Path

    path = Path(path)
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    except FileNotFoundError:
        raise SiamcliError(f"--init-file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiamcliError(f"cannot read --init-file {path} ({type(exc).__name__})") from None
    if not lines:
        raise SiamcliError(f"--init-file {path} holds no box (expected a line x,y,w,h)")
    return parse_box(lines[0], what=f"--init-file {path}")
