"""The weights that ship with siamcli (``weights/``), found and checked before use.

``weights/manifest.json`` lists each file with its architecture and sha256;
a file whose digest differs from the manifest is refused. The folder is
looked up next to the package (a source checkout or editable install) and
under ``<prefix>/share/siamcli/weights`` (where a wheel installs it).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import SiamcliError

MANIFEST = "manifest.json"


def weight_dirs() -> List[Path]:
    """Folders that may hold the bundled weights, in the order they are searched."""
    here = Path(__file__).resolve().parent
    return [here.parent / "weights", Path(sys.prefix) / "share" / "siamcli" / "weights"]


def weights_dir() -> Optional[Path]:
    for folder in weight_dirs():
        if (folder / MANIFEST).is_file():
            return folder
    return None


def read_manifest(folder: Optional[Path] = None) -> Dict[str, Any]:
    folder = folder or weights_dir()
    if folder is None:
        return {}
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise SiamcliError(f"{folder / MANIFEST} is unreadable ({exc})") from None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_weights(file_name: str, folder: Optional[Path] = None) -> Path:
    """Path of the bundled ``file_name`` after checking its sha256 against the manifest."""
    folder = folder or weights_dir()
    if folder is None:
        raise SiamcliError(
            "siamcli's bundled weights are not installed (no weights/manifest.json found in "
            + ", ".join(str(d) for d in weight_dirs()) + "); pass --weights FILE")
    entry = read_manifest(folder).get("models", {}).get(file_name)
    path = folder / file_name
    if entry is None:
        raise SiamcliError(f"{folder / MANIFEST} does not list {file_name}; pass --weights FILE")
    if not path.is_file():
        raise SiamcliError(f"bundled weights {path} are missing; reinstall siamcli or pass --weights FILE")
    actual = sha256(path)
    if actual != entry.get("sha256"):
        raise SiamcliError(
            f"bundled weights {path} are damaged: sha256 {actual[:12]}... differs from the manifest's "
            f"{str(entry.get('sha256'))[:12]}...; reinstall siamcli")
    return path
