"""The weights that ship with siamcli, found and checked before use.

``manifest.json`` lists each file with its architecture and sha256; a file
whose digest differs from the manifest is refused. An installed siamcli holds
them as package data (``siamcli/weights``, mapped from the project's top-level
``weights/`` folder by setup.cfg), so they are found through
``importlib.resources`` wherever pip put the package (a virtual environment,
``--user``, ``--target``). A source checkout or an editable install reads the
project's ``weights/`` folder beside the package instead.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import WEIGHTS_OPTION, NeedsWeights, SiamcliError

MANIFEST = "manifest.json"


def weight_dirs() -> List[Path]:
    """Folders that may hold the bundled weights, in the order they are searched."""
    folders = []
    packaged = resources.files(__package__) / "weights"
    if isinstance(packaged, Path):  # a package imported from a zip archive has no files to torch.load
        folders.append(packaged)
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if checkout not in folders:
        folders.append(checkout)
    return folders


def weights_dir() -> Optional[Path]:
    """The first folder of :func:`weight_dirs` that holds a manifest, or None."""
    for folder in weight_dirs():
        if (folder / MANIFEST).is_file():
            return folder
    return None


def read_manifest(folder: Optional[Path] = None) -> Dict[str, Any]:
    """The manifest of ``folder`` (default: :func:`weights_dir`); {} when there is none."""
    folder = folder or weights_dir()
    if folder is None:
        return {}
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise SiamcliError(f"{folder / MANIFEST} is unreadable ({exc})") from None


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_weights(file_name: str, folder: Optional[Path] = None) -> Path:
    """Path of the bundled ``file_name`` after checking its sha256 against the manifest."""
    folder = folder or weights_dir()
    if folder is None:
        raise NeedsWeights(
            "siamcli's bundled weights are not installed (no manifest.json found in "
            + ", ".join(str(d) for d in weight_dirs()) + f"); pass {WEIGHTS_OPTION}")
    entry = read_manifest(folder).get("models", {}).get(file_name)
    path = folder / file_name
    if entry is None:
        raise NeedsWeights(f"{folder / MANIFEST} does not list {file_name}; pass {WEIGHTS_OPTION}")
    if not path.is_file():
        raise NeedsWeights(f"bundled weights {path} are missing; reinstall siamcli or pass {WEIGHTS_OPTION}")
    actual = sha256(path)
    if actual != entry.get("sha256"):
        raise SiamcliError(
            f"bundled weights {path} are damaged: sha256 {actual[:12]}... differs from the manifest's "
            f"{str(entry.get('sha256'))[:12]}...; reinstall siamcli")
    return path
