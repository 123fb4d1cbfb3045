"""Correlation heads of SiamRPN / SiamRPN++ (pysot) and SiamBAN.

Every head is called as ``head(zf, xf) -> (cls, loc)`` with template features
``zf`` and search features ``xf`` (a tensor, or one tensor per level for the
``Multi*`` heads). Template and search batches either have the same size N
(sample i is correlated with template i) or one of them has size 1 and is
shared by the whole batch of the other.

The call is split in two so that a tracker does the template's half once per
target, not once per frame: ``head.kernels(zf)`` runs the template-side convs
and returns the correlation kernels as a flat list of tensors, and
``head.respond(kernels, xf)`` does the rest. ``head(zf, xf)`` is
``head.respond(head.kernels(zf), xf)``.
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
    # the kernels in plain (N*C, 1, h, w) order: a channels-last template (bf16 and fp16
    # engines) would otherwise reshape to a strided weight that oneDNN copies, and the result would
    # come out NCHW, copied again by the next channels-last conv
    k = kernel.contiguous().reshape(n * c, 1, *kernel.shape[2:])
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


def _levels(fs, count: int, name: str, what: str = "feature levels"):
    """``fs`` checked to be a sequence of ``count`` tensors."""
    if isinstance(fs, torch.Tensor):
        raise ValueError(f"{name} expects one tensor per level ({count}), got a single tensor")
    if len(fs) != count:
        raise ValueError(f"{name} expects {count} {what}, got {len(fs)}")
    return fs


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

    def kernel(self, z_f: torch.Tensor) -> torch.Tensor:
        """The template's correlation kernel (its adapted features)."""
        return self.conv_kernel(z_f)

    def respond(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(xcorr_depthwise(self.conv_search(search), kernel))

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.respond(self.kernel(kernel), search)


class _PairHead(nn.Module):
    """A ``cls`` and a ``loc`` :class:`DepthwiseXCorr` on one feature level."""

    def kernels(self, z_f: torch.Tensor) -> List[torch.Tensor]:
        return [self.cls.kernel(z_f), self.loc.kernel(z_f)]

    def respond(self, kernels: Sequence[torch.Tensor], x_f: torch.Tensor) -> Pair:
        return self.cls.respond(kernels[0], x_f), self.loc.respond(kernels[1], x_f)

    def forward(self, z_f: torch.Tensor, x_f: torch.Tensor) -> Pair:
        return self.respond(self.kernels(z_f), x_f)


class _LevelsHead(nn.Module):
    """One :class:`_PairHead` per feature level (``{prefix}2``, ``{prefix}3``, ...); the
    kernels are the levels' kernels in order, two per level."""

    prefix = ""

    def _level(self, i: int) -> _PairHead:
        return getattr(self, f"{self.prefix}{i + 2}")

    def kernels(self, z_fs) -> List[torch.Tensor]:
        name = type(self).__name__
        return [k for i, z_f in enumerate(_levels(z_fs, self.num_levels, name))
                for k in self._level(i).kernels(z_f)]

    def level_outputs(self, kernels: Sequence[torch.Tensor], x_fs) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Each level's (cls, loc) as two lists."""
        name = type(self).__name__
        _levels(kernels, 2 * self.num_levels, name, "kernels (two per level)")
        pairs = [self._level(i).respond(kernels[2 * i:2 * i + 2], x_f)
                 for i, x_f in enumerate(_levels(x_fs, self.num_levels, name))]
        return [c for c, _ in pairs], [l for _, l in pairs]

    def respond(self, kernels: Sequence[torch.Tensor], x_fs) -> Pair:
        """The levels' outputs combined (each head averages them its own way)."""
        raise NotImplementedError

    def forward(self, z_fs, x_fs) -> Pair:
        return self.respond(self.kernels(z_fs), x_fs)


class DepthwiseRPN(_PairHead):
    """SiamRPN++ single-level head: ``cls`` (2K channels) and ``loc`` (4K channels)."""

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * anchor_num)


class MultiRPN(_LevelsHead):
    """One ``DepthwiseRPN`` per level (``rpn2``, ``rpn3``, ...), outputs averaged.

    With ``weighted`` the average uses softmax(``cls_weight``) and
    softmax(``loc_weight``) (learned, one entry per level).
    """

    prefix = "rpn"

    def __init__(self, anchor_num: int, in_channels: Sequence[int], weighted: bool = False) -> None:
        super().__init__()
        self.weighted = bool(weighted)
        self.num_levels = len(in_channels)
        for i, c in enumerate(in_channels):
            self.add_module(f"rpn{i + 2}", DepthwiseRPN(anchor_num, c, c))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num_levels))
            self.loc_weight = nn.Parameter(torch.ones(self.num_levels))

    def respond(self, kernels: Sequence[torch.Tensor], x_fs) -> Pair:
        cls, loc = self.level_outputs(kernels, x_fs)
        return (_weighted_sum(cls, self.cls_weight if self.weighted else None),
                _weighted_sum(loc, self.loc_weight if self.weighted else None))


class DepthwiseBAN(_PairHead):
    """SiamBAN single-level head: ``cls`` (cls_out_channels) and ``loc`` (4, raw)."""

    def __init__(self, in_channels: int = 256, out_channels: int = 256,
                 cls_out_channels: int = 2, weighted: bool = False) -> None:
        super().__init__()
        # ``weighted`` is accepted (SiamBAN configs may pass it) and has no effect
        self.cls = DepthwiseXCorr(in_channels, out_channels, cls_out_channels)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4)


class MultiBAN(_LevelsHead):
    """One ``DepthwiseBAN`` per level (``box2``, ``box3``, ...).

    Each level's loc becomes ``exp(loc * loc_scale[i])`` (positive distances);
    levels are averaged, softmax-weighted when ``weighted``.
    """

    prefix = "box"

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

    def respond(self, kernels: Sequence[torch.Tensor], x_fs) -> Pair:
        cls, raw = self.level_outputs(kernels, x_fs)
        # in float32 even in a half network: exp overflows fp16 above 11
        loc = [torch.exp(l.float() * self.loc_scale[i].float()) for i, l in enumerate(raw)]
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

    def kernels(self, z_f: torch.Tensor) -> List[torch.Tensor]:
        return [self.template_cls_conv(z_f), self.template_loc_conv(z_f)]

    def respond(self, kernels: Sequence[torch.Tensor], x_f: torch.Tensor) -> Pair:
        cls = xcorr_full(self.search_cls_conv(x_f), kernels[0])
        loc = xcorr_full(self.search_loc_conv(x_f), kernels[1])
        return cls, self.loc_adjust(loc)

    def forward(self, z_f: torch.Tensor, x_f: torch.Tensor) -> Pair:
        return self.respond(self.kernels(z_f), x_f)


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
