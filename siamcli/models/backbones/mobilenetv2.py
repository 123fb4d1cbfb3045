"""Dilated MobileNetV2 backbone of SiamRPN++ (pysot ``mobilenetv2``).

Layout (state-dict names): ``layer0`` = [3x3/2 conv without padding, BN,
ReLU6], then ``layer1`` .. ``layer7``, each a Sequential of inverted-residual
blocks whose ``conv`` is [1x1 expand, BN, ReLU6, 3x3 depthwise, BN, ReLU6,
1x1 project, BN] (the expand conv is present even at expansion 1).

Per stage (expansion t, base channels c, blocks n, stride s, dilation d)::

    1: 1,  16, 1, 1, 1      5: 6,  96, 3, 1, 2
    2: 6,  24, 2, 2, 1      6: 6, 160, 3, 1, 4
    3: 6,  32, 3, 2, 1      7: 6, 320, 1, 1, 4
    4: 6,  64, 4, 1, 2

Stages 4..7 trade the stride of the classification network for dilation, so
the output stride stays 8: a 127x127 template gives 15x15 features, a
255x255 search patch 31x31. Strided depthwise convs are unpadded; the first
block of a stage whose dilation grows uses half the new dilation. Channels
are ``int(c * width_mult)`` (width 1.4: 44/33/44/89/134/224/448 ...).
``used_layers`` indexes the outputs of layer0..layer7.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import nn

#: (expansion, channels at width 1.0, blocks, stride, dilation) per stage 1..7
STAGES = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 1, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 1, 4),
    (6, 320, 1, 1, 4),
)


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1), residual when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int, dilation: int = 1) -> None:
        super().__init__()
        hidden = inp * expansion
        padding = dilation if dilation > 1 else (0 if stride > 1 else 1)
        self.use_residual = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=padding, dilation=dilation,
                      groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y


class MobileNetV2(nn.Module):
    """Output-stride-8 MobileNetV2 (see module docstring)."""

    def __init__(self, width_mult: float = 1.0, used_layers: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        used = [int(i) for i in used_layers]
        if not used or any(i < 0 or i > len(STAGES) for i in used):
            raise ValueError(
                f"mobilenetv2 used_layers must be indices in 0..{len(STAGES)}, got {list(used_layers)}")
        self.used_layers = used
        cin = int(32 * width_mult)
        self.layer0 = nn.Sequential(
            nn.Conv2d(3, cin, 3, stride=2, padding=0, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(inplace=True),
        )
        widths = [cin]
        prev_dilation = 1
        for idx, (t, c, n, s, d) in enumerate(STAGES, start=1):
            cout = int(c * width_mult)
            first_dilation = d if d == prev_dilation else max(d // 2, 1)
            blocks = [InvertedResidual(cin, cout, s, t, first_dilation)]
            blocks += [InvertedResidual(cout, cout, 1, t, d) for _ in range(1, n)]
            self.add_module(f"layer{idx}", nn.Sequential(*blocks))
            cin = cout
            prev_dilation = d
            widths.append(cout)
        #: channel count of each returned feature map
        self.out_channels = [widths[i] for i in used]

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        feats = []
        for i in range(max(self.used_layers) + 1):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        out = [feats[i] for i in self.used_layers]
        return out[0] if len(out) == 1 else out


def mobilenetv2(**kwargs) -> MobileNetV2:
    """pysot ``mobilenetv2`` (kwargs: ``width_mult``, ``used_layers``)."""
    return MobileNetV2(**kwargs)
