"""Build a ready tracker from a model name or a config.yaml, and weights."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from .catalog import DEFAULT_MODEL, ModelSpec, get_spec, spec_from_config
from .errors import SiamcliError
from .tracking.tracker import SiameseTracker

PathLike = Union[str, Path]

# OpenMP threads that busy-wait (libgomp's default) collapse when the CPU is shared: on
# the 2-core test machine under load, NanoTrack's torch forward went from 17 ms to 700+ ms
# with 2 threads. Passive waiting is read when torch first loads, so it is set here, before
# any siamcli code imports torch, unless the user chose a policy (no effect if torch is
# already imported). onnxruntime's own equivalent is set per session (allow_spinning=0).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def resolve_spec(model: Optional[str] = None, config: Optional[PathLike] = None) -> ModelSpec:
    """The model spec named by ``model`` or described by ``config`` (at most one of the two;
    neither: the bundled default model)."""
    if model and config:
        raise SiamcliError("give either --model or --config, not both")
    if config:
        return spec_from_config(config)
    return get_spec(model or DEFAULT_MODEL)


def resolve_weights(spec: ModelSpec, weights: Optional[PathLike]) -> PathLike:
    """``weights`` if given, else the spec's bundled file (sha256-checked)."""
    if weights is not None:
        return weights
    if spec.bundled:
        from .bundled import bundled_weights

        return bundled_weights(spec.bundled)
    raise SiamcliError(
        f"no weights given for {spec.name}: pass --weights model.pth "
        "(a pysot / SiamBAN model-zoo file or NanoTrack .pth)"
    )


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
    engine: Optional[str] = None,
    precision: Optional[str] = None,
    threads: Optional[int] = None,
    onnx_files: Optional[Sequence[PathLike]] = None,
    cuda_graphs: bool = False,
    compile: bool = False,
) -> Tuple[SiameseTracker, ModelSpec]:
    """A tracker for ``model`` (or ``config``) with ``weights`` loaded, on ``device``.

    ``engine`` (auto | torch | onnx) and ``precision`` (auto | fp32 | bf16 |
    fp16) pick the runtime; left out: torch fp32 (onnx with ``onnx_files``) (see :func:`siamcli.engines.factory.make_engine`;
    ``auto`` measures on this machine among accuracy-verified options).
    ``onnx_files`` runs two ONNX files instead of the checkpoint: the
    ``template.onnx`` + ``search.onnx`` of ``siamcli export``, or NanoTrack's
    backbone + head pair; ``weights`` are then not needed. ``threads`` sets the
    runtime's intra-op thread count. ``compile`` compiles the torch engine's search
    branch (see :class:`siamcli.engines.torch_engine.TorchEngine`).
    """
    from .engines.factory import make_engine

    engine = engine or ("onnx" if onnx_files else "torch")
    precision = precision or "fp32"
    if onnx_files:
        runner = make_engine(None, engine=engine, precision=precision, device=device, threads=threads,
                             onnx_files=onnx_files, compile=compile)
        spec = onnx_spec(runner, model, config, onnx_files)
        return SiameseTracker(runner, spec.params), spec
    spec = resolve_spec(model, config)
    from .engines.factory import checkpoint_source

    # the network is built (and the checkpoint read) only if the engine needs it: a remembered
    # ONNX export of these weights does not
    source = checkpoint_source(spec, resolve_weights(spec, weights))
    runner = make_engine(source, engine=engine, precision=precision, device=device, threads=threads,
                         cuda_graphs=cuda_graphs, instance_size=spec.params.instance_size, compile=compile)
    return SiameseTracker(runner, spec.params), spec


def onnx_spec(runner, model: Optional[str], config: Optional[PathLike], files: Sequence[PathLike]) -> ModelSpec:
    """The model whose tracker settings run the ONNX files of ``runner``: the one their metadata
    names (``siamcli export`` records it), checked against ``model`` / ``config`` when given.

    The graphs of one network run with the settings of another give boxes that look plausible
    and are wrong, so a mismatch is refused rather than run.
    """
    from .catalog import MODELS
    from .export import ARCHITECTURE_KEY, MODEL_KEY

    labels = getattr(runner, "metadata", None) or {}
    recorded, architecture = labels.get(MODEL_KEY), labels.get(ARCHITECTURE_KEY)
    names = " and ".join(str(f) for f in files)
    if model or config:
        spec = resolve_spec(model, config)
        if recorded and architecture and architecture != spec.architecture:
            fix = f"-m {recorded}" if recorded in MODELS else "the --config they were exported with"
            raise SiamcliError(f"{names} were exported from model {recorded}, not {spec.name}: run them with {fix}")
        return spec
    if recorded:
        if recorded not in MODELS:
            raise SiamcliError(f"{names} were exported from {recorded}, a model built from a config: "
                               "add the --config they were exported with")
        return get_spec(recorded)
    from .engines.onnx_engine import OnnxPairEngine

    if isinstance(runner, OnnxPairEngine):
        raise SiamcliError(f"{names} name no model (NanoTrack's published backbone and head carry none): "
                           "add `-m nanotrack_v2` (or the NanoTrack version they belong to)")
    raise SiamcliError(f"{names} name no model in their metadata: add -m with the model they were exported from")
