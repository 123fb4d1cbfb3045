"""The small interface between the tracker and whatever runs the network."""
from __future__ import annotations

from typing import Any, Protocol, Tuple

import numpy as np


class Engine(Protocol):
    """Runs the two branches of a Siamese network.

    ``template(patch)`` returns opaque template features (kept by the tracker);
    ``track(patch, zf)`` returns ``(cls, loc)`` as float32 numpy arrays with
    the layouts documented in :mod:`siamcli.models.base`.
    Patches are uint8 arrays, (H, W, 3) or a batch (N, H, W, 3).
    """

    name: str

    def template(self, patch: np.ndarray) -> Any:
        ...

    def track(self, patch: np.ndarray, zf: Any) -> Tuple[np.ndarray, np.ndarray]:
        ...
