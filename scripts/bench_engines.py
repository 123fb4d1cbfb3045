#!/usr/bin/env python
"""Per-frame network time of each engine, interleaved in one process (medians), and
end-to-end fps of the tracker per engine on one sequence.

    .venv/bin/python scripts/bench_engines.py [--rounds 5] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from siamcli.catalog import build_network  # noqa: E402
from siamcli.bench import bench  # noqa: E402
from siamcli.catalog import get_spec  # noqa: E402
from siamcli.engines.onnx_engine import OnnxEngine  # noqa: E402
from siamcli.engines.torch_engine import TorchEngine  # noqa: E402
from siamcli.export import export_onnx_bytes  # noqa: E402
from siamcli.models.checkpoint import load_weights  # noqa: E402

SHARED = ROOT.parent / "shared"
MODELS = {
    "nanotrack_v2": SHARED / "data/weights/nanotrack/v2/nanotrackv2.pth",
    "siamrpn_alex_dwxcorr": SHARED / "reference/parity/siamrpn_alex_dwxcorr_random.pth",
}
CONFIGS = [("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32")]


def network_ms(name: str, weights: Path, rounds: int, calls: int = 10):
    from test_export import real_crops

    spec = get_spec(name)
    net = build_network(spec, weights)
    load_weights(net, weights, name)
    size = spec.params.instance_size
    z, x = real_crops(size)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seq", default=str(SHARED / "data/seqs/otb_Crossing"))
    ap.add_argument("--json")
    args = ap.parse_args()
    out = {}
    for name, weights in MODELS.items():
        out[name] = {"network_ms": network_ms(name, weights, args.rounds), "e2e": {}}
        for i, (eng, prec) in enumerate(CONFIGS):
            r = bench(name, args.seq, weights=weights, engine=eng, precision=prec, device="cpu", threads=2,
                      baseline=(i == 0))
            out[name]["e2e"][f"{eng}-{prec}"] = {"fps": r["fps"], "stages_ms": r["stages_ms"], "mean_iou": r.get("mean_iou")}
            if "baseline" in r:
                out[name]["e2e"]["baseline"] = {k: r["baseline"].get(k) for k in ("name", "fps", "stages_ms", "mean_iou")}
        print(json.dumps({name: out[name]}, indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
