"""NanoTrack v1, v2 and v3: MobileNetV3-small backbone with a light BAN head.

The three released NanoTrack checkpoints share one backbone layout (the
first blocks of MobileNetV3-small, stride 16) and differ in the head:

* **v1**: one pixel-wise correlation (template positions x search positions)
  of the raw 48-channel backbone features, a channel-attention layer, then
  separable-convolution towers for classification and regression.
* **v2**: a separate pixel-wise correlation per branch, each preceded by a
  1x1 conv + BN on the template and on the search features.
* **v3**: a 96-channel backbone (one more block), and per branch the
  pixel-wise correlation (followed by a 2x2 depthwise conv, so the maps are
  15x15) concatenated with a depthwise cross-correlation of the central 4x4
  template features; a 1x1 conv fuses the 64 + 96 channels.

The checkpoints also hold an ``AdjustLayer`` neck (``neck.downsample``) that
the original model builds but never calls; it is kept here, unused, so that
the state dicts load strictly.

Inputs are raw 0-255 float pixels, BGR (the training data were read with
``cv2.imread`` and never converted), no mean/std normalisation.
Outputs follow ``SiameseModel``'s ``"ban"`` convention: ``cls`` (N, 2, S, S)
logits (softmax over the two channels, channel 1 = target) and ``loc``
(N, 4, S, S) left/top/right/bottom distances in search-patch pixels, with
S = 16 for v1/v2 and S = 15 for v3.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from siamcli.models.base import SiameseModel

__all__ = [
    "NanoTrackV1",
    "NanoTrackV2",
    "NanoTrackV3",
    "nanotrack_v1",
    "nanotrack_v2",
    "nanotrack_v3",
    "nanotrack_v2v3",
    "NanoTrackV2V3",
    "build_nanotrack",
    "build_nanotrack_from_config",
    "detect_nanotrack_version",
]

STRIDE = 16
EXEMPLAR_SIZE = 127
INSTANCE_SIZE = 255


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch)


def _depthwise(ch: int, k: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(ch, ch, k, stride=stride, padding=k // 2, groups=ch, bias=bias)


def _pointwise(cin: int, cout: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, bias=bias)


class _SqueezeExcite(nn.Module):
    """Channel gate: global mean -> Linear -> ReLU -> Linear -> hard sigmoid."""

    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(ch, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, ch),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class _MobileBlock(nn.Module):
    """MobileNetV3 inverted residual; the module list is ``self.conv``.

    Layout when ``hidden == inp`` (no expansion):
        dw, BN, act, SE, pw, BN
    otherwise:
        pw, BN, act, dw, BN, SE|Identity, act, pw, BN
    """

    def __init__(self, inp: int, hidden: int, out: int, k: int, stride: int,
                 se_hidden: int, hswish: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        se: nn.Module = _SqueezeExcite(hidden, se_hidden) if se_hidden else nn.Identity()
        if hidden == inp:
            layers = [
                _depthwise(hidden, k, stride), _bn(hidden), act(),
                se,
                _pointwise(hidden, out), _bn(out),
            ]
        else:
            layers = [
                _pointwise(inp, hidden), _bn(hidden), act(),
                _depthwise(hidden, k, stride), _bn(hidden),
                se, act(),
                _pointwise(hidden, out), _bn(out),
            ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


# (kernel, expanded channels, output channels, SE hidden (0 = no SE), hard-swish, stride)
_BLOCKS = (
    (3, 16, 16, 8, False, 2),
    (3, 72, 24, 0, False, 2),
    (3, 88, 24, 0, False, 1),
    (5, 96, 40, 24, True, 2),
    (5, 240, 40, 64, True, 1),
    (5, 240, 40, 64, True, 1),
    (5, 120, 48, 32, True, 1),
    (5, 144, 48, 40, True, 1),
    # v3 only: one more block, stride 1 so the total stride stays 16
    (5, 288, 96, 72, True, 1),
)


class _Backbone(nn.Module):
    """``features.0`` (3x3/2 conv, BN, h-swish) then ``num_blocks`` mobile blocks."""

    def __init__(self, num_blocks: int) -> None:
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
                                _bn(16), nn.Hardswish())]
        inp = 16
        for k, hidden, out, se_hidden, hswish, stride in _BLOCKS[:num_blocks]:
            layers.append(_MobileBlock(inp, hidden, out, k, stride, se_hidden, hswish))
            inp = out
        self.features = nn.Sequential(*layers)
        self.out_channels = inp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _UnusedNeck(nn.Module):
    """The checkpoints' ``AdjustLayer`` (1x1 conv + BN). Never applied."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.downsample = nn.Sequential(_pointwise(ch, ch), _bn(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - unused
        return self.downsample(x)


class _ChannelAttention(nn.Module):
    """Global mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid, multiplied in."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(ch, ch, 1)
        self.fc2 = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3), keepdim=True)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


def _conv_bn(ch: int) -> nn.Sequential:
    """1x1 conv with bias followed by BN, no activation."""
    return nn.Sequential(_pointwise(ch, ch, bias=True), _bn(ch))


def _pixelwise_corr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Every template position against every search position.

    z (N, C, Hz, Wz), x (N, C, Hx, Wx) -> (N, Hz*Wz, Hx, Wx); channel
    ``i`` of the result is template position ``i`` in row-major order.
    """
    n, c, hz, wz = z.shape
    hx, wx = x.shape[2:]
    kernel = z.reshape(n, c, hz * wz).transpose(1, 2)
    return torch.bmm(kernel, x.reshape(n, c, hx * wx)).reshape(n, hz * wz, hx, wx)


def _separable_tower(spec: Sequence[Tuple[int, int, int]]) -> nn.Sequential:
    """v1/v2 tower: per stage [dw k x k, pw 1x1, BN, ReLU6]; spec = (k, cin, cout)."""
    layers = []
    for k, cin, cout in spec:
        layers += [_depthwise(cin, k), _pointwise(cin, cout), _bn(cout), nn.ReLU6(inplace=True)]
    return nn.Sequential(*layers)


def _separable_tower_v3(ch: int, stages: int) -> nn.Sequential:
    """v3 tower: per stage [dw 3x3, BN, ReLU6, pw 1x1, BN] (no activation after the pw)."""
    layers = []
    for _ in range(stages):
        layers += [_depthwise(ch, 3), _bn(ch), nn.ReLU6(inplace=True), _pointwise(ch, ch), _bn(ch)]
    return nn.Sequential(*layers)


def _pair_batches(zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
    """Template features batched like the search: one per sample, or one shared."""
    if zf.shape[0] == xf.shape[0]:
        return zf
    if zf.shape[0] == 1:
        return zf.expand(xf.shape[0], *zf.shape[1:])
    raise ValueError(
        f"template batch {zf.shape[0]} does not match search batch {xf.shape[0]}")


# ---------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------
class _PixelwiseV1(nn.Module):
    def __init__(self, positions: int) -> None:
        super().__init__()
        self.CA_layer = _ChannelAttention(positions)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.CA_layer(_pixelwise_corr(zf, xf))


class _HeadV1(nn.Module):
    def __init__(self, positions: int = 64) -> None:
        super().__init__()
        self.corr_pw = _PixelwiseV1(positions)
        self.cls_tower = _separable_tower([(5, positions, 128), (5, 128, 128), (3, 128, 128)])
        self.bbox_tower = _separable_tower(
            [(3, positions, 96), (3, 96, 96), (5, 96, 96), (5, 96, 96)])
        self.cls_logits = nn.Sequential(_pointwise(128, 2, bias=True))
        self.bbox_pred = nn.Sequential(_pointwise(96, 4, bias=True))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feat = self.corr_pw(zf, xf)
        cls = self.cls_logits(self.cls_tower(feat))
        loc = torch.exp(self.bbox_pred(self.bbox_tower(feat)))
        return cls, loc


class _PixelwiseV2(nn.Module):
    def __init__(self, ch: int, positions: int) -> None:
        super().__init__()
        self.CA_layer = _ChannelAttention(positions)
        self.conv_kernel = _conv_bn(ch)
        self.conv_search = _conv_bn(ch)

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        corr = _pixelwise_corr(self.conv_kernel(zf), self.conv_search(xf))
        return self.CA_layer(corr)


class _HeadV2(nn.Module):
    def __init__(self, ch: int = 48, positions: int = 64) -> None:
        super().__init__()
        self.corr_pw_reg = _PixelwiseV2(ch, positions)
        self.corr_pw_cls = _PixelwiseV2(ch, positions)
        spec = [(3, positions, 96)] + [(3, 96, 96)] * 5
        self.cls_pw_tower = _separable_tower(spec)
        self.bbox_pw_tower = _separable_tower(spec)
        self.cls_pred = nn.Sequential(_pointwise(96, 2, bias=True))
        self.bbox_pred = nn.Sequential(_pointwise(96, 4, bias=True))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cls = self.cls_pred(self.cls_pw_tower(self.corr_pw_cls(zf, xf)))
        loc = torch.exp(self.bbox_pred(self.bbox_pw_tower(self.corr_pw_reg(zf, xf))))
        return cls, loc


class _DepthwiseV3(nn.Module):
    """Depthwise cross-correlation of the central template features."""

    def __init__(self, ch: int, crop: int = 4, padding: int = 1) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn(ch)
        self.conv_search = _conv_bn(ch)
        self.crop = crop
        self.padding = padding

    def kernel(self, zf: torch.Tensor) -> torch.Tensor:
        """The template half: the central ``crop`` x ``crop`` features through ``conv_kernel``."""
        h, w = zf.shape[2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        return self.conv_kernel(zf[:, :, top:top + self.crop, left:left + self.crop])

    def respond(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        # The kernel's shape is made of plain ints (the module's crop and channels, the batch read
        # as an int): where the kernel is a graph input (the ONNX search graph, batch 1) its shape
        # is otherwise unknown at export, and a convolution's weight must have a static shape there.
        search = self.conv_search(xf)
        n, ch = int(xf.shape[0]), self.conv_search[0].out_channels
        out = F.conv2d(search.reshape(1, n * ch, *search.shape[2:]),
                       kernel.reshape(n * ch, 1, self.crop, self.crop), groups=n * ch, padding=self.padding)
        return out.reshape(n, ch, *out.shape[2:])

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.respond(self.kernel(zf), xf)


class _PixelwiseV3(nn.Module):
    def __init__(self, ch: int, positions: int) -> None:
        super().__init__()
        self.CA_layer = _ChannelAttention(positions)
        self.conv_kernel = _conv_bn(ch)
        self.conv_search = _conv_bn(ch)
        # 2x2 depthwise (16x16 -> 15x15), BN, ReLU6, 1x1 conv, BN
        self.conv = nn.Sequential(
            nn.Conv2d(positions, positions, 2, groups=positions, bias=False),
            _bn(positions),
            nn.ReLU6(inplace=True),
            _pointwise(positions, positions, bias=True),
            _bn(positions),
        )

    def kernel(self, zf: torch.Tensor) -> torch.Tensor:
        return self.conv_kernel(zf)

    def respond(self, kernel: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.conv(self.CA_layer(_pixelwise_corr(kernel, self.conv_search(xf))))

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
        return self.respond(self.kernel(zf), xf)


class _HeadV3(nn.Module):
    def __init__(self, ch: int = 96, positions: int = 64) -> None:
        super().__init__()
        self.corr_dw_reg = _DepthwiseV3(ch)
        self.corr_pw_reg = _PixelwiseV3(ch, positions)
        self.corr_dw_cls = _DepthwiseV3(ch)
        self.corr_pw_cls = _PixelwiseV3(ch, positions)
        self.cls_tower = _separable_tower_v3(ch, 6)
        self.bbox_tower = _separable_tower_v3(ch, 6)
        self.cls_logits = nn.Sequential(_pointwise(ch, 2, bias=True))
        self.bbox_pred = nn.Sequential(_pointwise(ch, 4, bias=True))
        self.down_reg = nn.Sequential(_pointwise(positions + ch, ch, bias=True))
        self.down_cls = nn.Sequential(_pointwise(positions + ch, ch, bias=True))

    def kernels(self, zf: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The template half of the four correlations, computed once per target; in the order
        :meth:`respond` takes them (pixel-wise and depthwise, regression then classification)."""
        return (self.corr_pw_reg.kernel(zf), self.corr_dw_reg.kernel(zf),
                self.corr_pw_cls.kernel(zf), self.corr_dw_cls.kernel(zf))

    def respond(self, kernels: Sequence[torch.Tensor], xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        pw_reg, dw_reg, pw_cls, dw_cls = (_pair_batches(k, xf) for k in kernels)
        reg = torch.cat([self.corr_pw_reg.respond(pw_reg, xf), self.corr_dw_reg.respond(dw_reg, xf)], dim=1)
        cls = torch.cat([self.corr_pw_cls.respond(pw_cls, xf), self.corr_dw_cls.respond(dw_cls, xf)], dim=1)
        cls = self.cls_logits(self.cls_tower(self.down_cls(cls)))
        loc = torch.exp(self.bbox_pred(self.bbox_tower(self.down_reg(reg))))
        return cls, loc

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.respond(self.kernels(zf), xf)


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------
class _NanoTrack(SiameseModel):
    family = "ban"
    #: the weights were trained on cv2.imread images: BGR, raw 0-255
    channel_order = "bgr"
    stride = STRIDE
    exemplar_size = EXEMPLAR_SIZE
    instance_size = INSTANCE_SIZE
    version = ""
    #: side of the cls/loc maps for a 255 search patch
    score_size = 16

    def __init__(self, num_blocks: int, neck_channels: int, head: nn.Module) -> None:
        super().__init__()
        self.backbone = _Backbone(num_blocks)
        self.neck = _UnusedNeck(neck_channels)
        self.ban_head = head

    def extract_template(self, z: torch.Tensor) -> torch.Tensor:
        return self.backbone(z)

    def extract_search(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def correlate(self, zf: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.ban_head(_pair_batches(zf, xf), xf)

    def kernels(self, zf: Any) -> Any:
        # v3's head does its template-side convolutions once per target (and its ONNX search
        # graph then takes kernels of a known shape); v1's and v2's take the features as they are
        head_kernels = getattr(self.ban_head, "kernels", None)
        return zf if head_kernels is None else head_kernels(zf)

    def respond(self, kernels: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.ban_head, "respond"):
            return self.ban_head.respond(kernels, xf)
        return self.correlate(kernels, xf)


class NanoTrackV1(_NanoTrack):
    version = "v1"
    score_size = 16

    def __init__(self) -> None:
        super().__init__(8, 64, _HeadV1())


class NanoTrackV2(_NanoTrack):
    version = "v2"
    score_size = 16

    def __init__(self) -> None:
        super().__init__(8, 64, _HeadV2())


class NanoTrackV3(_NanoTrack):
    version = "v3"
    score_size = 15

    def __init__(self) -> None:
        super().__init__(9, 96, _HeadV3())


class NanoTrackV2V3(SiameseModel):
    """NanoTrack v2 and v3 side by side on the same search patch, their maps averaged.

    The two networks were trained apart on large tracking datasets and err on different frames;
    their mean tracks better on the validation set than either alone (weights/README.md).
    v2's 16x16 points start half a stride further out than v3's 15x15 ones (the point grid's
    origin is ``-(side // 2) * stride``), so v2's map from its second row and column on lies on
    v3's points exactly: that part of v2's score logits and box distances is averaged with v3's.
    The state dict holds each network under ``v2.`` and ``v3.`` with its own published keys.
    """

    family = "ban"
    channel_order = "bgr"
    stride = STRIDE
    exemplar_size = EXEMPLAR_SIZE
    instance_size = INSTANCE_SIZE
    version = "v2v3"
    score_size = 15

    def __init__(self) -> None:
        super().__init__()
        self.v2 = NanoTrackV2()
        self.v3 = NanoTrackV3()

    def template_kernels(self, z: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return (self.v2.template_kernels(z), *self.v3.template_kernels(z))

    def search(self, x: torch.Tensor, kernels: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        cls2, loc2 = self.v2.search(x, kernels[0])
        cls3, loc3 = self.v3.search(x, tuple(kernels[1:]))
        return (cls2[:, :, 1:, 1:] + cls3) * 0.5, (loc2[:, :, 1:, 1:] + loc3) * 0.5

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.search(x, self.template_kernels(z))


_CLASSES = {"v1": NanoTrackV1, "v2": NanoTrackV2, "v3": NanoTrackV3}


def _normalize_version(version: Union[str, int]) -> str:
    key = str(version).strip().lower()
    if not key.startswith("v"):
        key = "v" + key
    if key not in _CLASSES:
        raise ValueError(f"unknown NanoTrack version {version!r}; expected v1, v2 or v3")
    return key


def build_nanotrack(version: Union[str, int]) -> _NanoTrack:
    """An eval-mode NanoTrack of the given version ("v1", "v2" or "v3")."""
    return _CLASSES[_normalize_version(version)]().eval()


def nanotrack_v1() -> NanoTrackV1:
    """NanoTrack v1 (48-channel features, shared pixel-wise correlation), eval mode."""
    return NanoTrackV1().eval()


def nanotrack_v2() -> NanoTrackV2:
    """NanoTrack v2 (48-channel features, per-branch pixel-wise correlation), eval mode."""
    return NanoTrackV2().eval()


def nanotrack_v3() -> NanoTrackV3:
    """NanoTrack v3 (96-channel features, pixel-wise + depthwise correlation, 15x15 maps)."""
    return NanoTrackV3().eval()


def nanotrack_v2v3() -> NanoTrackV2V3:
    """NanoTrack v2 and v3 on one search patch, their maps averaged on v3's 15x15 points."""
    return NanoTrackV2V3().eval()


# ---------------------------------------------------------------------------
# configs and checkpoints
# ---------------------------------------------------------------------------
# configv1.yaml and configv2.yaml have identical BACKBONE/ADJUST/BAN sections;
# the released files differ only in the TRACK hyper-parameters (and datasets).
_TRACK_FINGERPRINTS = {
    "v1": {"WINDOW_INFLUENCE": 0.462, "PENALTY_K": 0.148, "LR": 0.390},
    "v2": {"WINDOW_INFLUENCE": 0.490, "PENALTY_K": 0.150, "LR": 0.385},
}


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    sec = cfg.get(name)
    if not isinstance(sec, Mapping):
        raise ValueError(f"NanoTrack config has no {name} section")
    return sec


def _kwargs_channels(sec: Mapping[str, Any], name: str) -> Tuple[Any, Any]:
    kw = sec.get("KWARGS") or {}
    if not isinstance(kw, Mapping):
        raise ValueError(f"{name}.KWARGS must be a mapping, got {kw!r}")
    return kw.get("in_channels"), kw.get("out_channels")


def _config_version(cfg: Mapping[str, Any], version: Optional[str]) -> str:
    meta = cfg.get("META_ARC")
    if meta is not None and str(meta).lower() != "nanotrack":
        raise ValueError(f"unsupported META_ARC {meta!r} (expected 'nanotrack')")

    backbone = _section(cfg, "BACKBONE")
    adjust = _section(cfg, "ADJUST")
    ban = _section(cfg, "BAN")

    btype = backbone.get("TYPE")
    expected_ch = {"mobilenetv3_small": 64, "mobilenetv3_small_v3": 96}
    if btype not in expected_ch:
        raise ValueError(
            f"unsupported BACKBONE.TYPE {btype!r} (expected one of {sorted(expected_ch)})")
    ch = expected_ch[btype]

    problems = []
    if adjust.get("TYPE", "AdjustLayer") != "AdjustLayer":
        problems.append(f"ADJUST.TYPE={adjust.get('TYPE')!r} (expected 'AdjustLayer')")
    if _kwargs_channels(adjust, "ADJUST") != (ch, ch):
        problems.append(f"ADJUST.KWARGS in/out channels={_kwargs_channels(adjust, 'ADJUST')} "
                        f"(expected ({ch}, {ch}) with BACKBONE.TYPE {btype!r})")
    if ban.get("TYPE") != "DepthwiseBAN":
        problems.append(f"BAN.TYPE={ban.get('TYPE')!r} (expected 'DepthwiseBAN')")
    if _kwargs_channels(ban, "BAN") != (ch, ch):
        problems.append(f"BAN.KWARGS in/out channels={_kwargs_channels(ban, 'BAN')} "
                        f"(expected ({ch}, {ch}) with BACKBONE.TYPE {btype!r})")
    stride = (cfg.get("POINT") or {}).get("STRIDE", STRIDE)
    if stride != STRIDE:
        problems.append(f"POINT.STRIDE={stride!r} (expected {STRIDE})")
    if problems:
        raise ValueError("unsupported NanoTrack config: " + "; ".join(problems))

    if btype == "mobilenetv3_small_v3":
        if version is not None and _normalize_version(version) != "v3":
            raise ValueError(f"version {version!r} contradicts BACKBONE.TYPE {btype!r} (v3)")
        return "v3"

    # v1 and v2 share the same BACKBONE/ADJUST/BAN sections
    if version is not None:
        v = _normalize_version(version)
        if v == "v3":
            raise ValueError(f"version {version!r} contradicts BACKBONE.TYPE {btype!r} (v1/v2)")
        return v
    track = cfg.get("TRACK") or {}
    for v, fp in _TRACK_FINGERPRINTS.items():
        try:
            if all(abs(float(track[k]) - val) < 1e-9 for k, val in fp.items()):
                return v
        except (KeyError, TypeError, ValueError):
            continue
    raise ValueError(
        "config matches NanoTrack v1 and v2 alike (BACKBONE.TYPE 'mobilenetv3_small', "
        "64-channel ADJUST/BAN) and its TRACK WINDOW_INFLUENCE/PENALTY_K/LR "
        f"({track.get('WINDOW_INFLUENCE')!r}, {track.get('PENALTY_K')!r}, "
        f"{track.get('LR')!r}) are not those of the released configv1/configv2; "
        "pass version='v1' or 'v2' (or use detect_nanotrack_version on the checkpoint)")


def build_nanotrack_from_config(cfg: Mapping[str, Any],
                                version: Optional[str] = None) -> _NanoTrack:
    """Build the NanoTrack a parsed ``configvN.yaml`` describes (eval mode).

    v3 is recognised by ``BACKBONE.TYPE: mobilenetv3_small_v3`` with 96-channel
    ADJUST/BAN. v1 and v2 configs have identical architecture sections
    (``mobilenetv3_small``, 64-channel ADJUST/BAN), so between those two the
    released TRACK hyper-parameters decide, unless ``version`` is given.
    Raises ``ValueError`` naming the unsupported values otherwise.
    """
    if not isinstance(cfg, Mapping):
        raise ValueError(f"NanoTrack config must be a mapping, got {type(cfg).__name__}")
    return build_nanotrack(_config_version(cfg, version))


def detect_nanotrack_version(state_dict: Mapping[str, Any]) -> str:
    """Tell v1/v2/v3 apart from checkpoint key names (with or without ``state_dict.``)."""
    keys = [k[len("state_dict."):] if k.startswith("state_dict.") else k for k in state_dict]
    if any(k.startswith("ban_head.corr_dw_") or k.startswith("ban_head.down_") for k in keys):
        return "v3"
    if any(k.startswith("ban_head.corr_pw_cls.") for k in keys):
        return "v2"
    if any(k.startswith("ban_head.corr_pw.") for k in keys):
        return "v1"
    raise ValueError("state dict does not look like a NanoTrack v1/v2/v3 checkpoint")
