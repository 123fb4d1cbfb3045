"""Pick and build an engine: torch (fp32 / bf16 / fp16) or onnxruntime.

``engine="auto"`` / ``precision="auto"`` choose by a short measured probe on
this machine (median time of a few search-branch runs), but only among
options whose tracking accuracy was verified: fp32 always; a reduced
precision only where ``accuracy.json`` (written by
``python -m tools.accuracy_table``) records that it keeps the mean IoU on the
shared sequences within ``ACCURACY_TOLERANCE`` of fp32 for that model.
An explicitly requested precision is always honoured.

``auto``'s choice and the ONNX export of a checkpoint are remembered on disk
(:mod:`.startup_cache`), so the next start skips the probe and the export, and, on
the onnxruntime engine, never builds the torch network at all.

int8 runs on onnxruntime from the graphs of ``siamcli export --int8``, given as ``onnx_files``:
its calibration needs frames of the user's footage, which only the export is given.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import SiamcliError, quoted
from . import startup_cache
from .choices import DEVICES, ENGINES, PRECISIONS

INT8_FILES = ("int8 runs on the onnx engine from the files of `siamcli export --int8`: "
              "give them with --onnx template.onnx search_int8.onnx")
#: largest drop of mean IoU (vs fp32, on ../shared/data/seqs) for a precision to be chosen automatically
ACCURACY_TOLERANCE = 0.01
ACCURACY_FILE = Path(__file__).with_name("accuracy.json")

PathLike = Union[str, Path]


def accuracy_table(path: PathLike = ACCURACY_FILE) -> Dict[str, Any]:
    """The recorded accuracy checks (model name -> precision -> figures)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def verified_precisions(model_name: Optional[str], table: Optional[Dict[str, Any]] = None) -> List[str]:
    """Precisions that may be chosen automatically for ``model_name``: fp32, plus each
    reduced precision recorded within :data:`ACCURACY_TOLERANCE` of fp32."""
    table = accuracy_table() if table is None else table
    entry = table.get(model_name or "", {}) if isinstance(table.get(model_name or ""), dict) else {}
    fp32 = entry.get("fp32", {}).get("mean_iou")
    out = ["fp32"]
    for prec in ("bf16", "fp16"):
        got = entry.get(prec, {}).get("mean_iou")
        if fp32 is not None and got is not None and fp32 - got <= ACCURACY_TOLERANCE:
            out.append(prec)
    return out


#: files whose presence tells that an NVIDIA driver is installed (Linux, WSL)
_NVIDIA_NODES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")


def _cuda_available() -> bool:
    # importing torch takes seconds: on Linux without an NVIDIA driver there is no CUDA to find
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _NVIDIA_NODES):
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()




def check_device(device: Optional[str]) -> None:
    """Refuse a device name siamcli does not know, and a GPU device on a machine without one,
    naming the device (before any engine is tried)."""
    if device is None:
        return
    base, _, index = str(device).partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise SiamcliError(f"unknown device {quoted(device)}; use cpu, cuda, cuda:N, tensorrt (onnx engine) or auto")
    if base in ("cuda", "tensorrt") and not _cuda_available() and not _onnxruntime_has(base):
        raise SiamcliError(f"device {quoted(device)} asked for, but there is no CUDA GPU here (torch finds none and "
                           "onnxruntime has no GPU provider); use --device cpu or auto")


def _onnxruntime_has(device: str) -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    wanted = "TensorrtExecutionProvider" if device == "tensorrt" else "CUDAExecutionProvider"
    return wanted in onnxruntime.get_available_providers()


@dataclass
class NetworkSource:
    """A network with its weights, built on first use: a start on a remembered ONNX export
    needs neither the network nor torch. ``cache_key`` (see
    :func:`.startup_cache.model_key`) names the weights file's export; None: never cached."""

    name: Optional[str]
    instance_size: int
    load: Callable[[], Any]
    cache_key: Optional[str] = None
    _network: Any = field(default=None, repr=False)

    def network(self) -> Any:
        if self._network is None:
            self._network = self.load()
        return self._network


def _resolve_model(model: Any) -> NetworkSource:
    """A :class:`NetworkSource` from a source or a ready network (never cached: no weights file)."""
    if isinstance(model, NetworkSource):
        return model
    return NetworkSource(None, 255, lambda: model, None, model)


def onnx_engine_from_files(files: Union[Sequence[PathLike], Any], device: Optional[str] = None,
                           threads: Optional[int] = None, precision: str = "auto"):
    """The onnxruntime engine of two ONNX files: ``template.onnx`` and ``search.onnx`` (or
    ``search_int8.onnx``) of ``siamcli export``, or NanoTrack's backbone and head pair; ``files``
    may be the :class:`~.onnx_files.OnnxPair` :func:`~.onnx_files.read_pair` made of them."""
    from .onnx_engine import OnnxEngine, OnnxPairEngine
    from .onnx_files import OnnxPair, read_pair

    check_device(device)
    if precision not in ("auto", "fp32", "int8"):
        raise SiamcliError(f"the onnx engine runs fp32 (or int8 from `siamcli export --int8`), not {precision}")
    pair = files if isinstance(files, OnnxPair) else read_pair(files)
    kind = OnnxEngine if pair.kind == "export" else OnnxPairEngine
    try:
        engine = kind(pair.first.data, pair.second.data, device=device, threads=threads)
    except SiamcliError as exc:  # checked as ONNX, refused by onnxruntime (an operator it lacks, say)
        raise SiamcliError(f"{pair.names}: {exc}") from None
    if precision in ("fp32", "int8") and engine.precision != precision:
        fix = "; write an int8 search graph with `siamcli export --int8`" if precision == "int8" else ""
        raise SiamcliError(f"{pair.second.path} runs in {engine.precision}, not {precision}{fix}")
    return engine


def _build(kind: str, precision: str, source: NetworkSource, device: Optional[str], threads: Optional[int],
           cuda_graphs: bool, instance_size: int, compile: bool = False):
    if kind == "torch":
        from .torch_engine import TorchEngine

        return TorchEngine(source.network(), device=device, precision=precision, threads=threads,
                           cuda_graphs=cuda_graphs, compile=compile)
    from .onnx_engine import OnnxEngine, providers_for

    providers = providers_for(device)  # fail before a (possibly long) export when the device is not there
    if precision != "fp32":
        raise SiamcliError(f"the onnx engine runs fp32 only, not {precision}; use --engine torch for {precision}")
    key = None if source.cache_key is None else f"{source.cache_key}-{instance_size}"
    # onnxruntime's optimized graphs are kept for its CPU provider only (the GPU ones are its own)
    cpu = key is not None and providers == ["CPUExecutionProvider"]
    ready = startup_cache.use_optimized(key) if cpu else None
    if ready is not None:
        try:
            return OnnxEngine(*ready, device=device, threads=threads, optimized=True)
        except Exception:  # a damaged file: made again below
            startup_cache.forget_files(ready)
    save = startup_cache.optimized_paths(key) if cpu else None
    engine = None
    remembered = startup_cache.load_onnx(key) if key else None
    if remembered is not None:
        try:
            engine = OnnxEngine(*remembered, device=device, threads=threads, save_optimized=save)
        except Exception:  # a damaged file: export again
            startup_cache.forget_onnx(key)
    graphs = None
    if engine is None:
        from .onnx_export import export_onnx_bytes

        graphs = export_onnx_bytes(source.network(), instance_size=instance_size)
        engine = OnnxEngine(*graphs, device=device, threads=threads, save_optimized=save)
    saved = save is not None and all(p.is_file() for p in save)
    if graphs is not None and key and not saved:  # the optimized copy is all a CPU start needs: no second copy
        startup_cache.save_onnx(key, graphs)
    if saved:
        startup_cache.make_room(keep=save)
    return engine


def probe_speed(engine: Any, exemplar_size: int = 127, instance_size: int = 255, runs: int = 5) -> float:
    """Median seconds of one search-branch call (after one warm-up) on a fixed random patch."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 256, (exemplar_size, exemplar_size, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (instance_size, instance_size, 3), dtype=np.uint8)
    zf = engine.template(z)
    engine.track(x, zf)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.track(x, zf)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def candidates(engine: str, precision: str, model_name: Optional[str], device: Optional[str]
               ) -> List[Tuple[str, str]]:
    """(engine, precision) pairs that ``auto`` may choose from, best guess first."""
    cuda = device not in (None, "auto", "cpu") or (device in (None, "auto") and _cuda_available())
    allowed = verified_precisions(model_name)
    pairs: List[Tuple[str, str]] = []
    for prec in (["fp16", "bf16"] if cuda else ["bf16"]):
        if prec in allowed:
            pairs.append(("torch", prec))
    pairs += [("onnx", "fp32"), ("torch", "fp32")]
    if engine != "auto":
        pairs = [p for p in pairs if p[0] == engine]
    if precision != "auto":
        pairs = [p for p in pairs if p[1] == precision] or [(engine if engine != "auto" else "torch", precision)]
    return pairs


@dataclass(frozen=True)
class Probe:
    """How ``auto`` chose: the search-branch milliseconds of every candidate it timed, and whether
    they were measured by an earlier start on this machine (:mod:`.startup_cache`)."""

    ms: Dict[str, float]
    remembered: bool


def make_engine(model: Any, **options: Any):
    """The engine :func:`choose_engine` chooses, without how it chose."""
    return choose_engine(model, **options)[0]


def choose_engine(
    model: Any,
    engine: str = "auto",
    precision: str = "auto",
    device: Optional[str] = None,
    threads: Optional[int] = None,
    cuda_graphs: bool = False,
    probe_runs: int = 5,
    instance_size: Optional[int] = None,
    compile: bool = False,
) -> Tuple[Any, Optional[Probe]]:
    """An engine for ``model`` (a :class:`NetworkSource`, or a ready
    :class:`~siamcli.models.base.SiameseModel`, never cached: it has no weights file), and the
    :class:`Probe` that chose it (None when nothing was left to choose).

    ``engine``: auto | torch | onnx; ``precision``: auto | fp32 | bf16 | fp16;
    ``device``: auto/None, cpu, cuda (torch), or tensorrt (onnx); ``threads``:
    intra-op threads; ``instance_size``: search patch side for the probe and the
    export (default: the source's). ONNX files run through :func:`onnx_engine_from_files`.

    ``compile`` (torch engine only) compiles the search branch; with it ``auto`` picks the torch
    engine without a timing probe (a probe would compile every candidate first).

    With ``auto``, every verified candidate is built and timed (``probe_runs`` search calls)
    and the fastest is returned.
    """
    if engine not in ENGINES:
        raise SiamcliError(f"unknown engine {quoted(engine)}; use one of {', '.join(ENGINES)}")
    check_device(device)
    if precision not in PRECISIONS:
        raise SiamcliError(f"unknown precision {quoted(precision)}; use one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        raise SiamcliError(INT8_FILES)
    if compile and engine == "onnx":
        raise SiamcliError("--compile applies to the torch engine; drop it, or drop --onnx / --engine onnx")
    if cuda_graphs:
        # asked for explicitly: say why it cannot be had, rather than let ``auto`` drop every torch
        # candidate and quietly run onnxruntime
        if engine == "onnx":
            raise SiamcliError("--cuda-graphs applies to the torch engine; drop it, or drop --engine onnx / --onnx")
        if device in ("cpu", "tensorrt") or (device in (None, "auto") and not _cuda_available()):
            raise SiamcliError("CUDA graphs need a CUDA GPU (torch finds none here, or --device is not cuda); "
                               "drop --cuda-graphs")
    source = _resolve_model(model)
    name = source.name
    instance_size = instance_size or source.instance_size
    pairs = candidates("torch" if compile else engine, precision, name, device)
    if compile:
        pairs = pairs[:1]
    torch_device = None if device == "tensorrt" else device

    def build(kind: str, prec: str, compiled: bool = False):
        return _build(kind, prec, source, device if kind == "onnx" else torch_device, threads,
                      cuda_graphs and kind == "torch", instance_size, compiled)

    if len(pairs) == 1:
        return build(*pairs[0], compile), None
    choice_key = startup_cache.machine_key(name, pairs, device, threads, instance_size) if name else None
    remembered = startup_cache.load_choice(choice_key) if choice_key else None
    if remembered is not None:
        kind, _, prec = remembered["choice"].partition("-")
        if (kind, prec) in pairs:
            try:
                chosen = build(kind, prec)
            except SiamcliError:
                chosen = None  # e.g. a GPU gone since: measure again
            if chosen is not None:
                return chosen, Probe(dict(remembered.get("probe_ms") or {}), True)
    source.network()  # the checkpoint's own errors surface here, not as "no engine could be built"
    timings: Dict[str, float] = {}
    best, best_name, best_time = None, None, float("inf")
    refusals: List[SiamcliError] = []
    for kind, prec in pairs:
        try:
            built = build(kind, prec)
        except SiamcliError as exc:
            refusals.append(exc)
            continue  # e.g. no CUDA provider in this onnxruntime
        seconds = probe_speed(built, instance_size=instance_size, runs=probe_runs)
        timings[f"{kind}-{prec}"] = round(seconds * 1000, 3)
        if seconds < best_time:
            best, best_name, best_time = built, f"{kind}-{prec}", seconds
    if best is None:  # every candidate refused: the device is the usual cause, and each refusal names it
        raise refusals[-1] if refusals else SiamcliError("no engine could be built for this model and device")
    if choice_key:
        startup_cache.save_choice(choice_key, best_name, timings, name, threads, device)
    return best, Probe(timings, False)
