"""Tracker hyper-parameters: one frozen dataclass, filled from presets or a config.yaml."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import SiamcliError, quoted

#: the settings a user may change on a model (``siamcli.Tracker(..., lr=0.3)``, ``--aspect-lr``,
#: ``--lost-threshold``), with their type and bounds: how the tracker follows the network's
#: answers. The network's geometry (sizes, stride, anchors, channel order) is fixed by its weights.
TUNABLE: Dict[str, Tuple[Callable[[Any], Any], Optional[float], Optional[float]]] = {
    "penalty_k": (float, 0.0, None),
    "window_influence": (float, 0.0, 1.0),
    "lr": (float, 0.0, 1.0),
    "aspect_lr": (float, 0.0, 1.0),
    "context_amount": (float, 0.0, None),
    "min_size": (float, 0.0, None),
    "uncertain_threshold": (float, 0.0, 1.0),
    "lost_threshold": (float, 0.0, 1.0),
    "recover_threshold": (float, 0.0, 1.0),
    "lost_instance_size": (int, 1, None),
    "redetect_growth": (int, 0, None),
    "lost_window_influence": (float, 0.0, 1.0),
    "crop": (str, None, None),
}


def _checked(name: str, value: Any) -> Any:
    """``value`` as the :data:`TUNABLE` setting ``name`` takes it, or a :class:`SiamcliError`."""
    cast, low, high = TUNABLE[name]
    if cast is str or (name == "aspect_lr" and value is None):  # None: width and height move alike
        return value
    try:
        number = float(value)
        if isinstance(value, bool) or not math.isfinite(number) or (cast is int and number != int(number)):
            raise ValueError
    except (TypeError, ValueError):
        raise SiamcliError(f"tracker setting {name} must be {'an integer' if cast is int else 'a number'}, "
                           f"got {quoted(value)}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise SiamcliError(f"tracker setting {name} must be {bounds}, got {quoted(value)}")
    return cast(number)


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
    #: learning rate of the box's aspect (log w/h) alone; ``lr`` then moves only its scale
    #: (log sqrt(w*h)), both in log space. None: width and height each move by ``lr``, linearly,
    #: as the reference trackers do (see siamcli.tracking.decode.Decoder.smooth)
    aspect_lr: Optional[float] = None
    anchor_ratios: Tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales: Tuple[float, ...] = (8.0,)
    #: channel order the network was trained with: "bgr" (pysot, SiamBAN) or "rgb"
    input_order: str = "bgr"
    #: unit of the box outputs: "pixels" (published models: fixed anchors, distances in patch
    #: pixels) or "target" (siamcli's own models: anchor shape = the current target size in the
    #: patch, BAN distances in target widths/heights), see the boxes methods of siamcli.tracking.decode
    box_units: str = "pixels"
    #: "reference": pad with the first frame's mean exactly as the published trackers do;
    #: "fast": the same crop inside the frame, one affine warp across its border
    #: (within a grey level of the reference; see siamcli.tracking.crop)
    crop: str = "reference"
    #: minimum box side after clipping, in pixels (pysot clips w, h to [10, W/H])
    min_size: float = 10.0
    #: raw score below which a frame is "uncertain" (see siamcli.tracking.states)
    uncertain_threshold: float = 0.9
    #: raw score below which the target counts as "lost" (pysot's long-term CONFIDENCE_LOW)
    lost_threshold: float = 0.8
    #: while lost (with re-detection), a candidate must score above this to end the loss
    #: (pysot's long-term CONFIDENCE_HIGH)
    recover_threshold: float = 0.998
    #: re-detection (long-term mode, as pysot's SiamRPNLTTracker): widest search patch,
    #: growth of the patch per lost frame, and the cosine-window influence while lost
    lost_instance_size: int = 831
    redetect_growth: int = 96
    lost_window_influence: float = 0.001

    def __post_init__(self) -> None:
        if not 0.0 <= self.lost_threshold <= self.uncertain_threshold <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= lost ({self.lost_threshold}) <= uncertain "
                f"({self.uncertain_threshold}) <= 1"
            )
        if self.family not in ("rpn", "ban"):
            raise ValueError(f"family must be 'rpn' or 'ban', not {self.family!r}")
        if self.crop not in ("reference", "fast"):
            raise ValueError(f"crop must be 'reference' or 'fast', not {self.crop!r}")
        if self.box_units not in ("pixels", "target"):
            raise ValueError(f"box_units must be 'pixels' or 'target', not {self.box_units!r}")
        if self.aspect_lr is not None and not 0.0 <= self.aspect_lr <= 1.0:
            raise ValueError(f"aspect_lr must lie in [0, 1] or be None, not {self.aspect_lr!r}")
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

    def tuned(self, **settings: Any) -> "TrackerParams":
        """These params with the :data:`TUNABLE` ``settings`` changed.

        A lost threshold above the uncertain one raises the uncertain threshold to it
        (unless both are given). Unknown names and bad values raise :class:`SiamcliError`,
        naming the valid settings or the allowed range.
        """
        unknown = [name for name in settings if name not in TUNABLE]
        if unknown:
            raise SiamcliError(f"unknown tracker setting{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(map(repr, unknown))}; valid settings: {', '.join(TUNABLE)}")
        changes = {name: _checked(name, value) for name, value in settings.items()}
        if "lost_threshold" in changes and "uncertain_threshold" not in changes:
            changes["uncertain_threshold"] = max(self.uncertain_threshold, changes["lost_threshold"])
        try:
            return replace(self, **changes)
        except ValueError as exc:
            raise SiamcliError(f"tracker settings: {exc}") from None
