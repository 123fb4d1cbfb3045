"""Per-frame time of several targets tracked in one batched network call (MultiTracker).

    .venv/bin/python -m benchmarks.bench_targets [--model siamrpn_alex_dwxcorr] [--weights W]
        [--seq ../shared/data/seqs/vot16_bag] [--frames 30] [--targets 1,2,4,8] [--compile] [--json OUT]

Targets are the sequence's first box shifted around the frame, so every one has
its own search crop and template. For each torch engine (fp32 with BatchNorms folded
and channels-last; bf16 channels-last) every target count runs over the same frames
(decoded beforehand) and the median ms per frame and its ratio to one target are
printed. Counts alternate frame by frame, so a slow spell of a shared machine hits all alike.
With ``--compile`` the search branch is compiled (each new batch size compiles during the warm-up frame).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from siamcli.catalog import get_spec, load_network  # noqa: E402
from siamcli.engines.torch_engine import TorchEngine  # noqa: E402
from siamcli.eval.datasets import load_sequence  # noqa: E402
from siamcli.tracking.multi import MultiTracker  # noqa: E402
from tools import SHARED  # noqa: E402


def shifted_boxes(box, count: int, shape) -> list:
    """``count`` copies of ``box`` spread over the frame (kept inside it)."""
    x, y, w, h = box
    height, width = shape[:2]
    out = []
    for i in range(count):
        dx = (i % 4) * width / 5 - width / 3
        dy = (i // 4) * height / 4 - height / 8
        out.append((float(np.clip(x + dx, 0, width - w)), float(np.clip(y + dy, 0, height - h)), w, h))
    return out


@click.command()
@click.option("--model", default="siamrpn_alex_dwxcorr", show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=SHARED / "reference" / "parity" / "siamrpn_alex_dwxcorr_random.pth",
              show_default=True)
@click.option("--seq", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SHARED / "data" / "seqs" / "vot16_bag", show_default=True)
@click.option("--frames", default=30, show_default=True)
@click.option("--targets", default="1,2,4,8", show_default=True)
@click.option("--precisions", default="fp32,bf16", show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--compile", "compile_", is_flag=True, help="Compile the search branch (torch.compile).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(model, weights, seq, frames, targets, precisions, threads, compile_, json_out):
    torch.set_num_threads(threads)
    spec = get_spec(model)
    network = load_network(spec, weights)
    sequence = load_sequence(seq)
    images = [cv2.imread(str(p)) for p in sequence.frames[: frames + 1]]
    counts = [int(c) for c in targets.split(",")]
    results = {}
    for precision in precisions.split(","):
        # fp32 with BNs folded and channels-last (its fastest torch form), bf16 channels-last (the default)
        extra = dict(fold_bn=True, channels_last=True) if precision == "fp32" else {}
        engine = TorchEngine(network, device="cpu", precision=precision, compile=compile_, **extra)
        trackers = {}
        for n in counts:
            trackers[n] = MultiTracker(engine, spec.params)
            trackers[n].init(images[0], shifted_boxes(sequence.groundtruth[0], n, images[0].shape))
            trackers[n].update(images[1])  # warm-up for this batch size
        times = {n: [] for n in counts}
        for frame in images[2:]:
            for n in counts:
                t0 = time.perf_counter()
                trackers[n].update(frame)
                times[n].append((time.perf_counter() - t0) * 1000)
        med = {n: float(np.median(t)) for n, t in times.items()}
        results[engine.name] = {str(n): {"median_ms": round(m, 2), "ratio": round(m / med[counts[0]], 2)}
                                for n, m in med.items()}
        click.echo(f"{engine.name}: " + ", ".join(f"{n} targets {m:.1f} ms ({m / med[counts[0]]:.2f}x)"
                                                  for n, m in med.items()))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": model, "sequence": sequence.name, "frames": len(images) - 2,
                                        "threads": threads, "engines": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
