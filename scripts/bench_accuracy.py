#!/usr/bin/env python
"""Check that reduced precision / other runtimes track as well as fp32, and record it.

Runs the tracker over every sequence in a folder (default ../shared/data/seqs)
once per engine configuration and writes the per-sequence and mean IoU into
siamcli/engines/accuracy.json, which `make_engine(..., precision="auto")`
reads: a reduced precision is offered automatically only if its mean IoU is
within ACCURACY_TOLERANCE (0.01) of fp32's.

    .venv/bin/python scripts/bench_accuracy.py nanotrack_v2 \
        --weights ../shared/data/weights/nanotrack/v2/nanotrackv2.pth
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamcli.api import create_tracker  # noqa: E402
from siamcli.engines.factory import ACCURACY_FILE, ACCURACY_TOLERANCE  # noqa: E402
from siamcli.eval.datasets import find_sequences  # noqa: E402
from siamcli.eval.runner import summarise, track_sequence  # noqa: E402


def run(model, weights, seqs, engine, precision, device, onnx_files=None):
    tracker, _ = create_tracker(model=model, weights=weights, engine=engine, precision=precision,
                                device=device, onnx_files=onnx_files)
    results = [track_sequence(tracker, s) for s in seqs]
    overall = summarise(results)
    return {"engine": tracker.engine.name, "mean_iou": round(overall["mean_iou"], 4),
            "success_auc": round(overall["success_auc"], 4), "fps": round(overall["fps"], 1),
            "sequences": {r.name: round(r.metrics["mean_iou"], 4) for r in results}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--seqs", default=str(ROOT.parent / "shared" / "data" / "seqs"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="bf16", help="comma list of reduced precisions to check (bf16, fp16)")
    ap.add_argument("--onnx-pair", nargs=2, metavar=("BACKBONE", "HEAD"), help="also check an ONNX pair")
    ap.add_argument("--out", default=str(ACCURACY_FILE))
    args = ap.parse_args()
    seqs = find_sequences(args.seqs)
    entry = {"fp32": run(args.model, args.weights, seqs, "torch", "fp32", args.device)}
    entry["onnx"] = run(args.model, args.weights, seqs, "onnx", "fp32", args.device)
    if args.onnx_pair:
        entry["onnx_pair"] = run(args.model, None, seqs, "onnx", "fp32", args.device, args.onnx_pair)
    for prec in filter(None, args.precisions.split(",")):
        entry[prec] = run(args.model, args.weights, seqs, "torch", prec, args.device)
    base = entry["fp32"]["mean_iou"]
    for key, val in entry.items():
        val["delta_vs_fp32"] = round(val["mean_iou"] - base, 4)
        val["within_tolerance"] = base - val["mean_iou"] <= ACCURACY_TOLERANCE
    entry["_protocol"] = (f"mean IoU over {len(seqs)} sequences in {args.seqs} (OTB: init on first frame), "
                          f"device {args.device}, {platform.processor() or platform.machine()}; "
                          f"tolerance {ACCURACY_TOLERANCE}")
    out = Path(args.out)
    table = json.loads(out.read_text()) if out.is_file() else {}
    # entries measured elsewhere (e.g. CUDA ones from a GPU machine) are kept
    table[args.model] = {**table.get(args.model, {}), **entry}
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
