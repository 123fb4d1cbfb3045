"""Dilated ("atrous") ResNet-50 backbone of SiamRPN++ / SiamBAN (pysot ``resnet50``).

Differences from the classification ResNet-50, all of which the published
checkpoints depend on:

* ``conv1`` is 7x7 stride 2 with **no** padding; the 3x3/2 max pool pads by 1;
* the strided 3x3 convolution of layer2 (and its shortcut) use no padding;
* layer3 and layer4 keep stride 1 and use dilation 2 and 4 instead, so the
  output stride stays 8; the first block of such a layer uses half the
  dilation in its 3x3 convolution and its shortcut;
* the shortcut of layer2..4 is a **3x3** convolution (1x1 only in layer1).

A 127x127 template gives 15x15 features at layers 2..4, a 255x255 search
patch 31x31. ``used_layers`` picks outputs out of
``[relu(bn1(conv1)), layer1, layer2, layer3, layer4]`` (indices 0..4); a
single index returns a tensor, several return a list.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import nn

EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride or dilation) -> 1x1 residual block, widening by 4."""

    #: each BN applied straight to its conv's output (see siamcli.engines.fusion)
    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        if stride != 1 and dilation != 1:
            raise ValueError("a bottleneck block may be strided or dilated, not both")
        # strided convs are 'valid'; unstrided ones keep the size
        padding = 0 if stride > 1 else dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=padding,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNetAtrous(nn.Module):
    """Bottleneck ResNet with output stride 8 (see module docstring)."""

    CONV_BN_PAIRS = (("conv1", "bn1"),)

    def __init__(self, blocks: Sequence[int] = (3, 4, 6, 3),
                 used_layers: Sequence[int] = (2, 3, 4)) -> None:
        super().__init__()
        used = [int(i) for i in used_layers]
        if not used or any(i < 0 or i > 4 for i in used):
            raise ValueError(f"resnet used_layers must be indices in 0..4, got {list(used_layers)}")
        self.used_layers = used
        self._inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, blocks[0])
        self.layer2 = self._make_layer(128, blocks[1], stride=2)
        self.num_layers = 2
        # layer4 runs on layer3's output, so it needs layer3 too
        if 3 in used or 4 in used:
            self.layer3 = self._make_layer(256, blocks[2], dilation=2)
            self.num_layers = 3
        if 4 in used:
            self.layer4 = self._make_layer(512, blocks[3], dilation=4)
            self.num_layers = 4
        widths = [64, 64 * EXPANSION, 128 * EXPANSION, 256 * EXPANSION, 512 * EXPANSION]
        #: channel count of each returned feature map
        self.out_channels = [widths[i] for i in used]

    def _make_layer(self, planes: int, count: int, stride: int = 1,
                    dilation: int = 1) -> nn.Sequential:
        out = planes * EXPANSION
        first_dilation = max(dilation // 2, 1)
        downsample = None
        if stride != 1 or dilation != 1:
            pad = first_dilation if dilation > 1 else 0
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, out, 3, stride=stride, padding=pad,
                          dilation=first_dilation, bias=False),
                nn.BatchNorm2d(out))
        elif self._inplanes != out:
            downsample = nn.Sequential(nn.Conv2d(self._inplanes, out, 1, bias=False),
                                       nn.BatchNorm2d(out))
        first_block_dilation = first_dilation if downsample is not None else dilation
        layers = [Bottleneck(self._inplanes, planes, stride, first_block_dilation, downsample)]
        self._inplanes = out
        layers += [Bottleneck(out, planes, 1, dilation) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        x = self.relu(self.bn1(self.conv1(x)))
        feats = [x]
        last = max(self.used_layers)
        x = self.maxpool(x)
        for i in range(1, last + 1):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        out = [feats[i] for i in self.used_layers]
        return out[0] if len(out) == 1 else out


def resnet50(**kwargs) -> ResNetAtrous:
    """pysot ``resnet50`` (kwargs: ``used_layers``)."""
    return ResNetAtrous((3, 4, 6, 3), **kwargs)
