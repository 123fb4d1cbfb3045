"""What a score was measured with, for each tracker an evaluation compares: the model, its weights
(file name and sha256), the runtime and its precision, and siamcli's version. Recorded beside the
figures (``eval --json``, ``eval --report``), so that a result read later names the files that
produced it and the runtime that ran them."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from ..bundled import sha256

PathLike = Union[str, Path]


def siamcli_version() -> str:
    """The installed siamcli's version (``"unknown"`` for a checkout run without an install)."""
    try:
        return metadata.version("siamcli")
    except metadata.PackageNotFoundError:
        return "unknown"


def tracker_record(model: str, weights: Sequence[PathLike], engine: Optional[str],
                   precision: Optional[str]) -> Dict[str, Any]:
    """The record of one tracker: ``weights`` are the files its network was read from (a checkpoint,
    or the two ONNX files), none for a tracker without a network."""
    return {"model": model, "weights": [{"file": Path(p).name, "sha256": sha256(Path(p))} for p in weights],
            "engine": engine, "precision": precision, "siamcli": siamcli_version()}


def opencv_record(name: str) -> Dict[str, Any]:
    """The record of one of OpenCV's classic trackers (:mod:`.baselines`): no weights; the runtime
    is the OpenCV build."""
    import cv2

    return tracker_record(name, [], f"opencv {cv2.__version__}", None)


def weights_text(record: Dict[str, Any]) -> str:
    """The weights of a record in one line of a table: ``file (sha256 abcdef123456)``, joined."""
    return ", ".join(f"{w['file']} (sha256 {w['sha256'][:12]})" for w in record.get("weights") or []) or "-"
