"""The check every command runs on the paths it will write, before it reads a frame.

An output never overwrites an input (the source video, a frame of the source
folder, a ground-truth file, the weights) nor another output of the same run,
and a path that cannot be written (a folder where a file is wanted, a missing
parent folder) is refused before any work is done, not after. Paths are
compared once resolved (symlinks, ``..``, and hard links for files that exist),
so two spellings of one file count as one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Set, Tuple, Union

from ..errors import SiamcliError
from .sources import IMAGE_SUFFIXES

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Output:
    """A path a command writes: ``option`` is how the user named it (``-o``, ``--save-video``, or a
    description such as ``the trajectory of row 3``); ``folder``: a folder the command fills."""

    option: str
    path: Path
    folder: bool = False

    def label(self) -> str:
        return f"{self.option} {self.path}"


def output(option: str, path: PathLike, folder: bool = False) -> Output:
    return Output(option, Path(path), folder)


def _resolved(path: Path) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))


def _inode(path: Path) -> Optional[Tuple[int, int]]:
    """The file's identity where it exists (hard links share it), else None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_writable(out: Output, planned: Set[str]) -> None:
    path = out.path
    if out.folder:
        if path.exists() and not path.is_dir():
            raise SiamcliError(f"{out.label()} is a file; give a folder")
        return
    if path.is_dir():
        raise SiamcliError(f"{out.label()} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        if _resolved(parent) in planned:  # a folder the run creates
            return
        raise SiamcliError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent if not path.exists() else path, os.W_OK):
        raise SiamcliError(f"cannot write {path}: permission denied")


def check_outputs(outputs: Sequence[Output], inputs: Iterable[Optional[PathLike]] = ()) -> None:
    """Raise :class:`SiamcliError` if an output cannot be written, would overwrite an input (a
    file, or a frame of an input folder of frames) or names the same file as another output.
    A file may lie in a folder the run creates (an output with ``folder=True``)."""
    by_name: Dict[str, Path] = {}
    by_inode: Dict[Tuple[int, int], Path] = {}
    frame_folders: Set[str] = set()
    for item in inputs:
        if item is None:
            continue
        path = Path(item)
        if path.is_dir():
            frame_folders.add(_resolved(path))
            if (path / "img").is_dir():  # an OTB-style sequence keeps its frames there
                frame_folders.add(_resolved(path / "img"))
            continue
        by_name[_resolved(path)] = path
        inode = _inode(path)
        if inode is not None:
            by_inode[inode] = path
    seen_names: Dict[str, Output] = {}
    seen_inodes: Dict[Tuple[int, int], Output] = {}
    planned = {_resolved(o.path) for o in outputs if o.folder}
    for out in outputs:
        _check_writable(out, planned)
        if out.folder:
            continue
        name, inode = _resolved(out.path), _inode(out.path)
        source = by_name.get(name) or (by_inode.get(inode) if inode is not None else None)
        if source is not None:
            raise SiamcliError(f"{out.label()} would overwrite the input {source}; give the output another name")
        if out.path.suffix.lower() in IMAGE_SUFFIXES and os.path.dirname(name) in frame_folders:
            raise SiamcliError(f"{out.label()} would land among the input frames in {out.path.parent}; "
                               "give the output another name or folder")
        first = seen_names.get(name) or (seen_inodes.get(inode) if inode is not None else None)
        if first is not None:
            raise SiamcliError(f"{first.label()} and {out.label()} name the same file; "
                               "give each output its own name")
        seen_names[name] = out
        if inode is not None:
            seen_inodes[inode] = out
