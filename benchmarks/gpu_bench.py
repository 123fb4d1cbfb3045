"""Everything a lent GPU machine is used for, in one process (imports, CUDA start and
cuDNN set-up paid once; fits well inside one 10-minute call):

1. ``siamcli bench``'s loop (:func:`siamcli.bench.run_tracker`) for every model, from decoded
   frames (the sequence is decoded into memory first), one target, in several torch forms:
   fp32 and fp16 + CUDA graphs with the crop on the host and on the GPU
   (:mod:`siamcli.engines.device_crop`, the CUDA default), fp16 with and without its
   defaults (BatchNorms folded, channels-last memory), and with cuDNN's autotuner on;
   the best candidate picked on the GPU or on the host (the default picks on the GPU for score
   maps of 1000 candidates and more); with CUDA graphs, also the GPU time of one graph replay;
2. mean IoU on the real sequences of the real-weights models (the bundled ones, NanoTrack
   v2) with the crop on the host and on the GPU, fp32 and fp16 + graphs;
3. several targets at once (alex, 1/2/4/8 targets, fp16 + graphs, crop on the GPU);
4. onnxruntime's CUDA / TensorRT providers and TensorRT itself, where installed.

    python -m benchmarks.gpu_bench --data DATA --out OUT [--device cuda] [--frames N] [--models a,b]

DATA holds ``seqs/`` (the five annotated sequences) and ``nanotrackv2.pth``. Zoo models get
random weights of the published shapes (their checkpoints cannot be downloaded here; speed
does not depend on the values). Writes ``OUT/gpu_bench.json`` after every step and prints
a summary table last. ``--device cpu`` runs the same script on a CPU (fp32 rows only), to
check it before a GPU is lent.
"""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

import click
import cv2
import numpy as np
import torch

from benchmarks.bench_targets import shifted_boxes
from siamcli.bench import run_tracker
from siamcli.bundled import bundled_weights
from siamcli.catalog import get_spec, load_network
from siamcli.engines.torch_engine import TorchEngine
from siamcli.eval.datasets import find_sequences
from siamcli.eval.metrics import score_sequence
from siamcli.tracking.multi import MultiTracker
from siamcli.tracking.tracker import SiameseTracker
from tools.random_weights import write_random_weights

MODELS = ("siamrpnban", "siamrpn", "siamban", "nanotrack_v2", "siamrpn_alex_dwxcorr", "siamrpn_mobilev2_l234_dwxcorr",
          "siamrpn_r50_l234_dwxcorr", "siamban_r50_l234")
REAL_WEIGHTS = ("siamrpnban", "siamrpn", "siamban", "nanotrack_v2")
# name -> TorchEngine options (device added); rows run in this order for each model. fp16 is a
# half copy of the network, by default with its BatchNorms folded and in channels-last memory
VARIANTS = {
    "fp32 host crop": dict(precision="fp32", device_crop=False),
    "fp32": dict(precision="fp32"),
    "fp16 graphs host crop": dict(precision="fp16", cuda_graphs=True, device_crop=False),
    "fp16 graphs": dict(precision="fp16", cuda_graphs=True),
    "fp16 graphs NCHW": dict(precision="fp16", cuda_graphs=True, channels_last=False),
    "fp16 graphs unfolded": dict(precision="fp16", cuda_graphs=True, fold_bn=False),
    "fp16 graphs unfolded NCHW": dict(precision="fp16", cuda_graphs=True, fold_bn=False, channels_last=False),
    "fp32 graphs": dict(precision="fp32", cuda_graphs=True),
    "fp32 graphs folded": dict(precision="fp32", cuda_graphs=True, fold_bn=True),
}
CPU_VARIANTS = ("fp32 host crop", "fp32")


def weights_for(model: str, data: Path, scratch: Path) -> Path:
    spec = get_spec(model)
    if spec.bundled:
        return bundled_weights(spec.bundled)
    if model == "nanotrack_v2":
        return data / "nanotrackv2.pth"
    path = scratch / f"{model}.pth"
    return path if path.exists() else write_random_weights(model, path)


def spec_and_network(model: str, weights: Path):
    spec = get_spec(model)
    return spec, load_network(spec, weights)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_row(model, name, options, network, spec, frames, box, warmup, rows) -> None:
    """One timed run of ``siamcli bench``'s loop with a TorchEngine of ``options``, into ``rows[name]``."""
    try:
        engine = TorchEngine(network, **options)
        run = run_tracker(SiameseTracker(engine, spec.params), lambda: iter(frames), box, warmup)
        sync(options["device"])
        run.pop("boxes")
        if options.get("cuda_graphs"):  # the GPU's own time per frame, without the host around it
            run["graph_replay_ms"] = engine.graph_replay_ms()
        rows[name] = run
        print(f"{model:32s} {name:24s} network {run['stages_ms']['network']:7.3f} ms  "
              f"total {run['stages_ms']['total']:7.3f} ms  {run['fps']:8.1f} fps "
              f"{run.get('graph_replay_ms', '')}", flush=True)
    except Exception as exc:  # noqa: BLE001 - one row's failure must not stop the run
        rows[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
        print(f"{model} {name} FAILED: {exc}", flush=True)


def bench_rows(models, variants, device, frames, box, warmup, data, scratch, results, save, cudnn_row):
    for model in models:
        try:
            spec, network = spec_and_network(model, weights_for(model, data, scratch))
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the run
            results["bench"][model] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        rows = results["bench"].setdefault(model, {})
        for name in variants:
            bench_row(model, name, dict(VARIANTS[name], device=device), network, spec, frames, box, warmup, rows)
        if cudnn_row:  # cuDNN's autotuner: a process-wide switch, so its own row, last
            torch.backends.cudnn.benchmark = True
            try:
                bench_row(model, "fp16 graphs cudnn.benchmark", dict(VARIANTS["fp16 graphs"], device=device),
                          network, spec, frames, box, warmup, rows)
            finally:
                torch.backends.cudnn.benchmark = False
        del network
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        save()


def accuracy(models, variants, device, sequences, data, scratch, results, save):
    for model in models:
        spec, network = spec_and_network(model, weights_for(model, data, scratch))
        for name in variants:
            engine = TorchEngine(network, **dict(VARIANTS[name], device=device))
            per_seq, boxes_by_seq = {}, {}
            t0 = time.perf_counter()
            for seq_name, (images, gt) in sequences.items():
                tracker = SiameseTracker(engine, spec.params)
                tracker.init(images[0], gt[0])
                boxes = [gt[0]] + [tracker.update(f).box for f in images[1:]]
                boxes_by_seq[seq_name] = np.asarray(boxes, dtype=np.float64)
                per_seq[seq_name] = round(score_sequence(boxes_by_seq[seq_name], gt)["mean_iou"], 4)
            row = {"mean_iou": round(float(np.mean(list(per_seq.values()))), 4), "sequences": per_seq,
                   "seconds": round(time.perf_counter() - t0, 1)}
            reference = results["accuracy"].get(model, {}).get(variants[0], {}).get("_boxes")
            if reference is not None:  # box difference from the first variant (the host crop, fp32)
                diff = np.concatenate([np.abs(boxes_by_seq[s] - reference[s]).max(1) for s in per_seq])
                row["px_vs_first"] = {"median": round(float(np.median(diff)), 3), "max": round(float(diff.max()), 2)}
            row["_boxes"] = boxes_by_seq
            results["accuracy"].setdefault(model, {})[name] = row
            print(f"accuracy {model:14s} {name:24s} mean IoU {row['mean_iou']:.4f} {row.get('px_vs_first', '')}",
                  flush=True)
        save()


def several_targets(device, frames, box, data, scratch, results, save, counts=(1, 2, 4, 8)):
    model = "siamrpn_alex_dwxcorr"
    spec, network = spec_and_network(model, weights_for(model, data, scratch))
    name = "fp16 graphs" if device.startswith("cuda") else "fp32"
    engine = TorchEngine(network, **dict(VARIANTS[name], device=device))
    trackers = {}
    for n in counts:
        trackers[n] = MultiTracker(engine, spec.params)
        trackers[n].init(frames[0], shifted_boxes(box, n, frames[0].shape))
        trackers[n].update(frames[1])  # records this batch size's graph
    times = {n: [] for n in counts}
    for frame in frames[2:]:
        for n in counts:  # alternating, so a slow spell hits every count alike
            t0 = time.perf_counter()
            trackers[n].update(frame)
            times[n].append((time.perf_counter() - t0) * 1000)
    med = {n: float(np.median(t)) for n, t in times.items()}
    results["targets"] = {"model": model, "engine": engine.name,
                          "ms": {str(n): round(m, 3) for n, m in med.items()},
                          "ratio": {str(n): round(m / med[counts[0]], 2) for n, m in med.items()}}
    print("several targets", results["targets"], flush=True)
    save()


def runtimes() -> dict:
    info = {"torch": torch.__version__, "opencv": cv2.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError as exc:
        info["onnxruntime"] = f"not installed ({exc})"
    try:
        import tensorrt  # noqa: F401

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = "not installed"
    return info


def summary(results) -> str:
    lines = ["| model | run | crop | network | post | total ms | e2e fps |", "|---|---|---|---|---|---|---|"]
    for model, rows in results["bench"].items():
        for name, run in rows.items():
            if "error" in run:
                lines.append(f"| {model} | {name} | failed: {run['error'][:80]} | | | | |")
                continue
            s = run["stages_ms"]
            lines.append(f"| {model} | {name} | {s.get('crop', 0):.3f} | {s['network']:.3f} | {s.get('post', 0):.3f} "
                         f"| {s['total']:.3f} | {run['fps']:.1f} |")
    return "\n".join(lines)


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--frames", default=0, help="Frames of the bench sequence (0: all of it).")
@click.option("--seq", default="vot16_bag", show_default=True, help="Bench sequence (a folder of DATA/seqs).")
@click.option("--models", default=",".join(MODELS), show_default=True)
@click.option("--steps", default="bench,accuracy,targets", show_default=True)
@click.option("--warmup", default=5, show_default=True)
@click.option("--variants", default=None, help="Comma-separated bench rows (default: all; on a CPU the fp32 ones).")
@click.option("--accuracy-variants", default="fp32 host crop,fp32,fp16 graphs", show_default=True)
@click.option("--cudnn-row/--no-cudnn-row", default=True, show_default=True,
              help="A last row per model with cuDNN's autotuner on (CUDA).")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path), default="/tmp/siamcli_gpu_weights",
              show_default=True, help="Where the zoo models' random weights are written (kept out of OUT).")
def main(data, out, device, frames, seq, models, steps, warmup, scratch, variants, accuracy_variants, cudnn_row):
    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    cuda = device.startswith("cuda")
    if variants:
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    else:
        variants = list(VARIANTS) if cuda else list(CPU_VARIANTS)
    results = {"runtimes": runtimes(), "device": device, "bench": {}, "accuracy": {}}
    print(json.dumps(results["runtimes"]), flush=True)

    def save():
        clean = json.loads(json.dumps(results, default=lambda o: None))  # drops the boxes kept for comparison
        for rows in clean["accuracy"].values():
            for row in rows.values():
                row.pop("_boxes", None)
        (out / "gpu_bench.json").write_text(json.dumps(clean, indent=1) + "\n")

    sequences = {}
    for sequence in find_sequences(data / "seqs"):
        images = [cv2.imread(str(p)) for p in sequence.frames]
        sequences[sequence.name] = (images, np.asarray(sequence.groundtruth, dtype=np.float64))
    images, gt = sequences[seq]
    images = images[:frames] if frames else images
    chosen = [m.strip() for m in models.split(",") if m.strip()]
    todo = steps.split(",")
    started = time.perf_counter()
    if "bench" in todo:
        bench_rows(chosen, variants, device, images, gt[0], warmup, data, scratch, results, save,
                   cudnn_row and cuda)
    if "accuracy" in todo:
        acc_variants = [v.strip() for v in accuracy_variants.split(",")] if cuda else list(CPU_VARIANTS)
        try:
            accuracy([m for m in chosen if m in REAL_WEIGHTS], acc_variants, device, sequences, data, scratch,
                     results, save)
        except Exception as exc:  # noqa: BLE001
            results["accuracy"]["error"] = traceback.format_exc()[-2000:]
            print("accuracy FAILED", exc, flush=True)
    if "targets" in todo:
        try:
            several_targets(device, images, gt[0], data, scratch, results, save)
        except Exception as exc:  # noqa: BLE001
            results["targets"] = {"error": traceback.format_exc()[-2000:]}
            print("several targets FAILED", exc, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    save()
    print(summary(results))


if __name__ == "__main__":
    main()
