"""Correlation heads of SiamRPN / SiamRPN++ (pysot) and SiamBAN.

Every head is called as ``head(zf, xf) -> (cls, loc)`` with template features
``zf`` and search features ``xf`` (a tensor, or one tensor per level for the
``Multi*`` heads). Template and search batches either have the same size N
(sample i is correlated with template i) or one of them has size 1 and is
shared by the whole batch of the other.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

Pair = Tuple[torch.Tensor, torch.Tensor]


# -- correlation primitives -------------------------------------------------
def _match_batches(search: torch.Tensor, kernel: torch.Tensor) -> Pair:
    ns, nk = search.shape[0], kernel.shape[0]
    if ns == nk:
        return search, kernel
    if nk == 1:
        return search, kernel.expand(ns, *kernel.shape[1:])
    if ns == 1:
        return search.expand(nk, *search.shape[1:]), kernel
    raise ValueError(f"cannot correlate a batch of {ns} search maps with {nk} templates")


def xcorr_depthwise(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel cross-correlation of (N,C,H,W) search with (N,C,h,w) kernels.

    Returns (N, C, H-h+1, W-w+1). The batch is folded into the channels and
    run as one grouped convolution.
    """
    search, kernel = _match_batches(search, kernel)
    n, c = kernel.shape[:2]
    if search.shape[1] != c:
        raise ValueError(f"search has {search.shape[1]} channels, template {c}")
    x = search.reshape(1, n * c, *search.shape[2:])
    k = kernel.reshape(n * c, 1, *kernel.shape[2:])
    out = F.conv2d(x, k, groups=n * c)
    return out.reshape(n, c, *out.shape[2:])


def xcorr_full(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full cross-correlation: (N,C,H,W) search with (N, O*C, h, w) kernels -> (N, O, H', W').

    Kernel channel ``o * C + c`` holds input channel ``c`` of output ``o``.
    """
    search, kernel = _match_batches(search, kernel)
    n, c = search.shape[:2]
    if kernel.shape[1] % c:
        raise ValueError(f"kernel channels {kernel.shape[1]} are not a multiple of {c}")
    o = kernel.shape[1] // c
    x = search.reshape(1, n * c, *search.shape[2:])
    k = kernel.reshape(n * o, c, *kernel.shape[2:])
    out = F.conv2d(x, k, groups=n)
    return out.reshape(n, o, *out.shape[2:])


def _weighted_sum(maps: Sequence[torch.Tensor], weight: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax-weighted sum of ``maps`` (plain mean when ``weight`` is None)."""
    if weight is None:
        return sum(maps) / len(maps)
    w = F.softmax(weight, dim=0)
    total = maps[0] * w[0]
    for i in range(1, len(maps)):
        total = total + maps[i] * w[i]
    return total


def _levels(z_fs, x_fs, count: int, name: str):
    if isinstance(z_fs, torch.Tensor) or isinstance(x_fs, torch.Tensor):
        raise ValueError(f"{name} expects one feature map per level ({count}), got a single tensor")
    if len(z_fs) != count or len(x_fs) != count:
        raise ValueError(f"{name} expects {count} feature levels, got {len(z_fs)} and {len(x_fs)}")
    return zip(z_fs, x_fs)


# -- depthwise correlation ------------------------------------------------
def _conv_bn_relu(cin: int, cout: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthwiseXCorr(nn.Module):
    """Adapt both branches (3x3 conv, BN, ReLU), correlate per channel, then a 1x1 head."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(xcorr_depthwise(self.conv_search(search), self.conv_kernel(kernel)))


class DepthwiseRPN(nn.Module):
    """SiamRPN++ single-level head: ``cls`` (2K channels) and ``loc`` (4K channels)."""

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * anchor_num)

    def forward(self, z_f: torch.Tensor, x_f: torch.Tensor) -> Pair:
        return self.cls(z_f, x_f), self.loc(z_f, x_f)


class MultiRPN(nn.Module):
    """One ``DepthwiseRPN`` per level (``rpn2``, ``rpn3``, ...), outputs averaged.

    With ``weighted`` the average uses softmax(``cls_weight``) and
    softmax(``loc_weight``) (learned, one entry per level).
    """

    def __init__(self, anchor_num: int, in_channels: Sequence[int], weighted: bool = False) -> None:
        super().__init__()
        self.weighted = bool(weighted)
        self.num_levels = len(in_channels)
        for i, c in enumerate(in_channels):
            self.add_module(f"rpn{i + 2}", DepthwiseRPN(anchor_num, c, c))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num_levels))
            self.loc_weight = nn.Parameter(torch.ones(self.num_levels))

    def forward(self, z_fs, x_fs) -> Pair:
        cls, loc = [], []
        for i, (z_f, x_f) in enumerate(_levels(z_fs, x_fs, self.num_levels, "MultiRPN")):
            c, l = getattr(self, f"rpn{i + 2}")(z_f, x_f)
            cls.append(c)
            loc.append(l)
        return (_weighted_sum(cls, self.cls_weight if self.weighted else None),
                _weighted_sum(loc, self.loc_weight if self.weighted else None))


class DepthwiseBAN(nn.Module):
    """SiamBAN single-level head: ``cls`` (cls_out_channels) and ``loc`` (4, raw)."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256,
                 cls_out_channels: int = 2, weighted: bool = False) -> None:
        super().__init__()
        # ``weighted`` is accepted (SiamBAN configs may pass it) and has no effect
        self.cls = DepthwiseXCorr(in_channels, out_channels, cls_out_channels)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4)

    def forward(self, z_f: torch.Tensor, x_f: torch.Tensor) -> Pair:
        return self.cls(z_f, x_f), self.loc(z_f, x_f)


class MultiBAN(nn.Module):
    """One ``DepthwiseBAN`` per level (``box2``, ``box3``, ...).

    Each level's loc becomes ``exp(loc * loc_scale[i])`` (positive distances);
    levels are averaged, softmax-weighted when ``weighted``.
    """

    def __init__(self, in_channels: Sequence[int], cls_out_channels: int = 2,
                 weighted: bool = False) -> None:
        super().__init__()
        self.weighted = bool(weighted)
        self.num_levels = len(in_channels)
        for i, c in enumerate(in_channels):
            self.add_module(f"box{i + 2}", DepthwiseBAN(c, c, cls_out_channels))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num_levels))
            self.loc_weight = nn.Parameter(torch.ones(self.num_levels))
        self.loc_scale = nn.Parameter(torch.ones(self.num_levels))

    def forward(self, z_fs, x_fs) -> Pair:
        cls, loc = [], []
        for i, (z_f, x_f) in enumerate(_levels(z_fs, x_fs, self.num_levels, "MultiBAN")):
            c, l = getattr(self, f"box{i + 2}")(z_f, x_f)
            cls.append(c)
            # in float32 even in a half network: exp overflows fp16 above 11
            loc.append(torch.exp(l.float() * self.loc_scale[i].float()))
        return (_weighted_sum(cls, self.cls_weight if self.weighted else None),
                _weighted_sum(loc, self.loc_weight if self.weighted else None))


# -- up-channel correlation -------------------------------------------------
class _UPChannelHead(nn.Module):
    """Template conv lifts features to ``out * C`` channels, used as full-correlation kernels."""

    def __init__(self, feature_in: int, cls_output: int, loc_output: int) -> None:
        super().__init__()
        self.template_cls_conv = nn.Conv2d(feature_in, feature_in * cls_output, 3)
        self.template_loc_conv = nn.Conv2d(feature_in, feature_in * loc_output, 3)
        self.search_cls_conv = nn.Conv2d(feature_in, feature_in, 3)
        self.search_loc_conv = nn.Conv2d(feature_in, feature_in, 3)
        self.loc_adjust = nn.Conv2d(loc_output, loc_output, 1)

    def forward(self, z_f: torch.Tensor, x_f: torch.Tensor) -> Pair:
        cls = xcorr_full(self.search_cls_conv(x_f), self.template_cls_conv(z_f))
        loc = xcorr_full(self.search_loc_conv(x_f), self.template_loc_conv(z_f))
        return cls, self.loc_adjust(loc)


class UPChannelRPN(_UPChannelHead):
    """SiamRPN's original up-channel head: 2K cls and 4K loc maps."""

    def __init__(self, anchor_num: int = 5, feature_in: int = 256) -> None:
        super().__init__(feature_in, 2 * anchor_num, 4 * anchor_num)


class UPChannelBAN(_UPChannelHead):
    """SiamBAN's up-channel head: ``cls_out_channels`` cls and 4 (raw) loc maps."""

    def __init__(self, feature_in: int = 256, cls_out_channels: int = 2) -> None:
        super().__init__(feature_in, cls_out_channels, 4)


#: config RPN.TYPE -> class (pysot)
RPN_HEADS = {
    "UPChannelRPN": UPChannelRPN,
    "DepthwiseRPN": DepthwiseRPN,
    "MultiRPN": MultiRPN,
}

#: config BAN.TYPE -> class (SiamBAN)
BAN_HEADS = {
    "UPChannelBAN": UPChannelBAN,
    "DepthwiseBAN": DepthwiseBAN,
    "MultiBAN": MultiBAN,
}
