"""Siamese trackers of the pysot and SiamBAN model zoos, built from their config.yaml.

``build_from_config(cfg)`` turns the architecture sections of a parsed
pysot / SiamBAN ``config.yaml`` (``BACKBONE``, ``ADJUST``, ``RPN`` or ``BAN``)
into a :class:`~siamcli.models.base.SiameseModel` whose ``state_dict()`` has
exactly the keys of the published checkpoints. The named builders
(``siamrpn_alex_dwxcorr()`` ...) build the model-zoo architectures through
the same code from the sections of the published configs.

Models come back in eval mode with untrained weights; load a checkpoint with
``model.load_state_dict(...)``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from ..errors import SiamcliError
from .backbones import BACKBONES
from .base import SiameseModel
from .heads import BAN_HEADS, RPN_HEADS
from .necks import NECKS


class UnsupportedArchitectureError(SiamcliError, ValueError):
    """A config names an architecture part siamcli cannot build (or malformed arguments)."""


# -- the models -------------------------------------------------------------
class _SiameseNet(SiameseModel):
    """backbone -> optional neck -> correlation head (stored under ``head_attr``)."""

    head_attr = "rpn_head"

    def __init__(self, backbone: nn.Module, neck: Optional[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        if neck is not None:  # no ``neck`` attribute at all without ADJUST
            self.neck = neck
        setattr(self, self.head_attr, head)

    def _features(self, img: torch.Tensor) -> Any:
        feats = self.backbone(img)
        neck = getattr(self, "neck", None)
        return neck(feats) if neck is not None else feats

    def extract_template(self, z: torch.Tensor) -> Any:
        return self._features(z)

    def extract_search(self, x: torch.Tensor) -> Any:
        return self._features(x)

    def correlate(self, zf: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, self.head_attr)(zf, xf)

    def kernels(self, zf: Any) -> Any:
        return getattr(self, self.head_attr).kernels(zf)

    def respond(self, kernels: Any, xf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, self.head_attr).respond(kernels, xf)


class SiamRPNModel(_SiameseNet):
    """pysot SiamRPN / SiamRPN++ (anchor-based): ``backbone``, [``neck``], ``rpn_head``."""

    family = "rpn"
    head_attr = "rpn_head"


class SiamBANModel(_SiameseNet):
    """SiamBAN (anchor-free points): ``backbone``, [``neck``], ``head``."""

    family = "ban"
    head_attr = "head"


# -- config parsing ---------------------------------------------------------
def _section(cfg: Mapping, name: str) -> Optional[Mapping]:
    for key, value in cfg.items():
        if isinstance(key, str) and key.upper() == name:
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise UnsupportedArchitectureError(f"config section {name} must be a mapping, got {value!r}")
            return value
    return None


def _get(section: Mapping, name: str, default: Any = None) -> Any:
    for key, value in section.items():
        if isinstance(key, str) and key.upper() == name:
            return value
    return default


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _lookup(registry: Mapping[str, Callable], kind: str, type_name: Any) -> Tuple[str, Callable]:
    if isinstance(type_name, str):
        if type_name in registry:
            return type_name, registry[type_name]
        for name, ctor in registry.items():
            if name.lower() == type_name.strip().lower():
                return name, ctor
    raise UnsupportedArchitectureError(
        f"unknown {kind} TYPE {type_name!r}; supported: {', '.join(sorted(registry))}")


def _construct(kind: str, name: str, ctor: Callable, kwargs: Any) -> nn.Module:
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise UnsupportedArchitectureError(f"{kind} KWARGS for {name} must be a mapping, got {kwargs!r}")
    try:
        return ctor(**{str(k): v for k, v in kwargs.items()})
    except (TypeError, ValueError) as exc:
        raise UnsupportedArchitectureError(f"cannot build {kind} {name} from KWARGS {dict(kwargs)}: {exc}") from exc


def build_from_config(cfg: Mapping) -> SiameseModel:
    """Build the network a parsed pysot / SiamBAN ``config.yaml`` describes (eval mode).

    Uses ``BACKBONE{TYPE,KWARGS}``, ``ADJUST{ADJUST,TYPE,KWARGS}`` (a neck only
    when ``ADJUST.ADJUST`` is true) and either ``BAN{BAN,TYPE,KWARGS}`` with
    ``BAN.BAN`` true (SiamBAN, family "ban") or ``RPN{TYPE,KWARGS}`` (pysot,
    family "rpn"). Other sections are ignored. Raises
    :class:`UnsupportedArchitectureError` (a ``ValueError``) for an unknown
    TYPE, bad KWARGS, a missing section, or a SiamMask config (``MASK.MASK``).
    """
    if not isinstance(cfg, Mapping):
        raise UnsupportedArchitectureError(f"a model config must be a mapping, got {type(cfg).__name__}")

    mask = _section(cfg, "MASK")
    if mask is not None and _flag(_get(mask, "MASK", False)):
        raise UnsupportedArchitectureError(
            "unsupported architecture: SiamMask (MASK.MASK: true) is not supported; "
            f"supported heads: RPN {', '.join(sorted(RPN_HEADS))}; BAN {', '.join(sorted(BAN_HEADS))}")

    bb_cfg = _section(cfg, "BACKBONE")
    if bb_cfg is None or _get(bb_cfg, "TYPE") is None:
        raise UnsupportedArchitectureError(
            f"config has no BACKBONE.TYPE; supported backbones: {', '.join(sorted(BACKBONES))}")
    name, ctor = _lookup(BACKBONES, "backbone", _get(bb_cfg, "TYPE"))
    backbone = _construct("backbone", name, ctor, _get(bb_cfg, "KWARGS"))

    neck = None
    adj_cfg = _section(cfg, "ADJUST")
    # pysot's defaults: ADJUST true, TYPE AdjustAllLayer, once the section exists
    if adj_cfg is not None and _flag(_get(adj_cfg, "ADJUST", True)):
        name, ctor = _lookup(NECKS, "neck (ADJUST)", _get(adj_cfg, "TYPE", "AdjustAllLayer"))
        neck = _construct("neck", name, ctor, _get(adj_cfg, "KWARGS"))

    ban_cfg = _section(cfg, "BAN")
    rpn_cfg = _section(cfg, "RPN")
    if ban_cfg is not None and _flag(_get(ban_cfg, "BAN", False)):
        name, ctor = _lookup(BAN_HEADS, "head (BAN)", _get(ban_cfg, "TYPE"))
        head = _construct("head", name, ctor, _get(ban_cfg, "KWARGS"))
        model: SiameseModel = SiamBANModel(backbone, neck, head)
    elif rpn_cfg is not None:
        name, ctor = _lookup(RPN_HEADS, "head (RPN)", _get(rpn_cfg, "TYPE"))
        head = _construct("head", name, ctor, _get(rpn_cfg, "KWARGS"))
        model = SiamRPNModel(backbone, neck, head)
    else:
        raise UnsupportedArchitectureError(
            "config has neither an RPN section nor BAN.BAN: true; supported heads: "
            f"RPN {', '.join(sorted(RPN_HEADS))}; BAN {', '.join(sorted(BAN_HEADS))}")
    return model.eval()


# -- the model zoo ------------------------------------------------------------
_R50 = {"TYPE": "resnet50", "KWARGS": {"used_layers": [2, 3, 4]}}


def _adjust(out_channels) -> Dict[str, Any]:
    return {"ADJUST": True, "TYPE": "AdjustAllLayer",
            "KWARGS": {"in_channels": [512, 1024, 2048], "out_channels": list(out_channels)}}


#: architecture sections of the published configs, by model-zoo name
ZOO_CONFIGS: Dict[str, Dict[str, Any]] = {
    "siamrpn_alex_dwxcorr": {
        "BACKBONE": {"TYPE": "alexnetlegacy", "KWARGS": {"width_mult": 1.0}},
        "ADJUST": {"ADJUST": False},
        "RPN": {"TYPE": "DepthwiseRPN",
                "KWARGS": {"anchor_num": 5, "in_channels": 256, "out_channels": 256}},
    },
    "siamrpn_r50_l234_dwxcorr": {
        "BACKBONE": _R50,
        "ADJUST": _adjust([256, 256, 256]),
        "RPN": {"TYPE": "MultiRPN",
                "KWARGS": {"anchor_num": 5, "in_channels": [256, 256, 256], "weighted": True}},
    },
    "siamrpn_mobilev2_l234_dwxcorr": {
        "BACKBONE": {"TYPE": "mobilenetv2", "KWARGS": {"used_layers": [3, 5, 7], "width_mult": 1.4}},
        "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer",
                   "KWARGS": {"in_channels": [44, 134, 448], "out_channels": [256, 256, 256]}},
        "RPN": {"TYPE": "MultiRPN",
                "KWARGS": {"anchor_num": 5, "in_channels": [256, 256, 256], "weighted": False}},
    },
    "siamrpn_r50_l234_dwxcorr_lt": {
        "BACKBONE": _R50,
        "ADJUST": _adjust([128, 256, 512]),
        "RPN": {"TYPE": "MultiRPN",
                "KWARGS": {"anchor_num": 5, "in_channels": [128, 256, 512], "weighted": True}},
    },
    "siamban_r50_l234": {
        "BACKBONE": _R50,
        "ADJUST": _adjust([256, 256, 256]),
        "BAN": {"BAN": True, "TYPE": "MultiBAN",
                "KWARGS": {"in_channels": [256, 256, 256], "cls_out_channels": 2, "weighted": True}},
    },
}


def build_zoo_model(name: str) -> SiameseModel:
    """Build a model-zoo architecture by name (see ``ZOO_CONFIGS``)."""
    if name not in ZOO_CONFIGS:
        raise UnsupportedArchitectureError(
            f"unknown model {name!r}; supported: {', '.join(sorted(ZOO_CONFIGS))}")
    return build_from_config(copy.deepcopy(ZOO_CONFIGS[name]))


def siamrpn_alex_dwxcorr() -> SiameseModel:
    """SiamRPN, AlexNet (legacy) backbone, depthwise head; search 287 -> 21x21x5."""
    return build_zoo_model("siamrpn_alex_dwxcorr")


def siamrpn_r50_l234_dwxcorr() -> SiameseModel:
    """SiamRPN++, ResNet-50 layers 2-4, weighted MultiRPN; search 255 -> 25x25x5."""
    return build_zoo_model("siamrpn_r50_l234_dwxcorr")


def siamrpn_mobilev2_l234_dwxcorr() -> SiameseModel:
    """SiamRPN++, MobileNetV2 x1.4 layers 3/5/7, unweighted MultiRPN; search 255 -> 25x25x5."""
    return build_zoo_model("siamrpn_mobilev2_l234_dwxcorr")


def siamrpn_r50_l234_dwxcorr_lt() -> SiameseModel:
    """Long-term SiamRPN++, ResNet-50, neck/head widths 128/256/512."""
    return build_zoo_model("siamrpn_r50_l234_dwxcorr_lt")


def siamban_r50_l234() -> SiameseModel:
    """SiamBAN, ResNet-50 layers 2-4, weighted MultiBAN; search 255 -> 25x25 points."""
    return build_zoo_model("siamban_r50_l234")

