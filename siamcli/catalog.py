"""The one registry of models users can name: each entry says how to build its network, how to
track with it (:class:`~siamcli.tracking.params.TrackerParams`, the head family included) and where
its weights come from (shipped with siamcli, or given with ``--weights``).

``siamcli models`` lists it, ``--model`` picks from it, a pysot / SiamBAN / NanoTrack
``config.yaml`` makes an entry of the same kind (:func:`spec_from_config`), and the checkpoint
loader (:func:`load_network`) names the entry a mismatched checkpoint looks like.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from .errors import SiamcliError, quoted
from .io.paths import exists
from .io.yaml_file import read_yaml
from .tracking.params import TrackerParams

PathLike = Union[str, Path]


#: the sections of a pysot / SiamBAN / NanoTrack config.yaml that describe the network (the
#: builders in :mod:`siamcli.models` read no others; ``TRACK`` holds the tracker's settings)
NETWORK_SECTIONS = ("META_ARC", "BACKBONE", "ADJUST", "RPN", "BAN", "MASK", "REFINE", "ANCHOR", "POINT")


@dataclass(frozen=True)
class ModelSpec:
    """A model: its network (``architecture``, built by ``builder`` or from ``config``) and how to
    track with it (``params``)."""

    name: str
    #: the network's name, recorded in ONNX exports and start-up cache keys
    architecture: str
    params: TrackerParams
    summary: str = ""
    #: ``module:function`` under :mod:`siamcli.models` that returns the network (eval mode, random weights)
    builder: Optional[str] = None
    #: the file in siamcli's ``weights/`` used when no ``--weights`` is given (None: they must be given)
    bundled: Optional[str] = None
    #: where the checkpoint of a model whose weights do not ship is published, and the file (as its
    #: authors name it) to pass with ``--weights``
    published_by: Optional[str] = None
    checkpoint: Optional[str] = None
    #: the parsed config.yaml of a model built from one (:func:`spec_from_config`)
    config: Optional[Mapping[str, Any]] = None

    @property
    def weights_source(self) -> str:
        """Where the weights come from, in a few words: ``"bundled"``, or the publisher and the file
        to pass with ``--weights``."""
        if self.bundled:
            return "bundled"
        if self.published_by:
            return f"{self.published_by}: {self.checkpoint}"
        return "a checkpoint of this architecture"

    @property
    def family(self) -> str:
        """``"rpn"`` (anchors) or ``"ban"`` (points): how the head's outputs are read."""
        return self.params.family

    @property
    def network_config(self) -> Optional[Dict[str, Any]]:
        """The sections of ``config`` the network is built from (:data:`NETWORK_SECTIONS`), what an
        export of it depends on besides its weights; None for a model without a config."""
        if self.config is None:
            return None
        return {name: self.config[name] for name in NETWORK_SECTIONS if name in self.config}


_RPN = TrackerParams(family="rpn")
_BAN = TrackerParams(family="ban")
# NanoTrack's loss thresholds lie between the scores it gives while tracking normally and those it
# gives once the target is hidden (docs/live-tracking.md); v1 and v3 share v2's values.
_NANO = TrackerParams(family="ban", stride=16, base_size=7,
                      uncertain_threshold=0.98, lost_threshold=0.93, recover_threshold=0.998)

# -- the bundled models: weights in weights/ ------------------------------------------------------
# NanoTrack v2 and v3 run their authors' published weights (Apache-2.0, weights/NOTICE), trained on
# large tracking datasets. Their tracker settings are the authors' published ones (configv2.yaml,
# configv3.yaml): a grid search on ../shared/data/val (4 starts a sequence) found no setting ahead of
# them by more than neighbouring grid points differ (weights/README.md).
# nanotrack_v2v3, the default, averages the two networks' maps (siamcli.models.nanotrack.NanoTrackV2V3):
# on val it tracks better than either alone. Its score size is v3's. Its lr was chosen by the grid:
# from v2's 0.385 up to 0.56 the mean over penalties rose by 0.017 (neighbouring points differ by
# 0.004), then stayed flat to 0.7; penalty and window stay v2's, where the grid is flat.
#
# siamcli's own models (siamrpnban, siamrpn, siamban; trained by tools/train_default.py): stride 16,
# RGB input, boxes relative to the current target size (one anchor of that shape for SiamRPN). Trained
# on 255 px search crops, they track on 223 px ones (9x9 score map): faster, and no less accurate on
# the validation set (weights/README.md). lr, aspect_lr, penalty_k and window influence per model were
# chosen by tools/tune_tracker.py, tracking ../shared/data/val from three starts a sequence, never on
# the development sequences of ../shared/data/seqs. Their heads' aspect predictions are noisy, so the
# box's aspect follows them at 0.01 (0.05 scored lower) and its scale at lr. siamrpnban runs the SiamRPN
# and the SiamBAN heads together and answers as a SiamRPN (siamcli.models.lite.LiteMixed).
# Their loss states: on the validation set siamrpnban scored under 0.5 on 1 % of the frames it was on
# the target (IoU > 0.5) and on every frame it was off it (IoU < 0.1); under 0.8 on 5.5 % and under 0.9
# on 13 % of the on-target frames (weights/README.md).
_LITE = TrackerParams(stride=16, base_size=2, instance_size=223, input_order="rgb", box_units="target",
                      anchor_ratios=(1.0,), anchor_scales=(1.0,),
                      window_influence=0.490, penalty_k=0.150, lr=0.385,
                      uncertain_threshold=0.8, lost_threshold=0.5)
BUNDLED = (
    ModelSpec("nanotrack_v2v3", "nanotrack_v2v3",
              replace(_NANO, base_size=6, window_influence=0.490, penalty_k=0.150, lr=0.56),
              "NanoTrack v2 and v3 together, their maps averaged (their authors' published weights)",
              builder="nanotrack:nanotrack_v2v3", bundled="nanotrackv2v3.pth"),
    ModelSpec("nanotrack_v3", "nanotrack_v3",
              replace(_NANO, base_size=6, window_influence=0.455, penalty_k=0.138, lr=0.348),
              "NanoTrack v3, its authors' published weights", builder="nanotrack:nanotrack_v3",
              bundled="nanotrackv3.pth"),
    ModelSpec("nanotrack_v2", "nanotrack_v2", replace(_NANO, window_influence=0.490, penalty_k=0.150, lr=0.385),
              "NanoTrack v2, its authors' published weights (OpenCV TrackerNano's model)",
              builder="nanotrack:nanotrack_v2", bundled="nanotrackv2.pth"),
    ModelSpec("siamrpnban", "siamrpnban_lite0x1",
              replace(_LITE, family="rpn", lr=0.4, aspect_lr=0.01, penalty_k=0.15, window_influence=0.3),
              "siamcli's own SiamRPN and SiamBAN heads together, EfficientNet-Lite0 (trained by siamcli)",
              builder="lite:siamrpnban_lite0x1", bundled="siamrpnban.pth"),
    ModelSpec("siamrpn", "siamrpn_lite0x1",
              replace(_LITE, family="rpn", lr=0.4, aspect_lr=0.01, penalty_k=0.15, window_influence=0.3),
              "siamcli's own SiamRPN, EfficientNet-Lite0 (trained by siamcli)",
              builder="lite:siamrpn_lite0x1", bundled="siamrpn.pth"),
    ModelSpec("siamban", "siamban_lite0x1",
              replace(_LITE, family="ban", lr=0.4, aspect_lr=0.01, penalty_k=0.05, window_influence=0.3),
              "siamcli's own SiamBAN, EfficientNet-Lite0 (trained by siamcli)",
              builder="lite:siamban_lite0x1", bundled="siamban.pth"),
)

# -- the published models: weights from the pysot / SiamBAN model zoos and the NanoTrack project -----
_PYSOT, _SIAMBAN, _NANOTRACK = "pysot model zoo", "SiamBAN model zoo", "NanoTrack project"
_ALEX = replace(_RPN, instance_size=287, base_size=0, penalty_k=0.16, window_influence=0.40, lr=0.30)
PUBLISHED = (
    ModelSpec("siamrpn_alex_dwxcorr", "siamrpn_alex_dwxcorr", _ALEX,
              "pysot SiamRPN AlexNet (VOT settings)", builder="zoo:siamrpn_alex_dwxcorr",
              published_by=_PYSOT, checkpoint="experiments/siamrpn_alex_dwxcorr/model.pth"),
    ModelSpec("siamrpn_alex_dwxcorr_otb", "siamrpn_alex_dwxcorr", _ALEX,
              "pysot SiamRPN AlexNet (OTB settings)", builder="zoo:siamrpn_alex_dwxcorr",
              published_by=_PYSOT, checkpoint="experiments/siamrpn_alex_dwxcorr_otb/model.pth"),
    ModelSpec("siamrpn_r50_l234_dwxcorr", "siamrpn_r50_l234_dwxcorr",
              replace(_RPN, penalty_k=0.05, window_influence=0.42, lr=0.38),
              "pysot SiamRPN++ ResNet-50 (VOT settings)", builder="zoo:siamrpn_r50_l234_dwxcorr",
              published_by=_PYSOT, checkpoint="experiments/siamrpn_r50_l234_dwxcorr/model.pth"),
    ModelSpec("siamrpn_r50_l234_dwxcorr_otb", "siamrpn_r50_l234_dwxcorr",
              replace(_RPN, penalty_k=0.24, window_influence=0.5, lr=0.25),
              "pysot SiamRPN++ ResNet-50 (OTB settings)", builder="zoo:siamrpn_r50_l234_dwxcorr",
              published_by=_PYSOT, checkpoint="experiments/siamrpn_r50_l234_dwxcorr_otb/model.pth"),
    ModelSpec("siamrpn_mobilev2_l234_dwxcorr", "siamrpn_mobilev2_l234_dwxcorr",
              replace(_RPN, penalty_k=0.04, window_influence=0.4, lr=0.5),
              "pysot SiamRPN++ MobileNetV2", builder="zoo:siamrpn_mobilev2_l234_dwxcorr",
              published_by=_PYSOT, checkpoint="experiments/siamrpn_mobilev2_l234_dwxcorr/model.pth"),
    ModelSpec("siamban_r50_l234", "siamban_r50_l234",
              replace(_BAN, penalty_k=0.08513642556896711, window_influence=0.4632532824922313,
                      lr=0.44418184746462425),
              "SiamBAN ResNet-50 (VOT2018 settings)", builder="zoo:siamban_r50_l234",
              published_by=_SIAMBAN, checkpoint="experiments/siamban_r50_l234/model.pth"),
    ModelSpec("siamban_r50_l234_otb", "siamban_r50_l234",
              replace(_BAN, penalty_k=0.020530504470126613, window_influence=0.3850733326567302,
                      lr=0.4730770315643308),
              "SiamBAN ResNet-50 (OTB settings)", builder="zoo:siamban_r50_l234",
              published_by=_SIAMBAN, checkpoint="experiments/siamban_r50_l234_otb/model.pth"),
    ModelSpec("nanotrack_v1", "nanotrack_v1", replace(_NANO, window_influence=0.462, penalty_k=0.148, lr=0.390),
              "NanoTrack v1", builder="nanotrack:nanotrack_v1",
              published_by=_NANOTRACK, checkpoint="nanotrackv1.pth"),
)

MODELS: Dict[str, ModelSpec] = {s.name: s for s in (*BUNDLED, *PUBLISHED)}


#: the model used when none is named: the bundled model that tracks ../shared/data/val best among those
#: that run at 100 fps or more on two cores (weights/README.md)
DEFAULT_MODEL = "nanotrack_v2v3"


#: the models whose weights ship with siamcli, in the catalog's order
BUNDLED_MODELS = tuple(spec.name for spec in BUNDLED)


def is_bundled(name: Optional[str]) -> bool:
    """Whether ``name`` is a model whose weights ship with siamcli (no --weights needed)."""
    spec = MODELS.get(name or "")
    return spec is not None and spec.bundled is not None


def get_spec(name: str) -> ModelSpec:
    """The named model, or a :class:`SiamcliError` listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise SiamcliError(f"unknown model {quoted(name)}; known models: {', '.join(MODELS)}") from None


def build_network(spec: ModelSpec, weights: Optional[PathLike] = None):
    """The spec's network with random weights (eval mode).

    NanoTrack v1 and v2 configs describe the same sections, so for a NanoTrack config the version
    is read off the checkpoint's keys when ``weights`` is given.
    """
    if spec.builder is not None:
        module, function = spec.builder.split(":")
        return getattr(importlib.import_module(f"siamcli.models.{module}"), function)()
    try:
        if spec.architecture == "nanotrack":
            from .models.checkpoint import read_state_dict
            from .models.nanotrack import build_nanotrack_from_config, detect_nanotrack_version

            version = None
            if weights is not None:
                try:
                    version = detect_nanotrack_version(read_state_dict(weights))
                except ValueError:
                    version = None  # not NanoTrack weights: the strict load will explain
            return build_nanotrack_from_config(spec.config, version=version)
        from .models.zoo import build_from_config

        return build_from_config(spec.config)
    except ValueError as exc:
        raise SiamcliError(f"config for {spec.name}: {exc}") from None


def build_model(name: str):
    """The network of the registered model ``name`` with random weights (eval mode)."""
    return build_network(get_spec(name))


def load_network(spec: ModelSpec, weights: PathLike):
    """The spec's network with ``weights`` loaded strictly; weights of another model are refused
    naming the registered model they look like, before the network is made (a config may describe
    a network of any size)."""
    import torch

    from .models.checkpoint import check_fit, load_weights, read_state_dict

    def guess(state: Mapping[str, Any]) -> Optional[str]:
        return guess_model(state, spec)

    state = read_state_dict(weights)
    with torch.device("meta"):  # the network's keys and shapes first: no memory for one that cannot fit
        outline = build_network(spec, weights)
    check_fit(outline, state, weights, spec.name, guess)
    return load_weights(build_network(spec, weights), weights, spec.name, guess, state=state)


def key_signature(spec: ModelSpec) -> Dict[str, tuple]:
    """State-dict keys and shapes of the spec's network, built on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        network = build_network(spec)
    return {k: tuple(v.shape) for k, v in network.state_dict().items()}


def guess_model(state: Mapping[str, Any], exclude: Optional[ModelSpec] = None) -> Optional[str]:
    """The registered model whose network's keys and shapes best match checkpoint ``state``
    (``exclude``'s architecture is not a candidate), or None when none matches well."""
    given = {k: tuple(v.shape) for k, v in state.items()}
    best, best_score, seen = None, 0.0, set()
    for spec in MODELS.values():
        if spec.architecture in seen or (exclude is not None and spec.architecture == exclude.architecture):
            continue
        seen.add(spec.architecture)
        signature = key_signature(spec)
        same = sum(1 for k, shape in signature.items() if given.get(k) == shape)
        score = same / max(len(set(signature) | set(given)), 1)
        if score > best_score:
            best, best_score = spec.name, score
    return best if best_score >= 0.6 else None


def read_config(path: Union[str, Path]) -> Dict[str, Any]:
    """Parse a config.yaml into a dict; bad files (too large, too deep, alias bombs, not YAML)
    raise :class:`SiamcliError` (:func:`siamcli.io.yaml_file.read_yaml`)."""
    path = Path(path)
    if not exists(path):
        raise SiamcliError(f"config file not found: {path}")
    data = read_yaml(path, "config file")
    if not isinstance(data, dict):
        raise SiamcliError(f"{path} is not a tracker config (expected a YAML mapping)")
    return data


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cfg.get(name) or {}
    return value if isinstance(value, Mapping) else {}


def spec_from_config(path: Union[str, Path]) -> ModelSpec:
    """Architecture and tracker hyper-parameters from a pysot, SiamBAN or NanoTrack config.yaml."""
    cfg = read_config(path)
    track = _section(cfg, "TRACK")
    backbone = str(_section(cfg, "BACKBONE").get("TYPE", ""))
    tracker_type = str(track.get("TYPE", ""))
    name = str(cfg.get("META_ARC") or Path(path).parent.name or Path(path).stem)
    if not track and not backbone:
        raise SiamcliError(f"{path} has no BACKBONE or TRACK section: not a pysot/SiamBAN/NanoTrack config")
    if _section(cfg, "MASK").get("MASK"):
        raise SiamcliError(f"{path} is a SiamMask config; SiamMask is not supported (use a SiamRPN or SiamBAN config)")
    if tracker_type == "SiamRPNLTTracker":
        raise SiamcliError(
            f"{path} configures the long-term tracker SiamRPNLTTracker, which siamcli does not support yet"
        )
    if tracker_type and tracker_type not in ("SiamRPNTracker", "SiamBANTracker", "NanoTracker"):
        raise SiamcliError(
            f"{path}: tracker type {quoted(tracker_type)} is not supported "
            "(supported: SiamRPNTracker, SiamBANTracker, NanoTracker)"
        )
    point_stride = int(_section(cfg, "POINT").get("STRIDE", 8))
    if tracker_type == "NanoTracker" or backbone.startswith("mobilenetv3"):
        params = replace(_NANO, stride=point_stride)
        architecture = "nanotrack"
    elif _section(cfg, "BAN").get("BAN") or tracker_type == "SiamBANTracker":
        params = replace(_BAN, stride=point_stride)
        architecture = "pysot"
    else:
        anchor = _section(cfg, "ANCHOR")
        params = replace(
            _RPN,
            stride=int(anchor.get("STRIDE", 8)),
            anchor_ratios=tuple(float(r) for r in anchor.get("RATIOS", _RPN.anchor_ratios)),
            anchor_scales=tuple(float(s) for s in anchor.get("SCALES", _RPN.anchor_scales)),
        )
        architecture = "pysot"
    try:
        params = params.with_track_section(track)
        if "OUTPUT_SIZE" in track:  # NanoTrack v3 states its score-map side directly
            natural = (params.instance_size - params.exemplar_size) // params.stride + 1
            params = replace(params, base_size=int(track["OUTPUT_SIZE"]) - natural)
    except (TypeError, ValueError) as exc:
        raise SiamcliError(f"{path}: bad TRACK value ({exc})") from None
    return ModelSpec(name=name, architecture=architecture, params=params,
                     summary=f"from {path}", config=cfg)
