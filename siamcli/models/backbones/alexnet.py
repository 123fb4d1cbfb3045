"""AlexNet backbones as used by pysot's SiamRPN (``alexnetlegacy`` and ``alexnet``).

Both variants are five valid-padding convolutions (11x11/2, 5x5, 3x3, 3x3,
3x3), each followed by batch norm; the first two are followed by a 3x3/2 max
pool, and every block but the last by a ReLU. Convolutions carry a bias.
A 127x127 template gives 6x6 features, a 287x287 search patch 26x26.

``AlexNetLegacy`` keeps all layers in one ``features`` sequence (state-dict
keys ``features.{0,1,4,5,8,9,11,12,14,15}.*``), ``AlexNet`` groups them into
``layer1`` .. ``layer5``.
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

#: channel widths at width_mult 1.0: input, then the output of each conv
BASE_WIDTHS = (96, 256, 384, 384, 256)


def _widths(width_mult: float) -> List[int]:
    return [3] + [int(c * width_mult) for c in BASE_WIDTHS]


def _stage(cin: int, cout: int, kernel: int, stride: int = 1,
           pool: bool = False, relu: bool = True) -> List[nn.Module]:
    mods: List[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride), nn.BatchNorm2d(cout)]
    if pool:
        mods.append(nn.MaxPool2d(3, stride=2))
    if relu:
        mods.append(nn.ReLU(inplace=True))
    return mods


def _stages(width_mult: float) -> List[List[nn.Module]]:
    w = _widths(width_mult)
    return [
        _stage(w[0], w[1], 11, stride=2, pool=True),
        _stage(w[1], w[2], 5, pool=True),
        _stage(w[2], w[3], 3),
        _stage(w[3], w[4], 3),
        _stage(w[4], w[5], 3, relu=False),
    ]


class AlexNetLegacy(nn.Module):
    """pysot ``alexnetlegacy``: one flat ``features`` Sequential."""

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        self.features = nn.Sequential(*[m for stage in _stages(width_mult) for m in stage])
        self.feature_size = _widths(width_mult)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class AlexNet(nn.Module):
    """pysot ``alexnet``: the same network split into ``layer1`` .. ``layer5``."""

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        for i, stage in enumerate(_stages(width_mult), start=1):
            self.add_module(f"layer{i}", nn.Sequential(*stage))
        self.feature_size = _widths(width_mult)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"layer{i}")(x)
        return x


def alexnetlegacy(**kwargs) -> AlexNetLegacy:
    return AlexNetLegacy(**kwargs)


def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)
