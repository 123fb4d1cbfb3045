"""siamcli from Python: a tracker object in one line, tracking a whole source, and the models.

``Tracker`` and ``track`` build on :func:`create_tracker`, the one place where a model name (or a
config.yaml), weights, a runtime and tracker settings become a ready tracker; the command line
builds its trackers there too.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .catalog import DEFAULT_MODEL, MODELS, ModelSpec, get_spec, load_network, spec_from_config
from .errors import WEIGHTS_ARGUMENT, WEIGHTS_OPTION, NeedsWeights, SiamcliError
from .io.frames import as_bgr, check_color
from .tracking.params import TrackerParams
from .tracking.tracker import SiameseTracker, TrackResult

PathLike = Union[str, Path]
Box = Tuple[float, float, float, float]

# OpenMP threads that busy-wait (libgomp's default) stall each other when other processes share the
# CPU, so they are told to sleep instead. The policy is read when torch first loads: it is set here,
# before any siamcli code imports torch, unless the user chose one (no effect if torch is already
# imported). onnxruntime's own equivalent is set where its inference sessions are made (allow_spinning=0).
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
    where = (f"{spec.checkpoint} from the {spec.published_by}" if spec.published_by
             else "a pysot / SiamBAN model-zoo file or a NanoTrack .pth")
    raise NeedsWeights(f"no weights given for {spec.name}: pass {WEIGHTS_OPTION} ({where})")


def checkpoint_source(spec: ModelSpec, weights: PathLike):
    """The network of ``spec`` with ``weights`` loaded, built when an engine first needs it
    (:class:`~siamcli.engines.factory.NetworkSource`): a start on a remembered ONNX export of
    these weights needs neither the network nor torch."""
    from .engines import startup_cache
    from .engines.factory import NetworkSource
    from .io.checkpoint_file import check_checkpoint_file

    def load() -> Any:
        return load_network(spec, weights)

    check_checkpoint_file(weights)  # before the cache key reads it whole: a FIFO, a device, a zip bomb
    p = spec.params
    try:
        key = startup_cache.model_key(spec.name, spec.architecture, spec.network_config, weights, p.exemplar_size,
                                      p.instance_size)
    except OSError:
        key = None  # unreadable weights: the load explains
    return NetworkSource(spec.name, p.instance_size, load, key)


class BuiltTracker(NamedTuple):
    """What :func:`build_tracker` made: the tracker, its model, and how ``auto`` chose the
    engine (:class:`~siamcli.engines.factory.Probe`; None when nothing was left to choose)."""

    tracker: SiameseTracker
    spec: ModelSpec
    probe: Any


def create_tracker(model: Optional[str] = None, config: Optional[PathLike] = None, weights: Optional[PathLike] = None,
                   device: Optional[str] = None, engine: Optional[str] = None, precision: Optional[str] = None,
                   threads: Optional[int] = None, onnx_files: Optional[Sequence[PathLike]] = None,
                   cuda_graphs: bool = False, compile: bool = False,
                   settings: Optional[Mapping[str, Any]] = None) -> Tuple[SiameseTracker, ModelSpec]:
    """A tracker and its model: :func:`build_tracker` without the engine choice's figures."""
    built = build_tracker(model, config, weights, device, engine, precision, threads, onnx_files, cuda_graphs,
                          compile, settings)
    return built.tracker, built.spec


def build_tracker(
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
    settings: Optional[Mapping[str, Any]] = None,
) -> BuiltTracker:
    """A tracker for ``model`` (or ``config``) with ``weights`` loaded, on ``device``.

    ``engine`` (auto | torch | onnx) and ``precision`` (auto | fp32 | bf16 |
    fp16) pick the runtime; left out: torch fp32 (onnx with ``onnx_files``) (see
    :func:`siamcli.engines.factory.choose_engine`; ``auto`` measures on this machine among
    accuracy-verified options). ``onnx_files`` runs two ONNX files instead of the checkpoint: the
    ``template.onnx`` + ``search.onnx`` (or ``search_int8.onnx``) of ``siamcli export``, or
    NanoTrack's backbone + head pair; ``weights`` are then not needed. ``threads`` sets the
    runtime's intra-op thread count. ``compile`` compiles the torch engine's search
    branch (see :class:`siamcli.engines.torch_engine.TorchEngine`). ``settings`` change the
    model's tracker settings (:data:`siamcli.tracking.params.TUNABLE`, e.g. ``{"lr": 0.3}``).
    """
    from .engines.factory import choose_engine, onnx_engine_from_files

    if onnx_files:
        if engine == "torch":
            raise SiamcliError("ONNX files were given but --engine torch was asked for; use --engine onnx")
        if compile or cuda_graphs:
            raise SiamcliError(f"--{'compile' if compile else 'cuda-graphs'} applies to the torch engine; "
                               "drop it, or drop --onnx")
        if weights is not None:
            raise SiamcliError("--onnx runs the weights inside the two ONNX files: drop --weights, or drop --onnx "
                               "to run the checkpoint")
        from .engines.onnx_files import read_pair

        pair = read_pair(onnx_files)  # both files read and checked as a pair before anything runs
        spec = onnx_spec(pair, model, config)
        params = spec.params.tuned(**(settings or {}))
        pair.check_sizes(spec.name, params.exemplar_size, params.instance_size, params.score_size)
        runner = onnx_engine_from_files(pair, device=device, threads=threads, precision=precision or "auto")
        return BuiltTracker(SiameseTracker(runner, params), spec, None)
    spec = resolve_spec(model, config)
    params = spec.params.tuned(**(settings or {}))
    source = checkpoint_source(spec, resolve_weights(spec, weights))
    runner, probe = choose_engine(source, engine=engine or "torch", precision=precision or "fp32", device=device,
                                  threads=threads, cuda_graphs=cuda_graphs, instance_size=spec.params.instance_size,
                                  compile=compile)
    return BuiltTracker(SiameseTracker(runner, params), spec, probe)


def create_engine(model: str, weights: Optional[PathLike] = None, **options: Any):
    """The engine of the named ``model`` with ``weights`` (its bundled ones when left out);
    ``options`` as :func:`siamcli.engines.factory.choose_engine` takes them."""
    from .engines.factory import make_engine

    spec = resolve_spec(model)
    return make_engine(checkpoint_source(spec, resolve_weights(spec, weights)), **options)


def onnx_spec(pair: Any, model: Optional[str], config: Optional[PathLike]) -> ModelSpec:
    """The model whose tracker settings run the ONNX ``pair``
    (:class:`~siamcli.engines.onnx_files.OnnxPair`): the one their metadata name (``siamcli export``
    records it) or, for NanoTrack's published pair, the NanoTrack version they belong to, checked
    against ``model`` / ``config`` when given.

    The graphs of one network run with the settings of another give boxes that look plausible
    and are wrong, so a mismatch is refused rather than run.
    """
    from .engines.onnx_engine import ARCHITECTURE_KEY, MODEL_KEY

    labels = pair.metadata
    recorded, architecture = labels.get(MODEL_KEY), labels.get(ARCHITECTURE_KEY)
    names = pair.names
    nanotrack = pair.kind == "nanotrack"
    belongs = pair.nanotrack_model
    if model or config:
        spec = resolve_spec(model, config)
        if recorded and architecture and architecture != spec.architecture:
            fix = f"-m {recorded}" if recorded in MODELS else "the --config they were exported with"
            raise SiamcliError(f"{names} were exported from model {recorded}, not {spec.name}: run them with {fix}")
        if nanotrack and not spec.architecture.startswith("nanotrack"):
            raise SiamcliError(f"{names} are NanoTrack's published backbone and head"
                               + (f" ({belongs})" if belongs else "")
                               + f", not files of {spec.name}: run them with -m {belongs or 'nanotrack_v2'}")
        if nanotrack and belongs and spec.name in MODELS and spec.name != belongs:
            raise SiamcliError(f"{names} are the published backbone and head of {belongs}, not of {spec.name}: "
                               f"run them with -m {belongs}")
        return spec
    if recorded:
        if recorded not in MODELS:
            raise SiamcliError(f"{names} were exported from {recorded}, a model built from a config: "
                               "add the --config they were exported with")
        return get_spec(recorded)
    if nanotrack:
        raise SiamcliError(f"{names} name no model (NanoTrack's published backbone and head carry none): "
                           + (f"add `-m {belongs}`, the version they belong to" if belongs else
                              "add `-m nanotrack_v2` (or the NanoTrack version they belong to)"))
    raise SiamcliError(f"{names} name no model in their metadata: add -m with the model they were exported from")


# -- the Python API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """A model :class:`Tracker` can run: its ``name``, a one-line ``summary``, whether its weights
    ship with siamcli (``bundled``; otherwise pass ``weights=``), where they come from
    (``weights_source``: ``"bundled"``, or who publishes the checkpoint and its file name) and its
    default tracker ``params`` (the :data:`~siamcli.tracking.params.TUNABLE` ones can be changed
    per tracker)."""

    name: str
    summary: str
    bundled: bool
    params: TrackerParams
    weights_source: str


def list_models() -> List[ModelInfo]:
    """Every model siamcli knows, in the order ``siamcli models`` lists them."""
    return [ModelInfo(spec.name, spec.summary, spec.bundled is not None, spec.params, spec.weights_source)
            for spec in MODELS.values()]


class Tracker:
    """A single-object tracker: ``init(frame, box)`` on the first frame, then ``update(frame)``
    on each next one.

    ``model`` is a name from :func:`list_models` or the path of a pysot / SiamBAN / NanoTrack
    ``config.yaml``; ``weights`` the checkpoint (not needed for the bundled models:
    siamrpnban, siamrpn, siamban). ``device`` is ``"auto"`` (CUDA when torch finds it),
    ``"cpu"`` or ``"cuda"``; ``engine`` ``"auto"`` (the fastest accuracy-verified runtime,
    measured once per model and machine), ``"torch"`` or ``"onnx"``; ``precision`` ``"auto"``,
    ``"fp32"``, ``"bf16"`` or ``"fp16"``. ``redetect`` widens the search while the
    target is lost. Other keyword arguments change the model's tracker settings (``penalty_k``,
    ``window_influence``, ``lr``, ``aspect_lr``, ``lost_threshold``, ... :data:`siamcli.tracking.params.TUNABLE`).

    Frames are H x W x 3 uint8 arrays in BGR order as OpenCV reads them, or in RGB order with
    ``color="rgb"`` (what ``np.asarray(pil_image)``, the GOT-10k toolkit and most PyTorch code
    give); PIL images are taken as they are (:func:`siamcli.io.frames.as_bgr`). Boxes are
    ``(x, y, w, h)`` in 0-based pixels. Bad input (an unknown model or setting, missing weights, a
    box outside the frame) raises :class:`siamcli.SiamcliError` with the message the command line
    prints.

    >>> tracker = siamcli.Tracker()                       # doctest: +SKIP
    >>> tracker.init(first_frame, (120, 80, 40, 60))     # doctest: +SKIP
    >>> result = tracker.update(next_frame)              # doctest: +SKIP
    >>> result.box, result.score, result.state           # doctest: +SKIP
    """

    def __init__(self, model: PathLike = DEFAULT_MODEL, weights: Optional[PathLike] = None, device: str = "auto",
                 engine: str = "auto", *, precision: str = "auto", threads: Optional[int] = None,
                 redetect: bool = False, color: str = "bgr", **tracker_settings: Any) -> None:
        self._color = check_color(color)
        is_config = str(model).lower().endswith((".yaml", ".yml"))
        try:
            core, spec = create_tracker(model=None if is_config else str(model), config=model if is_config else None,
                                        weights=weights, device=device, engine=engine, precision=precision,
                                        threads=threads, settings=tracker_settings)
        except NeedsWeights as exc:  # named as this API takes it, not as the command line does
            raise SiamcliError(exc.worded(WEIGHTS_ARGUMENT)) from None
        if redetect:
            from .tracking.redetect import RedetectingTracker

            self._tracker: Any = RedetectingTracker(core)
        else:
            self._tracker = core
        self._core = core
        self._started = False
        #: the model's name (a config's META_ARC, or its folder's name, for a config.yaml)
        self.name: str = spec.name

    @property
    def params(self) -> TrackerParams:
        """The tracker settings in use: the model's, with this tracker's changes."""
        return self._core.params

    @property
    def engine(self) -> str:
        """The runtime the network runs on, e.g. ``"onnx-cpu"`` or ``"torch-cuda-fp16"``."""
        return self._core.engine.name

    def init(self, frame: Any, box: Sequence[float]) -> None:
        """Start tracking the target inside ``box`` (x, y, w, h) on ``frame``; again to restart."""
        self._tracker.init(as_bgr(frame, self._color), box)
        self._started = True

    def update(self, frame: Any) -> TrackResult:
        """The target's box in the next ``frame``, its score and state
        (``"tracking"``, ``"uncertain"`` or ``"lost"``); unpacks as ``ok, box``, as OpenCV's trackers answer."""
        if not self._started:
            raise SiamcliError("call init(frame, box) before update(frame)")
        return self._tracker.update(as_bgr(frame, self._color))

    def __repr__(self) -> str:
        return f"<siamcli.Tracker {self.name} on {self.engine}>"


def _open(source: Union[PathLike, int]):
    from .io.sources import open_camera, open_source

    if isinstance(source, int) and not isinstance(source, bool):
        return open_camera(str(source))
    if "://" in str(source):
        return open_camera(str(source))
    return open_source(source)


def track(source: Union[PathLike, int], box: Sequence[float], model: PathLike = DEFAULT_MODEL,
          weights: Optional[PathLike] = None, device: str = "auto", engine: str = "auto", *,
          max_frames: Optional[int] = None, **options: Any) -> Iterator[Tuple[int, TrackResult]]:
    """Track the target inside ``box`` (x, y, w, h on the first frame) through ``source``:
    a video file, a folder of frames, a camera index (``0``) or a stream URL.

    Yields ``(frame_index, TrackResult)`` for every frame, frame 0 being ``box`` itself with
    score 1, as ``siamcli track`` writes them; ``max_frames`` stops after that many. ``model``,
    ``weights``, ``device``, ``engine`` and the other keyword ``options`` (``precision``,
    ``threads``, ``redetect``, tracker settings such as ``lr=0.3``) are :class:`Tracker`'s.
    The source is opened, the tracker built and started on the first frame before this returns
    (in the order ``siamcli track`` does it), so bad input raises :class:`siamcli.SiamcliError`
    here; the source is closed when the iteration ends. A video that stops decoding early ends
    the iteration with a warning.
    """
    if max_frames is not None and max_frames < 1:
        raise SiamcliError(f"max_frames must be at least 1, got {max_frames}")
    if "color" in options:  # its frames come from OpenCV: BGR, whatever the caller declares
        raise SiamcliError("track reads its frames itself, in BGR order: color applies to frames passed to Tracker")
    from .frame_loop import RunReport, track_frames

    frames = _open(source)
    report = RunReport()
    try:
        tracker = Tracker(model, weights, device, engine, **options)
        run = track_frames(tracker, frames, box, max_frames=max_frames, report=report)
        first = next(run)  # opens the source and starts the tracker on the first frame before returning
    except BaseException:
        frames.close()
        raise
    return _follow(first, run, frames, report)


def _follow(first: Tuple[int, Any, TrackResult], run: Iterator[Tuple[int, Any, TrackResult]], frames: Any,
            report: Any) -> Iterator[Tuple[int, TrackResult]]:
    try:
        yield first[0], first[2]
        for index, _, result in run:
            yield index, result
        if report.stream_message:
            warnings.warn(report.stream_message, RuntimeWarning, stacklevel=2)
    finally:
        run.close()
        frames.close()
