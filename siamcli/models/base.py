"""The interface every Siamese network in siamcli implements.

A model is stateless with respect to the target: ``template(z)`` returns the
template's correlation kernels and ``track(x, kernels)`` correlates the search
features against them. ``track(x)`` without kernels uses those of the last
``template()`` call, as a convenience.

The kernels are the template features after the head's template-side convs
(``kernels(zf)``), computed once per target instead of once per frame; models
whose head has no such convs use the features themselves. ``correlate(zf, xf)``
takes features and is ``respond(kernels(zf), xf)``.

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

    def kernels(self, zf: Any) -> Any:
        """The correlation kernels of template features ``zf`` (default: ``zf`` itself)."""
        return zf

    def respond(self, kernels: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """Head with the template's half done: correlate ``xf`` with ``kernels(zf)``."""
        return self.correlate(kernels, xf)

    # -- public API ---------------------------------------------------------
    def template_kernels(self, z: torch.Tensor) -> Any:
        """The correlation kernels of template patch ``z`` (what a tracker keeps per target)."""
        return self.kernels(self.extract_template(z))

    def search(self, x: torch.Tensor, kernels: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """The per-frame branch: search patch ``x`` against a template's ``kernels``."""
        return self.respond(kernels, self.extract_search(x))

    def template(self, z: torch.Tensor) -> Any:
        """Compute (and remember) the correlation kernels of patch ``z``."""
        kernels = self.template_kernels(z)
        self._last_zf = kernels
        return kernels

    def track(self, x: torch.Tensor, kernels: Any = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Run the search branch on ``x`` against ``kernels`` (default: the last template's)."""
        if kernels is None:
            kernels = self._last_zf
            if kernels is None:
                raise RuntimeError("track() called before template()")
        return self.search(x, kernels)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Template and search in one call (inference only; used for export and tests)."""
        return self.correlate(self.extract_template(z), self.extract_search(x))
