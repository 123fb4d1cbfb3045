"""Where a frame's time goes: decode, crop, network, post-processing, writing.

:func:`bench` runs the real tracker (:class:`siamcli.tracking.tracker.SiameseTracker`)
over a video or an annotated sequence folder with its engine wrapped in a
timer, and in the same run a baseline:

* ``nanotrack_*``, and any model with ``vs_opencv``: OpenCV's own ``cv2.TrackerNano`` with a
  published NanoTrack v1 or v2 ONNX pair (the files OpenCV users have; OpenCV does not run v3's),
  named in the result;
* every other model: a plain eager fp32 torch engine with one thread
  (``torch.set_num_threads(1)``, as the published demos run), restored after.

Stage times are medians over the frames after ``warmup``; ``fps`` is frames
over the wall time of the whole loop (decode to write). With annotated
sequences the mean IoU of both runs is reported too. Results are plain dicts
(JSON-ready); the ``siamcli bench`` command prints them.
"""
from __future__ import annotations

import csv
import io
import os
import platform
import time
from pathlib import Path
from contextlib import closing
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .errors import SiamcliError
from .frame_loop import track_frames
from .io.sources import FrameSource
from .tracking.tracker import TrackResult

PathLike = Union[str, Path]
STAGES = ("decode", "crop", "network", "post", "write")
NANOTRACK_PAIR = ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")
#: updates left out of the medians unless ``--warmup`` says otherwise (oneDNN and onnxruntime
#: prepare their kernels on the first calls)
WARMUP = 2
#: the score map cv2.TrackerNano reads: the published NanoTrack v1 and v2 pairs' (v3's is 15x15)
NANO_SCORE_SIZE = 16


class TimedEngine:
    """An engine that records when its last network call started and ended (the crop on the
    device, for an engine that crops there, counts as network)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name = engine.name
        self.precision = engine.precision
        self.crops_on_device = engine.crops_on_device
        self.max_instance_size = engine.max_instance_size
        self.start = self.end = 0.0

    def template(self, patch: np.ndarray) -> Any:
        return self.engine.template(patch)

    def join_templates(self, features: Sequence[Any]) -> Any:
        return self.engine.join_templates(features)

    def track(self, patch: np.ndarray, features: Any):
        self.start = time.perf_counter()
        out = self.engine.track(patch, features)
        self.end = time.perf_counter()
        return out

    def track_regions(self, frame: np.ndarray, *args: Any):
        self.start = time.perf_counter()
        out = self.engine.track_regions(frame, *args)
        self.end = time.perf_counter()
        return out


class _TimedTracker:
    """A tracker whose ``init`` and ``update`` calls are timed (start and end of the last one)."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.init_seconds = 0.0
        self.start = self.end = 0.0

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        started = time.perf_counter()
        self.tracker.init(frame, box)
        self.init_seconds = time.perf_counter() - started

    def update(self, frame: np.ndarray) -> Any:
        self.start = time.perf_counter()
        result = self.tracker.update(frame)
        self.end = time.perf_counter()
        return result


# -- frame sources -----------------------------------------------------------------
def _is_sequence(path: Path) -> bool:
    return path.is_dir() and (path / "groundtruth_rect.txt").is_file()


def bench_source(source: PathLike, max_frames: Optional[int] = None
                ) -> Tuple[Callable[[], Iterable[np.ndarray]], Optional[np.ndarray], int]:
    """(frames factory, ground truth or None, frames to use) for a video file, an OTB-style
    sequence folder (``img/`` + ``groundtruth_rect.txt``) or an image folder.

    Frames are read through :func:`siamcli.io.sources.open_source`, as ``track`` reads them."""
    from .io.sources import open_source as open_frames

    path = Path(source)
    gt = None
    if _is_sequence(path):
        from .eval.datasets import load_sequence

        gt = np.asarray(load_sequence(path).groundtruth, dtype=np.float64)
    with open_frames(path) as probe:
        count = probe.frame_count or 0
    limit = min(count, max_frames) if max_frames and count else (max_frames or count)
    if gt is not None:
        gt = gt[:limit] if limit else gt

    def frames() -> Iterable[np.ndarray]:
        return open_frames(path)

    return frames, gt, limit


def _median_ms(values: Sequence[float]) -> float:
    return round(float(np.median(values)) * 1000, 3) if len(values) else float("nan")


def mean_iou(boxes: np.ndarray, gt: np.ndarray) -> Optional[float]:
    """Mean IoU over the annotated frames, first frame included (as ``siamcli eval`` scores it)."""
    from .eval.metrics import score_sequence

    scores = score_sequence(boxes, gt[:len(boxes)])
    return round(scores["mean_iou"], 4) if scores["frames_scored"] else None


# -- the instrumented loops ----------------------------------------------------------
def _loop(frames: Callable[[], Iterable[np.ndarray]], box: Sequence[float], tracker: Any,
          stages: Callable[["_TimedTracker"], Dict[str, float]], warmup: int, sink: io.TextIOBase,
          max_frames: Optional[int] = None) -> Dict[str, Any]:
    """:func:`siamcli.frame_loop.track_frames` with stage timers: the wait for a decoded frame, the
    ``update`` (split by ``stages``), the writing of its row."""
    writer = csv.writer(sink)
    times: Dict[str, List[float]] = {s: [] for s in (*STAGES, "total")}
    boxes: List[Sequence[float]] = []
    timed = _TimedTracker(tracker)
    startup: Dict[str, float] = {}
    count = 0
    source = frames()
    try:
        with closing(track_frames(timed, source, box, max_frames=max_frames)) as run:
            asked = time.perf_counter()
            for _, _, result in run:
                got = time.perf_counter()
                if not boxes:  # the first frame: its box, after init
                    startup["init"] = timed.init_seconds
                    boxes.append(tuple(float(v) for v in box))
                    asked = timed_from = time.perf_counter()
                    continue
                writer.writerow([len(boxes)] + [f"{v:.2f}" for v in result.box])
                written = time.perf_counter()
                boxes.append(tuple(result.box))
                count += 1
                update = timed.end - timed.start
                if count == 1:
                    startup["first_update"] = update
                if count == warmup:
                    timed_from = written
                if count > warmup:
                    times["decode"].append(got - asked - update)
                    times["write"].append(written - got)
                    times["total"].append(written - asked)
                    for key, value in stages(timed).items():
                        times[key].append(value)
                asked = time.perf_counter()
    finally:
        if isinstance(source, FrameSource):
            source.close()
    if not boxes:
        raise SiamcliError("the source has no frames")
    if not times["total"]:  # a source shorter than its header said: nothing measured is no measurement
        raise SiamcliError(f"no frame was timed: {count} update{'s' if count != 1 else ''} after the first frame, "
                           f"{warmup} left out as warm-up; use fewer --warmup frames or a longer source")
    elapsed = time.perf_counter() - timed_from
    timed_count = max(count - warmup, 0)
    # each frame's share of time spent outside the network (decode, crop, post, write), median
    outside = [(t - n) / t for t, n in zip(times["total"], times["network"]) if t > 0]
    return {
        "frames": count + 1,
        "stages_ms": {k: _median_ms(v) for k, v in times.items() if v},
        "outside_network_pct": round(float(np.median(outside)) * 100, 2) if outside else None,
        "fps": round(timed_count / elapsed, 2) if timed_count and elapsed > 0 else 0.0,
        # the first frame's costs, outside the medians: the template, then the first update
        # (oneDNN primitive creation, or compilation with --compile)
        "startup_ms": {k: round(v * 1000, 1) for k, v in startup.items()},
        "boxes": np.asarray(boxes, dtype=np.float64),
    }


def run_tracker(tracker: Any, frames: Callable[[], Iterable[np.ndarray]], box: Sequence[float],
                warmup: int = 2, sink: Optional[io.TextIOBase] = None,
                max_frames: Optional[int] = None) -> Dict[str, Any]:
    """Time a :class:`SiameseTracker` (its engine is wrapped in a :class:`TimedEngine`)."""
    network = TimedEngine(tracker.engine)
    tracker.engine = network

    def stages(update: _TimedTracker) -> Dict[str, float]:
        return {"crop": network.start - update.start, "network": network.end - network.start,
                "post": update.end - network.end}

    try:
        return _loop(frames, box, tracker, stages, warmup, sink or io.StringIO(), max_frames)
    finally:
        tracker.engine = network.engine


class _OpenCVNano:
    """``cv2.TrackerNano`` as a tracker: ``init(frame, box)``, ``update(frame) -> TrackResult``."""

    def __init__(self, backbone: PathLike, head: PathLike) -> None:
        params = cv2.TrackerNano_Params()
        params.backbone = str(backbone)
        params.neckhead = str(head)
        self.tracker = cv2.TrackerNano_create(params)

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        self.tracker.init(frame, tuple(int(round(v)) for v in box))

    def update(self, frame: np.ndarray) -> TrackResult:
        _ok, box = self.tracker.update(frame)
        return TrackResult(tuple(float(v) for v in box), float(self.tracker.getTrackingScore()))


def run_opencv_nano(backbone: PathLike, head: PathLike, frames: Callable[[], Iterable[np.ndarray]],
                    box: Sequence[float], warmup: int = 2, sink: Optional[io.TextIOBase] = None,
                    max_frames: Optional[int] = None) -> Dict[str, Any]:
    """Time OpenCV's ``cv2.TrackerNano`` (network, crop and post-processing are one ``update``)."""
    if not hasattr(cv2, "TrackerNano"):
        raise SiamcliError("this OpenCV build has no cv2.TrackerNano (needs OpenCV >= 4.7 with the dnn module)")
    out = _loop(frames, box, _OpenCVNano(backbone, head), lambda update: {"network": update.end - update.start},
                warmup, sink or io.StringIO(), max_frames)
    out["note"] = "cv2.TrackerNano.update = crop + network + post-processing, reported as network"
    out["outside_network_pct"] = None  # its crop and post-processing cannot be told from its network
    return out


def default_box(frame_shape: Sequence[int]) -> Tuple[float, float, float, float]:
    """A centred box a quarter of the frame's size (for unannotated videos without --init)."""
    h, w = frame_shape[:2]
    return (w * 3 / 8, h * 3 / 8, w / 4, h / 4)


def _machine() -> Dict[str, Any]:
    info: Dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                            "opencv": cv2.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def find_nanotrack_pair(weights: Optional[PathLike]) -> Optional[Tuple[Path, Path]]:
    """NanoTrack's backbone/head ONNX files next to ``weights``, if there."""
    if weights is None:
        return None
    folder = Path(weights).parent
    pair = tuple(folder / n for n in NANOTRACK_PAIR)
    return pair if all(p.is_file() for p in pair) else None  # type: ignore[return-value]


def bench(
    model: Optional[str],
    source: PathLike,
    weights: Optional[PathLike] = None,
    config: Optional[PathLike] = None,
    engine: str = "auto",
    precision: str = "auto",
    device: Optional[str] = None,
    threads: Optional[int] = None,
    onnx_files: Optional[Sequence[PathLike]] = None,
    cuda_graphs: bool = False,
    compile: bool = False,
    init_box: Optional[Sequence[float]] = None,
    max_frames: Optional[int] = None,
    warmup: Optional[int] = None,
    baseline: bool = True,
    baseline_onnx: Optional[Sequence[PathLike]] = None,
    preload: bool = False,
    rounds: int = 1,
    vs_opencv: bool = False,
) -> Dict[str, Any]:
    """Time each stage of the tracking loop for ``model`` on ``source`` against a baseline.

    Returns a JSON-ready dict: ``stages_ms`` (median decode / crop / network /
    post / write / total per frame), ``startup_ms`` (building the ``engine``, ``init`` on the first
    frame, and the ``first_update``, with any compilation), ``fps`` (end to end), ``mean_iou`` (for
    annotated sequences), the chosen engine (and ``probe`` timings when it was
    chosen automatically), and ``baseline`` with the same figures plus
    ``speedup`` (fps / baseline fps). ``preload`` decodes every frame into memory before
    either run, so that fps counts from decoded frames (``max_frames`` bounds the memory).
    ``warmup``: updates left out of the medians (:func:`warmup_frames`; None: up to
    :data:`WARMUP`, leaving at least one update timed).

    ``rounds`` runs the tracker and its baseline that many times, alternately, over the same frames,
    so that a slow spell of a shared machine hits both alike: the stage times and fps are then the
    medians over the rounds (``rounds_fps`` lists each round's). ``vs_opencv`` takes OpenCV's
    ``cv2.TrackerNano`` as the baseline whatever the model (its NanoTrack ONNX pair from
    ``baseline_onnx``, or beside ``weights``).
    """
    from .api import build_tracker, resolve_spec, resolve_weights

    if rounds < 1:
        raise SiamcliError(f"rounds must be at least 1, got {rounds}")
    if vs_opencv and not baseline:
        raise SiamcliError("--vs-opencv runs OpenCV's TrackerNano as the baseline: drop --no-baseline")
    baseline_pair = None  # the --baseline-onnx pair, checked before any frame
    if not onnx_files:
        spec = resolve_spec(model, config)
        weights = resolve_weights(spec, weights)
        if baseline_onnx:
            baseline_pair = check_baseline_onnx(spec, baseline_onnx, baseline, vs_opencv)
    frames, gt, count = bench_source(source, max_frames)
    if count and count < 2:
        raise SiamcliError(f"{source} has {count} frame; the benchmark needs at least 2")
    warmup = warmup_frames(count, warmup)
    if preload:
        with frames() as src:
            decoded = [frame for _, frame in zip(range(count or 1 << 62), src)]
        frames = lambda: decoded  # noqa: E731 - the same frames, from memory
    if init_box is None:
        if gt is not None:
            init_box = tuple(float(v) for v in gt[0])
        else:
            source_frames = frames()
            try:
                init_box = default_box(next(iter(source_frames)).shape)
            finally:
                if isinstance(source_frames, FrameSource):
                    source_frames.close()
    started = time.perf_counter()
    # with --onnx the files hold the tracked network's weights, and --weights those of the baseline
    tracker, spec, probe = build_tracker(model=model, config=config, weights=None if onnx_files else weights,
                                         device=device, engine=engine, precision=precision, threads=threads,
                                         onnx_files=onnx_files, cuda_graphs=cuda_graphs, compile=compile)
    engine_ms = (time.perf_counter() - started) * 1000
    if onnx_files and baseline_onnx:
        baseline_pair = check_baseline_onnx(spec, baseline_onnx, baseline, vs_opencv)
    if onnx_files and weights is None and spec.bundled:
        # the model the ONNX files name (siamcli.api.onnx_spec): its bundled weights, for the baseline
        weights = resolve_weights(spec, None)
    result: Dict[str, Any] = {
        "model": spec.name, "source": str(source), "engine": tracker.engine.name,
        "precision": tracker.engine.precision, "threads": threads,
        "device": device or "auto", "init_box": [round(float(v), 2) for v in init_box], "preloaded": preload,
        "rounds": rounds,
    }
    if probe is not None:
        result["probe_ms"] = probe.ms
        # auto's choice measured by an earlier start on this machine (siamcli.engines.startup_cache)
        result["probe_remembered"] = probe.remembered
    other = _baseline(spec, weights, baseline_pair, vs_opencv) if baseline else None
    limit = count or None
    runs, base_runs = [], []
    for _ in range(rounds):  # alternated, so that the machine's slow spells hit both alike
        runs.append(run_tracker(tracker, frames, init_box, warmup, max_frames=limit))
        if other is not None and "skipped" not in other:
            base_runs.append(other["run"](frames, init_box, warmup, limit))
    run = _over_rounds(runs)
    result.update({k: v for k, v in run.items() if k != "boxes"})
    # building the engine (checkpoint, export, auto's probe), before the first frame's init
    result["startup_ms"] = {"engine": round(engine_ms, 1), **result["startup_ms"]}
    if gt is not None:
        result["mean_iou"] = mean_iou(run["boxes"], gt)
    if other is not None:
        result["baseline"] = other if "skipped" in other else _baseline_result(other["name"], base_runs, gt)
        base_fps = result["baseline"].get("fps") or 0
        result["speedup"] = round(result["fps"] / base_fps, 2) if base_fps else None
    result["machine"] = _machine()
    return result


def warmup_frames(count: int, warmup: Optional[int]) -> int:
    """The updates left out of the medians when ``count`` frames are used (0: unknown): ``warmup``
    as asked, refused when it leaves no update to time (the first frame starts the tracker, every
    later one is an update); None: :data:`WARMUP`, or fewer on a short source."""
    updates = count - 1 if count else None
    if warmup is None:
        return WARMUP if updates is None else max(0, min(WARMUP, updates - 1))
    if updates is not None and warmup >= updates:
        fewer = f"use --warmup {updates - 1} or less, or " if updates > 1 else ""
        raise SiamcliError(f"--warmup {warmup} leaves no frame to time: of the {count} frames used, the first starts "
                           f"the tracker and {updates} {'is an update' if updates == 1 else 'are updates'}; "
                           f"{fewer}more frames with -n")
    return warmup


def _is_nanotrack(spec) -> bool:
    return spec.architecture.startswith("nanotrack") or spec.name.startswith("nanotrack")


def check_baseline_onnx(spec, files: Sequence[PathLike], baseline: bool = True, vs_opencv: bool = False):
    """The :class:`~siamcli.engines.onnx_files.OnnxPair` of ``--baseline-onnx`` ``files``, refused
    when it cannot be the baseline of model ``spec``: no baseline is run (``baseline`` False), the
    model's baseline is not cv2.TrackerNano, or the files are no NanoTrack pair OpenCV runs (in the
    wrong order, not ONNX, v3's). The pair may be of another NanoTrack version than the model
    benchmarked (OpenCV's users run v2's): the baseline's name says which it is. With ``vs_opencv``
    cv2.TrackerNano is the baseline of any model."""
    from .engines.onnx_files import read_pair

    if not baseline:
        raise SiamcliError("--baseline-onnx gives the baseline's files, and --no-baseline runs none: drop one of them")
    if not _is_nanotrack(spec) and not vs_opencv:
        raise SiamcliError(f"--baseline-onnx gives the NanoTrack pair of cv2.TrackerNano, the baseline of NanoTrack "
                           f"models (or of any with --vs-opencv); the baseline of {spec.name} is torch eager on its "
                           "--weights: drop --baseline-onnx")
    pair = read_pair(files, "--baseline-onnx")
    if pair.kind != "nanotrack":
        raise SiamcliError(f"{pair.names} are the graphs of a `siamcli export`; --baseline-onnx takes NanoTrack's "
                           "published backbone.onnx and head.onnx, which cv2.TrackerNano loads")
    if pair.score_size != NANO_SCORE_SIZE:
        belongs = f" ({pair.nanotrack_model}'s)" if pair.nanotrack_model else ""
        raise SiamcliError(f"{pair.names}{belongs} give a {pair.score_size}x{pair.score_size} score map; "
                           f"cv2.TrackerNano runs the pairs of NanoTrack v1 and v2 ({NANO_SCORE_SIZE}x"
                           f"{NANO_SCORE_SIZE}): use --no-baseline")
    return pair


def _over_rounds(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One run's figures from several rounds of it: stage times, their share outside the network and
    fps are the medians over the rounds; the first round's start-up costs and boxes (every round
    tracks the same frames the same way)."""
    first = runs[0]
    if len(runs) == 1:
        return dict(first)

    def median(values: List[Any]) -> Any:
        values = [v for v in values if v is not None]
        return round(float(np.median(values)), 3) if values else None

    out = dict(first)
    out["stages_ms"] = {k: median([r["stages_ms"].get(k) for r in runs]) for k in first["stages_ms"]}
    out["outside_network_pct"] = median([r.get("outside_network_pct") for r in runs])
    out["fps"] = round(float(np.median([r["fps"] for r in runs])), 2)
    out["rounds_fps"] = [r["fps"] for r in runs]
    return out


def _baseline_result(name: str, runs: List[Dict[str, Any]], gt: Optional[np.ndarray]) -> Dict[str, Any]:
    out = {"name": name, **_over_rounds(runs)}
    boxes = out.pop("boxes")
    if gt is not None:
        out["mean_iou"] = mean_iou(boxes, gt)
    return out


def _baseline(spec, weights, pair, vs_opencv) -> Dict[str, Any]:
    """The baseline's name and how to run it (``run(frames, box, warmup, limit)``), or why it is
    skipped; ``pair``: the checked ``--baseline-onnx`` pair, or None."""
    if _is_nanotrack(spec) or vs_opencv:
        if pair is None:
            found = find_nanotrack_pair(weights)
            fix = "--baseline-onnx BACKBONE HEAD, or put them next to the weights"
            if not found and vs_opencv:
                raise SiamcliError(f"--vs-opencv needs a NanoTrack ONNX pair, the files cv2.TrackerNano loads: {fix}")
            if not found:
                return {"name": "cv2.TrackerNano", "skipped": f"no NanoTrack backbone/head ONNX pair given ({fix})"}
            try:
                pair = check_baseline_onnx(spec, found, vs_opencv=vs_opencv)
            except SiamcliError as exc:  # found, not given: the benchmark goes on without it
                return {"name": "cv2.TrackerNano", "skipped": str(exc)}
        version = (pair.nanotrack_model or "").replace("nanotrack_", "NanoTrack ") or "NanoTrack"
        return {"name": f"cv2.TrackerNano ({version} ONNX pair)",
                "run": lambda frames, box, warmup, limit: run_opencv_nano(*pair.paths, frames, box, warmup,
                                                                          max_frames=limit)}
    name = "torch eager fp32, 1 thread"
    if weights is None:
        return {"name": name, "skipped": "no .pth weights for the torch baseline"}
    from .catalog import load_network

    network = load_network(spec, weights)
    return {"name": name, "run": lambda frames, box, warmup, limit: _run_torch_eager(network, spec, frames, box,
                                                                                     warmup, limit)}


def _run_torch_eager(network, spec, frames, box, warmup, limit) -> Dict[str, Any]:
    """The published demos' loop: eager fp32 torch on one thread (restored after)."""
    import torch

    from .engines.torch_engine import TorchEngine
    from .tracking.tracker import SiameseTracker

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        tracker = SiameseTracker(TorchEngine(network, device="cpu"), spec.params)
        return run_tracker(tracker, frames, box, warmup, max_frames=limit)
    finally:
        torch.set_num_threads(before)
