"""Backbones of the pysot / SiamBAN model zoos, by their config ``BACKBONE.TYPE`` name."""
from __future__ import annotations

from typing import Callable, Dict

from torch import nn

from .alexnet import AlexNet, AlexNetLegacy, alexnet, alexnetlegacy
from .mobilenetv2 import MobileNetV2, mobilenetv2
from .resnet import ResNetAtrous, resnet50

#: config TYPE -> constructor taking the config KWARGS
BACKBONES: Dict[str, Callable[..., nn.Module]] = {
    "alexnetlegacy": alexnetlegacy,
    "alexnet": alexnet,
    "resnet50": resnet50,
    "mobilenetv2": mobilenetv2,
}

__all__ = [
    "BACKBONES", "AlexNet", "AlexNetLegacy", "MobileNetV2", "ResNetAtrous",
    "alexnet", "alexnetlegacy", "mobilenetv2", "resnet50",
]
