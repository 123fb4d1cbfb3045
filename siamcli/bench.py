"""Where a frame's time goes: decode, crop, network, post-processing, writing.

:func:`bench` runs the real tracker (:class:`siamcli.tracking.tracker.SiameseTracker`)
over a video or an annotated sequence folder with its engine wrapped in a
timer, and in the same run a baseline:

* ``nanotrack_*``: OpenCV's own ``cv2.TrackerNano`` with the NanoTrack v2 ONNX
  pair (the files OpenCV users have);
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
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .errors import SiamcliError

PathLike = Union[str, Path]
STAGES = ("decode", "crop", "network", "post", "write")
NANOTRACK_PAIR = ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")


class TimedEngine:
    """Wraps an engine and records when each ``track`` call starts and ends."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name = getattr(engine, "name", type(engine).__name__)
        self.start = self.end = 0.0

    def template(self, patch: np.ndarray) -> Any:
        return self.engine.template(patch)

    def __getattr__(self, name: str) -> Any:  # e.g. an int8 engine's calibration hooks
        return getattr(self.engine, name)

    def track(self, patch: np.ndarray, zf: Any):
        self.start = time.perf_counter()
        out = self.engine.track(patch, zf)
        self.end = time.perf_counter()
        return out

    def track_regions(self, frame: np.ndarray, *args: Any, **kwargs: Any):
        """An engine that crops (and picks) on its device: both are timed as part of the network."""
        self.start = time.perf_counter()
        out = self.engine.track_regions(frame, *args, **kwargs)
        self.end = time.perf_counter()
        return out


# -- frame sources -----------------------------------------------------------------
def _is_sequence(path: Path) -> bool:
    return path.is_dir() and (path / "groundtruth_rect.txt").is_file()


def open_source(source: PathLike, max_frames: Optional[int] = None
                ) -> Tuple[Callable[[], Iterator[np.ndarray]], Optional[np.ndarray], int]:
    """(frame iterator factory, ground truth or None, frame count) for a video file,
    an OTB-style sequence folder (``img/`` + ``groundtruth_rect.txt``) or an image folder.

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

    def frames() -> Iterator[np.ndarray]:
        with open_frames(path) as src:
            for n, frame in enumerate(src):
                if limit and n >= limit:
                    break
                yield frame

    return frames, gt, limit


def _median_ms(values: Sequence[float]) -> float:
    return round(float(np.median(values)) * 1000, 3) if len(values) else float("nan")


def mean_iou(boxes: np.ndarray, gt: np.ndarray) -> Optional[float]:
    """Mean IoU over the annotated frames, first frame included (as ``siamcli eval`` scores it)."""
    from .eval.metrics import score_sequence

    scores = score_sequence(boxes, gt[:len(boxes)])
    return round(scores["mean_iou"], 4) if scores["frames_scored"] else None


# -- the instrumented loops ----------------------------------------------------------
def _loop(frames: Callable[[], Iterator[np.ndarray]], box: Sequence[float],
          init: Callable[[np.ndarray, Sequence[float]], None],
          update: Callable[[np.ndarray], Tuple[Sequence[float], Dict[str, float]]],
          warmup: int, sink: io.TextIOBase) -> Dict[str, Any]:
    writer = csv.writer(sink)
    times: Dict[str, List[float]] = {s: [] for s in (*STAGES, "total")}
    boxes: List[Sequence[float]] = []
    it = frames()
    first = next(it, None)
    if first is None:
        raise SiamcliError("the source has no frames")
    started = time.perf_counter()
    init(first, box)
    startup = {"init": time.perf_counter() - started}
    boxes.append(tuple(box))
    count = 0
    loop_start = time.perf_counter()
    timed_from = loop_start
    while True:
        t0 = time.perf_counter()
        frame = next(it, None)
        if frame is None:
            break
        t1 = time.perf_counter()
        result_box, parts = update(frame)
        t2 = time.perf_counter()
        writer.writerow([len(boxes)] + [f"{v:.2f}" for v in result_box])
        t3 = time.perf_counter()
        boxes.append(tuple(result_box))
        count += 1
        if count == 1:
            startup["first_update"] = t2 - t1
        if count == warmup:
            timed_from = t3
        if count > warmup:
            times["decode"].append(t1 - t0)
            times["write"].append(t3 - t2)
            times["total"].append(t3 - t0)
            for key, value in parts.items():
                times[key].append(value)
    elapsed = time.perf_counter() - timed_from
    timed = max(count - warmup, 0)
    # each frame's share of time spent outside the network (decode, crop, post, write), median
    outside = [(t - n) / t for t, n in zip(times["total"], times["network"]) if t > 0]
    return {
        "frames": count + 1,
        "stages_ms": {k: _median_ms(v) for k, v in times.items() if v},
        "outside_network_pct": round(float(np.median(outside)) * 100, 2) if outside else None,
        "fps": round(timed / elapsed, 2) if timed and elapsed > 0 else 0.0,
        # the first frame's costs, outside the medians: template (+ int8 calibration), then the
        # first update (oneDNN primitive creation, or compilation with --compile)
        "startup_ms": {k: round(v * 1000, 1) for k, v in startup.items()},
        "boxes": np.asarray(boxes, dtype=np.float64),
    }


def run_tracker(tracker: Any, frames: Callable[[], Iterator[np.ndarray]], box: Sequence[float],
                warmup: int = 2, sink: Optional[io.TextIOBase] = None) -> Dict[str, Any]:
    """Time a :class:`SiameseTracker` (its engine is wrapped in a :class:`TimedEngine`)."""
    timed = TimedEngine(tracker.engine)
    tracker.engine = timed

    def update(frame):
        t0 = time.perf_counter()
        result = tracker.update(frame)
        t1 = time.perf_counter()
        return result.box, {"crop": timed.start - t0, "network": timed.end - timed.start, "post": t1 - timed.end}

    try:
        return _loop(frames, box, tracker.init, update, warmup, sink or io.StringIO())
    finally:
        tracker.engine = timed.engine


def run_opencv_nano(backbone: PathLike, head: PathLike, frames: Callable[[], Iterator[np.ndarray]],
                    box: Sequence[float], warmup: int = 2, sink: Optional[io.TextIOBase] = None) -> Dict[str, Any]:
    """Time OpenCV's ``cv2.TrackerNano`` (network, crop and post-processing are one ``update``)."""
    if not hasattr(cv2, "TrackerNano"):
        raise SiamcliError("this OpenCV build has no cv2.TrackerNano (needs OpenCV >= 4.7 with the dnn module)")
    params = cv2.TrackerNano_Params()
    params.backbone = str(backbone)
    params.neckhead = str(head)
    tracker = cv2.TrackerNano_create(params)

    def init(frame, b):
        tracker.init(frame, tuple(int(round(v)) for v in b))

    def update(frame):
        t0 = time.perf_counter()
        _ok, b = tracker.update(frame)
        return tuple(float(v) for v in b), {"network": time.perf_counter() - t0}

    out = _loop(frames, box, init, update, warmup, sink or io.StringIO())
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
    warmup: int = 2,
    baseline: bool = True,
    baseline_onnx: Optional[Sequence[PathLike]] = None,
    preload: bool = False,
) -> Dict[str, Any]:
    """Time each stage of the tracking loop for ``model`` on ``source`` against a baseline.

    Returns a JSON-ready dict: ``stages_ms`` (median decode / crop / network /
    post / write / total per frame), ``startup_ms`` (building the ``engine``, ``init`` on the first
    frame, with an int8 engine's calibration, and the ``first_update``, with any compilation), ``fps`` (end to end), ``mean_iou`` (for
    annotated sequences), the chosen engine (and ``probe`` timings when it was
    chosen automatically), and ``baseline`` with the same figures plus
    ``speedup`` (fps / baseline fps). ``preload`` decodes every frame into memory before
    either run, so that fps counts from decoded frames (``max_frames`` bounds the memory).
    """
    from .api import create_tracker, resolve_spec, resolve_weights

    if not onnx_files:
        weights = resolve_weights(resolve_spec(model, config), weights)
    frames, gt, count = open_source(source, max_frames)
    if count and count < 2:
        raise SiamcliError(f"{source} has {count} frame; the benchmark needs at least 2")
    if preload:
        decoded = list(frames())

        def frames() -> Iterator[np.ndarray]:  # noqa: F811 - the same frames, from memory
            return iter(decoded)
    if init_box is None:
        if gt is not None:
            init_box = tuple(float(v) for v in gt[0])
        else:
            init_box = default_box(next(frames()).shape)
    started = time.perf_counter()
    tracker, spec = create_tracker(model=model, config=config, weights=weights, device=device, engine=engine,
                                   precision=precision, threads=threads, onnx_files=onnx_files,
                                   cuda_graphs=cuda_graphs, compile=compile)
    engine_ms = (time.perf_counter() - started) * 1000
    if onnx_files and weights is None and spec.bundled:
        # the model the ONNX files name (siamcli.api.onnx_spec): its bundled weights, for the baseline
        weights = resolve_weights(spec, None)
    result: Dict[str, Any] = {
        "model": spec.name, "source": str(source), "engine": tracker.engine.name,
        "precision": getattr(tracker.engine, "precision", None), "threads": threads,
        "device": device or "auto", "init_box": [round(float(v), 2) for v in init_box], "preloaded": preload,
    }
    if getattr(tracker.engine, "probe", None):
        result["probe_ms"] = tracker.engine.probe
        # auto's choice measured by an earlier start on this machine (siamcli.engines.startup_cache)
        result["probe_remembered"] = bool(getattr(tracker.engine, "probe_remembered", False))
    run = run_tracker(tracker, frames, init_box, warmup)
    result.update({k: v for k, v in run.items() if k != "boxes"})
    # building the engine (checkpoint, export, auto's probe), before the first frame's init
    result["startup_ms"] = {"engine": round(engine_ms, 1), **result["startup_ms"]}
    if gt is not None:
        result["mean_iou"] = mean_iou(run["boxes"], gt)

    if baseline:
        result["baseline"] = _baseline(spec, weights, config, frames, init_box, warmup, gt, baseline_onnx)
        base_fps = result["baseline"].get("fps") or 0
        result["speedup"] = round(result["fps"] / base_fps, 2) if base_fps else None
    result["machine"] = _machine()
    return result


def _baseline(spec, weights, config, frames, box, warmup, gt, baseline_onnx) -> Dict[str, Any]:
    if spec.architecture.startswith("nanotrack") or spec.name.startswith("nanotrack"):
        pair = tuple(baseline_onnx) if baseline_onnx else find_nanotrack_pair(weights)
        if not pair:
            return {"name": "cv2.TrackerNano", "skipped": "no NanoTrack backbone/head ONNX pair given "
                    "(--baseline-onnx BACKBONE HEAD, or put them next to the weights)"}
        out = run_opencv_nano(pair[0], pair[1], frames, box, warmup)
        out["name"] = "cv2.TrackerNano (NanoTrack v2 ONNX pair)"
    else:
        import torch

        from .api import build_network
        from .engines.torch_engine import TorchEngine
        from .models.checkpoint import load_weights
        from .tracking.tracker import SiameseTracker

        if weights is None:
            return {"name": "torch eager fp32, 1 thread", "skipped": "no .pth weights for the torch baseline"}
        network = build_network(spec, weights)
        load_weights(network, weights, spec.name)
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            tracker = SiameseTracker(TorchEngine(network, device="cpu"), spec.params)
            out = run_tracker(tracker, frames, box, warmup)
        finally:
            torch.set_num_threads(before)
        out["name"] = "torch eager fp32, 1 thread"
    boxes = out.pop("boxes")
    if gt is not None:
        out["mean_iou"] = mean_iou(boxes, gt)
    return out
