"""Eager PyTorch engine (CPU, or CUDA when present)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

from ..models.base import SiameseModel


def pick_device(device: Optional[str] = None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchEngine:
    """Runs a :class:`SiameseModel` with ``torch.inference_mode`` in fp32."""

    name = "torch"

    def __init__(self, model: SiameseModel, device: Optional[str] = None) -> None:
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)

    def _to_tensor(self, patch: np.ndarray) -> torch.Tensor:
        arr = patch if patch.ndim == 4 else patch[None]
        tensor = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        return tensor.permute(0, 3, 1, 2).float()

    def template(self, patch: np.ndarray) -> Any:
        with torch.inference_mode():
            return self.model.extract_template(self._to_tensor(patch))

    def track(self, patch: np.ndarray, zf: Any) -> Tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            cls, loc = self.model.correlate(zf, self.model.extract_search(self._to_tensor(patch)))
        return cls.float().cpu().numpy(), loc.float().cpu().numpy()
