"""Channel-adjust necks of SiamRPN++ / SiamBAN (pysot ``AdjustLayer`` / ``AdjustAllLayer``).

Each level is a 1x1 convolution (no bias) and batch norm, kept as
``downsample.{0,1}``. Template features (width < 20) are also cropped to their
central ``center_size`` x ``center_size`` window: 15x15 becomes ``[4:11, 4:11]``.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import nn

#: feature maps narrower than this are template features and get cropped
CROP_BELOW_WIDTH = 20

Features = Union[torch.Tensor, List[torch.Tensor]]


class AdjustLayer(nn.Module):
    """1x1 conv + BN to ``out_channels``; centre crop of template-sized maps."""

    def __init__(self, in_channels: int, out_channels: int, center_size: int = 7) -> None:
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.center_size = center_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        width = x.shape[3]
        if width < CROP_BELOW_WIDTH:
            lo = (width - self.center_size) // 2
            hi = lo + self.center_size
            x = x[:, :, lo:hi, lo:hi]
        return x


class AdjustAllLayer(nn.Module):
    """One ``AdjustLayer`` per feature level: ``downsample2/3/4`` (or ``downsample`` alone)."""

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int],
                 center_size: int = 7) -> None:
        super().__init__()
        in_channels = _as_list(in_channels)
        out_channels = _as_list(out_channels)
        if len(in_channels) != len(out_channels):
            raise ValueError(
                f"AdjustAllLayer: {len(in_channels)} in_channels but {len(out_channels)} out_channels")
        self.num = len(in_channels)
        if self.num == 1:
            self.downsample = AdjustLayer(in_channels[0], out_channels[0], center_size)
        else:
            for i, (cin, cout) in enumerate(zip(in_channels, out_channels)):
                self.add_module(f"downsample{i + 2}", AdjustLayer(cin, cout, center_size))
        self.out_channels = list(out_channels)

    def forward(self, features: Features) -> Features:
        if self.num == 1:
            if isinstance(features, (list, tuple)):
                features = features[0]
            return self.downsample(features)
        if len(features) != self.num:
            raise ValueError(f"AdjustAllLayer expects {self.num} feature maps, got {len(features)}")
        return [getattr(self, f"downsample{i + 2}")(f) for i, f in enumerate(features)]


def _as_list(v) -> List[int]:
    return [int(c) for c in v] if isinstance(v, (list, tuple)) else [int(v)]


#: config ADJUST.TYPE -> class
NECKS = {
    "AdjustLayer": AdjustLayer,
    "AdjustAllLayer": AdjustAllLayer,
}
