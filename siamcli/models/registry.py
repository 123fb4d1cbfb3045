"""Named network architectures, built on demand.

Builders are imported lazily so that listing names costs nothing. Every
architecture's ``state_dict()`` matches the published checkpoints key for key.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch

from ..errors import SiamcliError
from .base import SiameseModel


@dataclass(frozen=True)
class Architecture:
    """A network layout: ``builder`` (``module:function``) returns an eval-mode model."""

    name: str
    family: str
    builder: str
    summary: str

    def build(self) -> SiameseModel:
        module_name, func = self.builder.split(":")
        module = importlib.import_module(module_name, package=__package__)
        fn: Callable[[], SiameseModel] = getattr(module, func)
        return fn()


ARCHITECTURES: Dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("siamrpn_alex_dwxcorr", "rpn", ".zoo:siamrpn_alex_dwxcorr",
                     "SiamRPN, AlexNet (legacy), depthwise RPN"),
        Architecture("siamrpn_r50_l234_dwxcorr", "rpn", ".zoo:siamrpn_r50_l234_dwxcorr",
                     "SiamRPN++, dilated ResNet-50 layers 2-4, weighted multi-level depthwise RPN"),
        Architecture("siamrpn_mobilev2_l234_dwxcorr", "rpn", ".zoo:siamrpn_mobilev2_l234_dwxcorr",
                     "SiamRPN++, MobileNetV2 x1.4 layers 3/5/7, unweighted multi-level RPN"),
        Architecture("siamrpn_r50_l234_dwxcorr_lt", "rpn", ".zoo:siamrpn_r50_l234_dwxcorr_lt",
                     "SiamRPN++ long-term weights layout (128/256/512 channels)"),
        Architecture("siamban_r50_l234", "ban", ".zoo:siamban_r50_l234",
                     "SiamBAN, dilated ResNet-50 layers 2-4, anchor-free multi-level head"),
        Architecture("nanotrack_v1", "ban", ".nanotrack:nanotrack_v1",
                     "NanoTrack v1, MobileNetV3-small, stride 16"),
        Architecture("nanotrack_v2", "ban", ".nanotrack:nanotrack_v2",
                     "NanoTrack v2 (the OpenCV TrackerNano model), MobileNetV3-small, stride 16"),
        Architecture("nanotrack_v3", "ban", ".nanotrack:nanotrack_v3",
                     "NanoTrack v3, MobileNetV3-small (wider), stride 16"),
        Architecture("siamrpn_lite0", "rpn", ".lite:siamrpn_lite0",
                     "siamcli's own SiamRPN: EfficientNet-Lite0 to stride 16, depthwise RPN"),
        Architecture("siamban_lite0", "ban", ".lite:siamban_lite0",
                     "siamcli's own SiamBAN: EfficientNet-Lite0 to stride 16, box-adaptive head"),
        Architecture("siamrpn_lite0x1", "rpn", ".lite:siamrpn_lite0x1",
                     "siamcli's own SiamRPN, the bundled layout (LiteEnsemble of one member)"),
        Architecture("siamban_lite0x1", "ban", ".lite:siamban_lite0x1",
                     "siamcli's own SiamBAN, the bundled layout (LiteEnsemble of one member)"),
        Architecture("siamrpnban_lite0x1", "rpn", ".lite:siamrpnban_lite0x1",
                     "siamcli's own SiamRPN and SiamBAN heads on one EfficientNet-Lite0 backbone, "
                     "the families' answers averaged as SiamRPN deltas"),
    )
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise SiamcliError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


def build_model(name: str) -> SiameseModel:
    """Build the named architecture with freshly initialised weights (eval mode)."""
    return get_architecture(name).build()


def key_signature(name: str) -> Dict[str, Tuple[int, ...]]:
    """State-dict keys and shapes of an architecture, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = build_model(name)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def architecture_names() -> List[str]:
    return list(ARCHITECTURES)
