"""Where a frame's GPU time goes: ``torch.profiler`` over eager tracker updates (the same kernels
a CUDA graph replays), per model, the kernels grouped by operator.

    python -m benchmarks.gpu_profile --data DATA --out OUT [--models a,b] [--precision fp16] [--frames 20]

DATA as for ``benchmarks/gpu_bench.py``. Prints, per model, the summed CUDA kernel time per frame
and the operators that take most of it; writes ``OUT/profile-MODEL.txt``.
"""
from __future__ import annotations

from pathlib import Path

import click
import cv2
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.gpu_bench import weights_for
from siamcli.catalog import get_spec, load_network
from siamcli.engines.torch_engine import TorchEngine
from siamcli.eval.datasets import load_sequence
from siamcli.tracking.tracker import SiameseTracker


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--models", default="siamrpn_alex_dwxcorr,siamban_r50_l234,siamrpn", show_default=True)
@click.option("--precision", default="fp16", show_default=True)
@click.option("--frames", default=20, show_default=True)
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path), default="/tmp/siamcli_gpu_weights")
def main(data, out, models, precision, frames, scratch):
    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    seq = load_sequence(data / "seqs" / "vot16_bag")
    images = [cv2.imread(str(p)) for p in seq.frames[: frames + 6]]
    for model in models.split(","):
        spec = get_spec(model)
        network = load_network(spec, weights_for(model, data, scratch))
        tracker = SiameseTracker(TorchEngine(network, device="cuda", precision=precision), spec.params)
        tracker.init(images[0], seq.groundtruth[0])
        for frame in images[1:6]:
            tracker.update(frame)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for frame in images[6:]:
                tracker.update(frame)
            torch.cuda.synchronize()
        events = prof.key_averages()
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        kernel_us = sum(e.self_device_time_total for e in kernels) / frames
        table = events.table(sort_by="self_device_time_total", row_limit=30)
        (out / f"profile-{model}.txt").write_text(f"{model} {precision}: {kernel_us:.1f} us of kernels per frame\n"
                                                  + table + "\n")
        print(f"== {model} {precision}: {kernel_us:.1f} us of CUDA kernels per frame")
        print(f"   {sum(e.count for e in kernels) / frames:.0f} kernels per frame")
        rows = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:14]
        for e in rows:
            print(f"   {e.key[:90]:90s} {e.self_device_time_total / frames:8.1f} us/frame  calls/frame "
                  f"{e.count / frames:5.1f}")


if __name__ == "__main__":
    main()
