"""Parsing boxes typed by users, and reading the text files that hold boxes."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Tuple, Union

from ..errors import SiamcliError, quoted
from .paths import input_file, path_errors, read_input

#: the most a box file is read: a ground-truth file of a million frames takes about 30 MB; a
#: larger "box file" is something else
MAX_BOX_FILE_BYTES = 64 * 1024 * 1024
#: the most of an ``--init-file`` read while looking for its first box: the box is one short line,
#: and a ground-truth file given there is read no further than its first lines
MAX_FIRST_BOX_BYTES = 64 * 1024


def parse_box(text: str, what: str = "--init") -> Tuple[float, float, float, float]:
    """``"x,y,w,h"`` (commas, spaces or tabs) -> four floats."""
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise SiamcliError(f"{what} expects four numbers x,y,w,h (e.g. 120,80,40,60), got {quoted(text)}")
    return values  # type: ignore[return-value]


def _decoded(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise SiamcliError(f"{what} is not a text file (expected lines x,y,w,h)")
    return text


def read_box_text(path: Union[str, Path], what: str, kind: str = "box file") -> str:
    """The text of a box file (UTF-8, a byte-order mark allowed), read no further than
    :data:`MAX_BOX_FILE_BYTES`; ``what`` names the file in errors about its content
    (``seq/groundtruth_rect.txt``), ``kind`` what it is in errors about the path."""
    return _decoded(read_input(path, kind, MAX_BOX_FILE_BYTES), what)


def read_box_file(path) -> Tuple[float, float, float, float]:
    """The first box of a text file: its first non-empty line that is no ``#`` comment, ``x,y,w,h``
    (commas, spaces or tabs). Only the file's start is read (:data:`MAX_FIRST_BOX_BYTES`)."""
    what = f"--init-file {path}"
    input_file(path, "--init-file")
    with path_errors(path, "read --init-file"):
        with open(path, "rb") as fh:
            head = fh.read(MAX_FIRST_BOX_BYTES)
            whole = not fh.read(1)
    lines = head.splitlines()
    if not whole:  # the last line may be cut: only the lines that ended are looked at
        lines = lines[:-1] if lines else []
    text = _decoded(b"\n".join(lines), what)
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return parse_box(line, what=what)
    if not whole:
        raise SiamcliError(f"{what} holds no box line in its first {MAX_FIRST_BOX_BYTES >> 10} KiB "
                           "(expected a line x,y,w,h)")
    raise SiamcliError(f"{what} holds no box (expected a line x,y,w,h)")
