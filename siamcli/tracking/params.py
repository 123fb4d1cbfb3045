"""Tracker hyper-parameters: one frozen dataclass, filled from presets or a config.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Tuple


@dataclass(frozen=True)
class TrackerParams:
    """Hyper-parameters of the Siamese tracker loop (names follow pysot's TRACK section).

    ``family`` is ``"rpn"`` (anchors) or ``"ban"`` (points).
    """

    family: str = "rpn"
    exemplar_size: int = 127
    instance_size: int = 255
    base_size: int = 8
    context_amount: float = 0.5
    stride: int = 8
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.4
    anchor_ratios: Tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales: Tuple[float, ...] = (8.0,)
    #: channel order the network was trained with: "bgr" (pysot, SiamBAN) or "rgb"
    input_order: str = "bgr"
    #: minimum box side after clipping, in pixels (pysot clips w, h to [10, W/H])
    min_size: float = 10.0

    def __post_init__(self) -> None:
        if self.family not in ("rpn", "ban"):
            raise ValueError(f"family must be 'rpn' or 'ban', not {self.family!r}")
        if self.input_order not in ("bgr", "rgb"):
            raise ValueError(f"input_order must be 'bgr' or 'rgb', not {self.input_order!r}")

    @property
    def score_size(self) -> int:
        """Side of the score map: (instance - exemplar) // stride + 1 + base_size."""
        return (self.instance_size - self.exemplar_size) // self.stride + 1 + self.base_size

    @property
    def anchor_num(self) -> int:
        return len(self.anchor_ratios) * len(self.anchor_scales) if self.family == "rpn" else 1

    def with_track_section(self, track: Mapping[str, Any]) -> "TrackerParams":
        """Override from a config's ``TRACK`` section (keys as pysot spells them)."""
        names = {
            "EXEMPLAR_SIZE": ("exemplar_size", int),
            "INSTANCE_SIZE": ("instance_size", int),
            "BASE_SIZE": ("base_size", int),
            "CONTEXT_AMOUNT": ("context_amount", float),
            "PENALTY_K": ("penalty_k", float),
            "WINDOW_INFLUENCE": ("window_influence", float),
            "LR": ("lr", float),
        }
        changes = {attr: cast(track[key]) for key, (attr, cast) in names.items() if key in track}
        return replace(self, **changes)
