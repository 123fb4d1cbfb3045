"""Check that reduced precisions and other runtimes track as well as fp32, and record it.

Runs the tracker over every sequence in a folder (default ../shared/data/seqs)
once per engine configuration and writes the per-sequence and mean IoU into
siamcli/engines/accuracy.json, which `make_engine(..., precision="auto")`
reads: a reduced precision is offered automatically only if its mean IoU is
within ACCURACY_TOLERANCE (0.01) of fp32's.

    .venv/bin/python -m tools.accuracy_table nanotrack_v2 \
        --weights ../shared/data/weights/nanotrack/v2/nanotrackv2.pth
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import click

from siamcli.api import create_tracker
from siamcli.engines.factory import ACCURACY_FILE, ACCURACY_TOLERANCE
from siamcli.eval.datasets import find_sequences
from siamcli.eval.runner import summarise, track_sequence
from tools import SHARED


def run(model, weights, seqs, engine, precision, device, onnx_files=None) -> dict:
    """Mean IoU, success AUC and fps of one engine configuration over ``seqs``, and per sequence."""
    tracker, _ = create_tracker(model=model, weights=weights, engine=engine, precision=precision,
                                device=device, onnx_files=onnx_files)
    results = [track_sequence(tracker, s) for s in seqs]
    overall = summarise(results)
    return {"engine": tracker.engine.name, "mean_iou": round(overall["mean_iou"], 4),
            "success_auc": round(overall["success_auc"], 4), "fps": round(overall["fps"], 1),
            "sequences": {r.name: round(r.metrics["mean_iou"], 4) for r in results}}


@click.command(help=__doc__)
@click.argument("model")
@click.option("--weights", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--seqs", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=SHARED / "data" / "seqs", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--precisions", default="bf16", show_default=True,
              help="Comma-separated reduced precisions to check (bf16, fp16).")
@click.option("--onnx-pair", nargs=2, metavar="BACKBONE HEAD", type=click.Path(exists=True, dir_okay=False),
              help="Also check an ONNX pair.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=ACCURACY_FILE, show_default=True)
def main(model, weights, seqs, device, precisions, onnx_pair, out) -> None:
    sequences = find_sequences(seqs)
    entry = {"fp32": run(model, weights, sequences, "torch", "fp32", device)}
    entry["onnx"] = run(model, weights, sequences, "onnx", "fp32", device)
    if onnx_pair:
        entry["onnx_pair"] = run(model, None, sequences, "onnx", "fp32", device, onnx_pair)
    for precision in filter(None, precisions.split(",")):
        entry[precision] = run(model, weights, sequences, "torch", precision, device)
    base = entry["fp32"]["mean_iou"]
    for value in entry.values():
        value["delta_vs_fp32"] = round(value["mean_iou"] - base, 4)
        value["within_tolerance"] = base - value["mean_iou"] <= ACCURACY_TOLERANCE
    entry["_protocol"] = (f"mean IoU over {len(sequences)} sequences in {seqs} (OTB: init on first frame), "
                          f"device {device}, {platform.processor() or platform.machine()}; "
                          f"tolerance {ACCURACY_TOLERANCE}")
    table = json.loads(out.read_text()) if out.is_file() else {}
    # entries measured elsewhere (e.g. CUDA ones from a GPU machine) are kept
    table[model] = {**table.get(model, {}), **entry}
    out.write_text(json.dumps(table, indent=1) + "\n")
    click.echo(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
