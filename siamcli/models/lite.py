"""siamcli's own light Siamese trackers (the bundled default models).

EfficientNet-Lite0 up to its stride-16 stage (112 channels, ImageNet
weights), a 1x1 neck to ``channels``, then one depthwise-correlation tower
shared by a classification and a box branch:

* ``siamrpn_lite0``: anchor-based (SiamRPN) with one anchor per position whose
  shape is the current target size: 2 scores and 4 deltas (dx, dy, log dw, log dh);
* ``siamban_lite0``: anchor-free (SiamBAN), 2 scores and 4 distances per point,
  in units of the current target width and height.

Both predict the box relative to the target's current size (``box_units =
"target"`` in :class:`siamcli.tracking.params.TrackerParams`): a scale or
aspect change is what the network sees between template and search, so it
can be learnt from any pair of frames, boxes with visible borders or not.

Template 127 px -> 8x8 features, cut to the central 6x6, then a 3x3
adapt conv -> 4x4 kernels (computed once per target, in ``extract_template``);
search 255 px -> 16x16 -> 14x14 after its adapt conv; depthwise
correlation -> 11x11 score map (``base_size`` 2 in :class:`TrackerParams`).
Inputs are raw RGB 0-255 pixels; the model normalises them itself. ``taps``
lets the neck read several stride-16 blocks concatenated (a training
experiment, ``scripts/train_default.py --taps``; the bundled models read block 10).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .backbones.efficientnet_lite import INPUT_MEAN, INPUT_STD, EfficientNetLite, block_layout
from .base import SiameseModel
from .heads import xcorr_depthwise

#: stride of the features, template cut, anchors
STRIDE = 16
TEMPLATE_CENTER = 6
ANCHOR_NUM = 1
#: BAN distances are exp(raw) target sizes; raw is capped so an untrained head cannot overflow
LOC_CAP = 6.0


def _adapt(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _branch(ch: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ch, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                         nn.Conv2d(ch, out, 1))


class LiteHead(nn.Module):
    """Shared adapt convs + depthwise correlation, then ``cls`` and ``loc`` 1x1 branches."""

    def __init__(self, channels: int, cls_out: int, loc_out: int) -> None:
        super().__init__()
        self.conv_kernel = _adapt(channels, channels)
        self.conv_search = _adapt(channels, channels)
        self.cls = _branch(channels, cls_out)
        self.loc = _branch(channels, loc_out)

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feat = xcorr_depthwise(search, kernel)
        return self.cls(feat), self.loc(feat)


class LiteSiamese(SiameseModel):
    """EfficientNet-Lite0 backbone, 1x1 neck, :class:`LiteHead` (see module doc)."""

    def __init__(self, family: str, channels: int = 128, taps: Tuple[int, ...] = (10,)) -> None:
        super().__init__()
        self.family = family
        #: backbone blocks whose outputs (all stride 16: blocks 5-10) the neck reads, concatenated
        self.taps = tuple(sorted(taps))
        if not self.taps or not all(5 <= t <= 10 for t in self.taps):
            raise ValueError(f"taps must be stride-16 blocks (5-10), not {taps!r}")
        self.backbone = EfficientNetLite(last_block=self.taps[-1])
        width = sum(spec[1] for i, spec in enumerate(block_layout()) if i in self.taps)
        self.neck = nn.Sequential(nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels))
        if family == "rpn":
            self.head = LiteHead(channels, 2 * ANCHOR_NUM, 4 * ANCHOR_NUM)
        elif family == "ban":
            self.head = LiteHead(channels, 2, 4)
        else:
            raise ValueError(f"family must be 'rpn' or 'ban', not {family!r}")

    # -- pieces the trainer also uses ------------------------------------------
    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Backbone features of raw RGB 0-255 pixels (the taps' outputs concatenated)."""
        x = (img - INPUT_MEAN) / INPUT_STD
        if len(self.taps) == 1:
            return self.backbone(x)
        return torch.cat(self.backbone.taps(x, self.taps), dim=1)

    def template_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        """Neck, central 6x6 cut and adapt conv of template backbone features."""
        z = self.neck(feat)
        lo = (int(z.shape[-1]) - TEMPLATE_CENTER) // 2  # a constant in exported graphs
        z = z[:, :, lo:lo + TEMPLATE_CENTER, lo:lo + TEMPLATE_CENTER]
        return self.head.conv_kernel(z)

    def search_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head.conv_search(self.neck(feat))

    # -- SiameseModel ------------------------------------------------------------
    def extract_template(self, z: torch.Tensor) -> torch.Tensor:
        return self.template_from_features(self.features(z))

    def extract_search(self, x: torch.Tensor) -> torch.Tensor:
        return self.search_from_features(self.features(x))

    def correlate(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls, loc = self.head(zf, xf)
        if self.family == "ban":
            loc = torch.exp(loc.clamp(max=LOC_CAP))
        return cls, loc


def siamrpn_lite0() -> SiameseModel:
    return LiteSiamese("rpn").eval()


def siamban_lite0() -> SiameseModel:
    return LiteSiamese("ban").eval()
