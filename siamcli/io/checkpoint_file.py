"""A checkpoint file checked before anything reads it: what it is and how much it would take.

``torch.save`` writes a zip archive whose entries are stored, not compressed: a checkpoint
takes on disk about what its tensors take in memory. An archive whose entries are
compressed can say far more than its size (2.9 MB of zip that inflates to 1.3 GB), and
torch inflates each entry whole before it looks at it, so the sizes the archive's central
directory declares are checked first (:mod:`zipfile` reads it without inflating anything).
Older checkpoints (``torch.save(..., _use_new_zipfile_serialization=False)``) are a plain
pickle stream, bounded by the file's size.

Kept free of torch: the start-up cache digests the weights file before (and often instead of)
loading it, and the file is checked before that.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Union

from ..errors import SiamcliError
from .paths import exists, input_file, path_errors

#: the largest checkpoint read, on disk and once its entries are inflated: the published
#: ResNet-50 trackers take about 400 MB
MAX_CHECKPOINT_BYTES = 2 << 30
#: how much larger than the file its entries may be once inflated (torch stores them as they are;
#: the rest is room for archives re-packed by other tools)
MAX_INFLATION = 4
#: what the archive's own headers may add to its entries' sizes
_SLACK = 1 << 20


def check_checkpoint_file(path: Union[str, Path]) -> Path:
    """``path`` checked as a checkpoint to read: a regular, readable file of at most
    :data:`MAX_CHECKPOINT_BYTES`, and, for torch's zip format, entries that inflate to no more
    than that nor more than :data:`MAX_INFLATION` times the file. Raises :class:`SiamcliError`."""
    if not exists(path):
        raise SiamcliError(f"weights file not found: {path}")
    path = input_file(path, "weights file", MAX_CHECKPOINT_BYTES)
    with path_errors(path, "read weights file"):
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):
            return path  # torch's legacy format (or no checkpoint: torch.load says so)
        try:
            with zipfile.ZipFile(path) as archive:
                inflated = sum(entry.file_size for entry in archive.infolist())
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
            raise SiamcliError(f"{path} is not a PyTorch checkpoint (damaged zip archive: "
                               f"{str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})") from None
    bound = min(MAX_CHECKPOINT_BYTES, MAX_INFLATION * size + _SLACK)
    if inflated > bound:
        raise SiamcliError(f"{path} is not loaded: its {size:,} bytes inflate to {inflated:,} "
                           f"(more than the {bound:,} a checkpoint of this size may hold)")
    return path
