"""Per-frame network time of each engine, interleaved in one process (medians), and
end-to-end fps of the tracker per engine on one sequence.

    .venv/bin/python -m benchmarks.bench_engines [--rounds 5] [--json out.json]
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
import cv2
import numpy as np

from siamcli.bench import bench
from siamcli.catalog import get_spec, load_network
from siamcli.engines.onnx_engine import OnnxEngine
from siamcli.engines.torch_engine import TorchEngine
from siamcli.eval.datasets import load_sequence
from siamcli.export import export_onnx_bytes
from siamcli.tracking.crop import CROPS, channel_mean, context_size
from tools import SHARED

MODELS = {
    "nanotrack_v2": SHARED / "data/weights/nanotrack/v2/nanotrackv2.pth",
    "siamrpn_alex_dwxcorr": SHARED / "reference/parity/siamrpn_alex_dwxcorr_random.pth",
}
CONFIGS = [("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32")]


def crops(seq: Path, params, frame: int = 10):
    """The template crop of the first frame's box and a search crop of a later frame, as the tracker
    cuts them (frame ``frame`` searched around the first box)."""
    sequence = load_sequence(seq)
    first, later = cv2.imread(str(sequence.frames[0])), cv2.imread(str(sequence.frames[frame]))
    x, y, w, h = sequence.groundtruth[0]
    center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
    side = context_size(w, h, params.context_amount)
    fill = channel_mean(first)
    crop = CROPS[params.crop]
    z = crop(first, center, params.exemplar_size, round(side), fill)
    x_patch = crop(later, center, params.instance_size, round(side * params.instance_size / params.exemplar_size),
                   fill)
    return z, x_patch


def network_ms(name: str, weights: Path, seq: Path, rounds: int, calls: int = 10):
    spec = get_spec(name)
    net = load_network(spec, weights)
    size = spec.params.instance_size
    z, x = crops(seq, spec.params)
    engines = {"torch-fp32": TorchEngine(net, device="cpu", threads=2),
               "torch-bf16": TorchEngine(net, device="cpu", precision="bf16", threads=2),
               "onnx-fp32": OnnxEngine(*export_onnx_bytes(net, instance_size=size), device="cpu", threads=2)}
    zfs = {k: e.template(z) for k, e in engines.items()}
    times = {k: [] for k in engines}
    for _ in range(rounds):  # interleaved so that machine noise hits every engine alike
        for k, e in engines.items():
            e.track(x, zfs[k])
            for _ in range(calls):
                t0 = time.perf_counter()
                e.track(x, zfs[k])
                times[k].append(time.perf_counter() - t0)
    return {k: round(float(np.median(v)) * 1000, 2) for k, v in times.items()}


@click.command()
@click.option("--rounds", default=5, show_default=True)
@click.option("--seq", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SHARED / "data/seqs/otb_Crossing", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path))
def main(rounds, seq, json_out) -> None:
    out = {}
    for name, weights in MODELS.items():
        out[name] = {"network_ms": network_ms(name, weights, seq, rounds), "e2e": {}}
        for i, (eng, prec) in enumerate(CONFIGS):
            r = bench(name, seq, weights=weights, engine=eng, precision=prec, device="cpu", threads=2,
                      baseline=(i == 0))
            out[name]["e2e"][f"{eng}-{prec}"] = {"fps": r["fps"], "stages_ms": r["stages_ms"],
                                                 "mean_iou": r.get("mean_iou")}
            if "baseline" in r:
                out[name]["e2e"]["baseline"] = {k: r["baseline"].get(k) for k in ("name", "fps", "stages_ms",
                                                                                 "mean_iou")}
        click.echo(json.dumps({name: out[name]}, indent=1))
    if json_out:
        json_out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
