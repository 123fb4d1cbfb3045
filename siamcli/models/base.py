"""The interface every Siamese network in siamcli implements.

A model is stateless with respect to the target: ``template(z)`` returns the
template features (the correlation kernels) and ``track(x, zf)`` correlates
the search features against them. ``track(x)`` without ``zf`` uses the
features of the last ``template()`` call, as a convenience.

Inputs are float32 NCHW tensors of raw 0-255 pixel values (no mean/std
normalisation), in the channel order the weights were trained with.

Outputs of ``track``:

* family ``"rpn"`` (anchors): ``cls`` (N, 2K, S, S) logits, channels
  ``0..K-1`` background and ``K..2K-1`` foreground; ``loc`` (N, 4K, S, S)
  anchor deltas, channel = coord * K + k.
* family ``"ban"`` (points): ``cls`` (N, 2, S, S) logits (channel 1 is the
  target); ``loc`` (N, 4, S, S) positive left/top/right/bottom distances in
  search-patch pixels (any exp is applied inside the model).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import nn


class SiameseModel(nn.Module):
    """Base class: subclasses implement ``extract`` and ``correlate``."""

    #: "rpn" (anchor-based, pysot SiamRPN/SiamRPN++) or "ban" (anchor-free points)
    family: str = "rpn"

    def __init__(self) -> None:
        super().__init__()
        # plain attribute, not a buffer: never part of the state dict
        self._last_zf: Optional[Any] = None

    # -- to implement -------------------------------------------------------
    def extract_template(self, z: torch.Tensor) -> Any:
        """Backbone (+ neck) features of a template patch."""
        raise NotImplementedError

    def extract_search(self, x: torch.Tensor) -> Any:
        """Backbone (+ neck) features of a search patch."""
        raise NotImplementedError

    def correlate(self, zf: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """Head: correlate search features with template features -> (cls, loc)."""
        raise NotImplementedError

    # -- public API ---------------------------------------------------------
    def template(self, z: torch.Tensor) -> Any:
        """Compute (and remember) the template features of patch ``z``."""
        zf = self.extract_template(z)
        self._last_zf = zf
        return zf

    def track(self, x: torch.Tensor, zf: Any = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the search branch on ``x`` against ``zf`` (default: the last template)."""
        if zf is None:
            zf = self._last_zf
            if zf is None:
                raise RuntimeError("track() called before template()")
        return self.correlate(zf, self.extract_search(x))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Template and search in one call (inference only; used for export and tests)."""
        return self.correlate(self.extract_template(z), self.extract_search(x))
