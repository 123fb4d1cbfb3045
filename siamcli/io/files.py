"""Whole files written at once: a temporary file beside the target, renamed over it when complete.

A reader (or a rerun) never sees a half-written file under the final name, and a write
that fails (a full disk, a quota, an I/O error) removes its temporary file and leaves the
previous version, if any, as it was.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional, Union

from ..errors import SiamcliError

PathLike = Union[str, Path]


class WriteError(SiamcliError):
    """A file could not be written; ``errno`` is the system's reason (None when unknown)."""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = code


def write_error(path: PathLike, exc: OSError, kept: str = "") -> WriteError:
    """The one-line error for a failed write of ``path``: the system's reason and its code,
    then ``kept`` (what the file still holds)."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    return WriteError(f"cannot write {path}: {exc.strerror or exc}" + (f" ({name})" if name else "") + kept,
                      exc.errno)


def write_file_atomically(path: PathLike, data: bytes, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` whole or not at all; ``durable``: on disk (fsync) before the
    rename. Raises :class:`SiamcliError` when it cannot."""
    path = Path(path)
    tmp = None
    try:
        # named by the process (not mkstemp's private 0600 file): the result gets the umask's mode
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise write_error(path, exc) from None
    return path
