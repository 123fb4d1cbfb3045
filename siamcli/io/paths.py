"""The one way siamcli touches a path the user named: every failure becomes one line.

The system's errors (a name longer than the file system allows, a folder the user may
not enter, a full disk, a folder where a file is wanted, a FIFO that would block) come
out of ``os`` and ``open`` as :class:`OSError` with a code; :func:`path_errors` turns
them into a :class:`PathError` that names the path, what siamcli was doing with it and
the system's reason, which the command line prints on one line with exit code 2.
:func:`input_file` is the check every file siamcli reads goes through first, and
:func:`read_input` the way a whole file (a config, a box file, an ONNX graph) is read after it.
"""
from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

from ..errors import SiamcliError

PathLike = Union[str, Path]

#: the reasons users meet, said plainly (others use the system's own text)
_REASONS = {
    errno.ENAMETOOLONG: "the name is longer than the file system allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EIO: "input/output error",
}


class PathError(SiamcliError):
    """A path could not be used; ``errno`` is the system's reason (None when it is siamcli's)."""

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = code


def reason(exc: BaseException) -> str:
    """The system's reason for ``exc`` in words, with its code name: ``permission denied (EACCES)``."""
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if code else ""
    text = _REASONS.get(code) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{text} ({name})" if name else text


def path_error(path: PathLike, action: str, exc: BaseException, kept: str = "") -> PathError:
    """The one-line error for ``action`` (``read``, ``write``, ``create``, ...) on ``path``."""
    return PathError(f"cannot {action} {_short(path)}: {reason(exc)}{kept}", getattr(exc, "errno", None))


@contextmanager
def path_errors(path: PathLike, action: str = "read") -> Iterator[None]:
    """Within the block, an :class:`OSError` becomes a :class:`PathError` naming ``path``."""
    try:
        yield
    except PathError:
        raise
    except OSError as exc:
        raise path_error(path, action, exc) from None


def input_file(path: PathLike, what: str = "file", max_bytes: Optional[int] = None) -> Path:
    """``path`` checked as a file siamcli may read: it exists, is a regular file (a FIFO or a
    device would block or never end), may be read by this user and, with ``max_bytes``, is no
    larger than that. Returns the path; raises :class:`PathError` otherwise."""
    path = Path(path)
    with path_errors(path, f"read {what}"):
        info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise PathError(f"{what} {_short(path)} is a folder, not a file", errno.EISDIR)
    if not stat.S_ISREG(info.st_mode):
        raise PathError(f"{what} {_short(path)} is not a regular file (a pipe, socket or device)")
    if not os.access(path, os.R_OK):
        raise PathError(f"cannot read {what} {_short(path)}: permission denied (EACCES)", errno.EACCES)
    if max_bytes is not None and info.st_size > max_bytes:
        raise PathError(f"{what} {_short(path)} is {_size(info.st_size)}, more than the "
                        f"{_size(max_bytes)} siamcli reads")
    return path


def read_input(path: PathLike, what: str = "file", max_bytes: Optional[int] = None) -> bytes:
    """The content of ``path`` after :func:`input_file`'s checks, read no further than ``max_bytes``
    (a file that grows while it is read is refused as too large, never read on)."""
    path = input_file(path, what, max_bytes)
    with path_errors(path, f"read {what}"):
        with open(path, "rb") as fh:
            data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise PathError(f"{what} {_short(path)} is more than the {_size(max_bytes)} siamcli reads")
    return data


def _size(count: int) -> str:
    """A byte count in words: ``64 MiB``, ``512 KiB``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.4g} {unit}"
    return f"{count} bytes"


def exists(path: PathLike) -> bool:
    """Whether ``path`` exists; a path whose lookup fails (too long a name, a folder the user
    may not enter) raises :class:`PathError` rather than answering False."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return False
    except OSError as exc:
        raise path_error(path, "look up", exc) from None
    return True


def _short(path: PathLike, limit: int = 160) -> str:
    """The path as the message shows it: a name over ``limit`` characters is cut in the middle."""
    text = str(path)
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 2:]} ({len(text)} characters)"
