"""Parsing boxes typed by users, and reading the text files that hold boxes."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Tuple, Union

from ..errors import SiamcliError

#: the most a box file is read: a ground-truth file of a million frames takes about 30 MB; a
#: larger "box file" is something else (a device such as /dev/zero is endless)
MAX_BOX_FILE_BYTES = 64 * 1024 * 1024


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


def read_box_text(path: Union[str, Path], what: str) -> str:
    """The text of a box file (UTF-8, a byte-order mark allowed), read no further than
    :data:`MAX_BOX_FILE_BYTES`; ``what`` names the file in errors (``--init-file a.txt``)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BOX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SiamcliError(f"{what} not found") from None
    except IsADirectoryError:
        raise SiamcliError(f"{what} is a folder, not a file of boxes") from None
    except OSError as exc:
        raise SiamcliError(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > MAX_BOX_FILE_BYTES:
        raise SiamcliError(f"{what} is larger than {MAX_BOX_FILE_BYTES >> 20} MB: not a file of boxes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise SiamcliError(f"{what} is not a text file (expected lines x,y,w,h)")
    return text


def read_box_file(path) -> Tuple[float, float, float, float]:
    """The first box of a text file: its first non-empty line, ``x,y,w,h`` (commas, spaces or tabs)."""
    what = f"--init-file {path}"
    text = read_box_text(path, what)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise SiamcliError(f"{what} holds no box (expected a line x,y,w,h)")
    return parse_box(lines[0], what=what)
