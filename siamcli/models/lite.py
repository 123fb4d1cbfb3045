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
correlation -> 11x11 score map (``base_size`` 2 in :class:`TrackerParams`). They are trained
at that size; the tracker runs them on 223 px search crops (9x9 maps, :mod:`siamcli.catalog`).
Inputs are raw RGB 0-255 pixels; the model normalises them itself.

:class:`LiteEnsemble` runs several trained necks and heads ("members") on one
shared backbone and averages their raw output maps: heads trained alike from
different seeds disagree a lot on real sequences, and their mean is steadier.
The bundled ``siamrpn`` and ``siamban`` hold one member each (``siamrpn_lite0x1``,
``siamban_lite0x1``): two or three seeds a family measured no better when tracking the validation
set (weights/README.md). :class:`LiteMixed` (``siamrpnban_lite0x1``, the default) runs both
families' heads on the one backbone and averages the two families' answers in SiamRPN's form.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Tuple

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


def _neck(width: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels))


def _head(family: str, channels: int) -> LiteHead:
    if family == "rpn":
        return LiteHead(channels, 2 * ANCHOR_NUM, 4 * ANCHOR_NUM)
    if family == "ban":
        return LiteHead(channels, 2, 4)
    raise ValueError(f"family must be 'rpn' or 'ban', not {family!r}")


def _kernel(neck: nn.Module, head: LiteHead, feat: torch.Tensor) -> torch.Tensor:
    """Neck, central 6x6 cut and adapt conv of template backbone features."""
    z = neck(feat)
    lo = (int(z.shape[-1]) - TEMPLATE_CENTER) // 2  # a constant in exported graphs
    z = z[:, :, lo:lo + TEMPLATE_CENTER, lo:lo + TEMPLATE_CENTER]
    return head.conv_kernel(z)


def _search(neck: nn.Module, head: LiteHead, feat: torch.Tensor) -> torch.Tensor:
    """Neck and adapt conv of search backbone features."""
    return head.conv_search(neck(feat))


def _box_output(family: str, loc: torch.Tensor) -> torch.Tensor:
    """BAN distances are exp(raw), capped; RPN deltas pass as they are."""
    return torch.exp(loc.clamp(max=LOC_CAP)) if family == "ban" else loc


class LiteSiamese(SiameseModel):
    """EfficientNet-Lite0 backbone, 1x1 neck, :class:`LiteHead` (see module doc)."""

    def __init__(self, family: str, channels: int = 128) -> None:
        super().__init__()
        self.family = family
        self.backbone = EfficientNetLite()
        self.neck = _neck(self.backbone.out_channels, channels)
        self.head = _head(family, channels)

    # -- pieces the trainer also uses ------------------------------------------
    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Backbone features of raw RGB 0-255 pixels."""
        return self.backbone((img - INPUT_MEAN) / INPUT_STD)

    def template_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        """Neck, central 6x6 cut and adapt conv of template backbone features."""
        return _kernel(self.neck, self.head, feat)

    def search_from_features(self, feat: torch.Tensor) -> torch.Tensor:
        return _search(self.neck, self.head, feat)

    # -- SiameseModel ------------------------------------------------------------
    def extract_template(self, z: torch.Tensor) -> torch.Tensor:
        return self.template_from_features(self.features(z))

    def extract_search(self, x: torch.Tensor) -> torch.Tensor:
        return self.search_from_features(self.features(x))

    def correlate(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls, loc = self.head(zf, xf)
        return cls, _box_output(self.family, loc)


class LiteMember(nn.Module):
    """One member of a :class:`LiteEnsemble`: a neck and a head, as in :class:`LiteSiamese`."""

    def __init__(self, family: str, width: int, channels: int) -> None:
        super().__init__()
        self.neck = _neck(width, channels)
        self.head = _head(family, channels)


def _summed_maps(members: Sequence["LiteMember"], parts: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The members' raw score and box maps, each member reading its own slice of the correlation, summed."""
    pairs = list(zip(members, parts))
    return sum(m.head.cls(p) for m, p in pairs), sum(m.head.loc(p) for m, p in pairs)


class LiteEnsemble(SiameseModel):
    """``members`` necks and heads of :class:`LiteSiamese` on one shared backbone (block 10).

    State dict: ``backbone.*`` once, then ``members.<i>.neck.*`` and ``members.<i>.head.*``
    (see :meth:`from_members`). The template kernels and search features of all members travel
    concatenated along the channels, so one depthwise correlation serves them all; the members'
    raw score and box maps are then averaged (for SiamBAN before the exp, a geometric mean of
    the distances), and the tracker sees one model.
    """

    def __init__(self, family: str, members: int, channels: int = 128) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one member, not {members}")
        self._build(family, [family] * members, channels)

    def _build(self, family: str, families: Sequence[str], channels: int) -> None:
        self.family = family
        self.channels = channels
        self.backbone = EfficientNetLite(last_block=10)
        width = block_layout()[10][1]
        self.members = nn.ModuleList(LiteMember(f, width, channels) for f in families)

    @classmethod
    def from_members(cls, family: str, states: Sequence[Mapping[str, torch.Tensor]]) -> "LiteEnsemble":
        """An ensemble of trained :class:`LiteSiamese` state dicts of one family (same backbone)."""
        return cls(family, len(states))._load(states)

    def _load(self, states: Sequence[Mapping[str, torch.Tensor]]) -> "LiteEnsemble":
        """Load trained :class:`LiteSiamese` state dicts, one a member, all on the same backbone."""
        backbone = {k[len("backbone."):]: v for k, v in states[0].items() if k.startswith("backbone.")}
        for i, state in enumerate(states[1:], 1):
            for key, value in backbone.items():
                if not torch.equal(state["backbone." + key], value):
                    raise ValueError(f"member {i} has another backbone ({key} differs)")
        self.backbone.load_state_dict(backbone)
        for member, state in zip(self.members, states):
            member.load_state_dict({k: v for k, v in state.items() if not k.startswith("backbone.")})
        return self.eval()

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return self.backbone((img - INPUT_MEAN) / INPUT_STD)

    def extract_template(self, z: torch.Tensor) -> torch.Tensor:
        feat = self.features(z)
        return torch.cat([_kernel(m.neck, m.head, feat) for m in self.members], dim=1)

    def extract_search(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.features(x)
        return torch.cat([_search(m.neck, m.head, feat) for m in self.members], dim=1)

    def correlate(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls, loc = _summed_maps(self.members, xcorr_depthwise(xf, zf).split(self.channels, dim=1))
        scale = 1.0 / len(self.members)
        return cls * scale, _box_output(self.family, loc * scale)


class LiteMixed(LiteEnsemble):
    """SiamRPN and SiamBAN members (:class:`LiteEnsemble`'s layout, SiamRPN's first) on one backbone,
    answering in SiamRPN's form (``family`` "rpn", boxes relative to the target).

    Each family's raw maps are averaged as in :class:`LiteEnsemble`; the SiamBAN mean distances
    (left, top, right, bottom, after the exp) become SiamRPN deltas (dx = (r - l) / 2,
    dy = (b - t) / 2, log dw = ln(l + r), log dh = ln(t + b)), and the two families' score logits
    and deltas are averaged with equal weight. Measured by tracking the validation set, the mix
    scores above either family alone (weights/README.md).
    """

    def __init__(self, rpn_members: int, ban_members: int, channels: int = 128) -> None:
        SiameseModel.__init__(self)  # not LiteEnsemble's: its members are of one family
        if rpn_members < 1 or ban_members < 1:
            raise ValueError(f"a mixed ensemble needs members of both families, not {rpn_members} + {ban_members}")
        self.rpn_members = rpn_members
        self._build("rpn", ["rpn"] * rpn_members + ["ban"] * ban_members, channels)

    @classmethod
    def from_groups(cls, rpn_states: Sequence[Mapping[str, torch.Tensor]],
                    ban_states: Sequence[Mapping[str, torch.Tensor]]) -> "LiteMixed":
        """A mixed ensemble of trained SiamRPN and SiamBAN :class:`LiteSiamese` state dicts (same backbone)."""
        return cls(len(rpn_states), len(ban_states))._load([*rpn_states, *ban_states])

    def correlate(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        parts = xcorr_depthwise(xf, zf).split(self.channels, dim=1)
        k, n = self.rpn_members, len(self.members)
        cls_rpn, delta_rpn = (m / k for m in _summed_maps(self.members[:k], parts[:k]))
        cls_ban, raw_ban = (m / (n - k) for m in _summed_maps(self.members[k:], parts[k:]))
        left, top, right, bottom = _box_output("ban", raw_ban).unbind(dim=1)
        delta_ban = torch.stack([(right - left) * 0.5, (bottom - top) * 0.5,
                                 torch.log(left + right), torch.log(top + bottom)], dim=1)
        return (cls_rpn + cls_ban) * 0.5, (delta_rpn + delta_ban) * 0.5


def siamrpn_lite0() -> SiameseModel:
    return LiteSiamese("rpn").eval()


def siamban_lite0() -> SiameseModel:
    return LiteSiamese("ban").eval()


#: members a family in the bundled models (``*_lite0x1``)
BUNDLED_MEMBERS = 1


def siamrpn_lite0x1() -> SiameseModel:
    return LiteEnsemble("rpn", BUNDLED_MEMBERS).eval()


def siamban_lite0x1() -> SiameseModel:
    return LiteEnsemble("ban", BUNDLED_MEMBERS).eval()


def siamrpnban_lite0x1() -> SiameseModel:
    return LiteMixed(BUNDLED_MEMBERS, BUNDLED_MEMBERS).eval()
