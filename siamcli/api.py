"""Build a ready tracker from a model name or a config.yaml, and weights."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

from .catalog import ModelSpec, get_spec, spec_from_config
from .errors import SiamcliError
from .tracking.tracker import SiameseTracker

PathLike = Union[str, Path]


def resolve_spec(model: Optional[str] = None, config: Optional[PathLike] = None) -> ModelSpec:
    """The model spec named by ``model`` or described by ``config`` (exactly one of the two)."""
    if model and config:
        raise SiamcliError("give either --model or --config, not both")
    if config:
        return spec_from_config(config)
    if not model:
        raise SiamcliError("no model given: pass --model NAME (see `siamcli models`) or --config config.yaml")
    return get_spec(model)


def build_network(spec: ModelSpec, weights: Optional[PathLike] = None):
    """Instantiate the spec's network (random weights, eval mode).

    NanoTrack v1 and v2 configs describe the same sections, so for a NanoTrack
    config the version is read off the checkpoint's keys when ``weights`` is given.
    """
    if spec.config is None:
        from .models.registry import build_model

        return build_model(spec.architecture)
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


def create_tracker(
    model: Optional[str] = None,
    config: Optional[PathLike] = None,
    weights: Optional[PathLike] = None,
    device: Optional[str] = None,
) -> Tuple[SiameseTracker, ModelSpec]:
    """A tracker for ``model`` (or ``config``) with ``weights`` loaded, on ``device``."""
    from .engines.torch_engine import TorchEngine
    from .models.checkpoint import load_weights

    spec = resolve_spec(model, config)
    if weights is None:
        raise SiamcliError(
            f"no weights given for {spec.name}: pass --weights model.pth "
            "(a pysot / SiamBAN model-zoo file or NanoTrack .pth)"
        )
    network = build_network(spec, weights)
    load_weights(network, weights, spec.name)
    return SiameseTracker(TorchEngine(network, device=device), spec.params), spec
