#!/usr/bin/env python
"""Choose a model's tracker settings (lr, aspect lr, penalty_k, window influence) on synthetic sequences.

    .venv/bin/python scripts/tune_tracker.py siamban --weights weights/siamban.pth

The sequences (siamcli.training.synthetic) are made from the training sources
with seeds that training never uses, so the real benchmark sequences in
../shared/data/seqs stay untouched by the choice. Prints the mean IoU of every
setting of the grid, best last, and can write them as JSON.
"""
from __future__ import annotations

import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siamcli.api import create_tracker  # noqa: E402
from siamcli.eval.metrics import iou  # noqa: E402
from siamcli.frame_loop import track_frames  # noqa: E402
from siamcli.tracking.tracker import SiameseTracker  # noqa: E402
from siamcli.training.data import default_source_paths, load_sources  # noqa: E402
from siamcli.training.synthetic import synthetic_sequence  # noqa: E402

#: seeds of the synthetic sequences; the trainer's pair samplers use seed * 100003 + chunk
SEED_BASE = 7_000_000


def mean_iou(tracker: SiameseTracker, frames, gt) -> float:
    boxes = [result.box for _, _, result in track_frames(tracker, frames, gt[0])]
    return float(np.mean(iou(np.array(boxes), gt)))


@click.command()
@click.argument("model")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), help="Default: the bundled weights.")
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), default=ROOT.parent / "shared",
              show_default=True)
@click.option("--sequences", default=16, show_default=True)
@click.option("--length", default=80, show_default=True)
@click.option("--lr", "lrs", default="0.2,0.3,0.4,0.5", show_default=True)
@click.option("--penalty", "penalties", default="0.05,0.15,0.3", show_default=True)
@click.option("--window", "windows", default="0.3,0.4,0.5", show_default=True)
@click.option("--aspect-lr", "aspect_lrs", default=None,
              help="Aspect learning rates to try, comma-separated; 'none' moves width and height by lr "
                   "(the reference trackers). Default: the model's own.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
def main(model, weights, shared, sequences, length, lrs, penalties, windows, aspect_lrs, json_path):
    """Grid-search MODEL's tracker settings on synthetic sequences."""
    sources = load_sources(default_source_paths(shared))
    seqs = [synthetic_sequence(sources, SEED_BASE + i, length) for i in range(sequences)]
    base, spec = create_tracker(model=model, weights=weights, engine="onnx")
    results = []
    aspects = ([spec.params.aspect_lr] if aspect_lrs is None else
               [None if v.strip().lower() == "none" else float(v) for v in aspect_lrs.split(",")])
    grid = list(itertools.product([float(v) for v in lrs.split(",")], aspects,
                                  [float(v) for v in penalties.split(",")], [float(v) for v in windows.split(",")]))
    for lr, aspect_lr, penalty, window in grid:
        params = replace(spec.params, lr=lr, aspect_lr=aspect_lr, penalty_k=penalty, window_influence=window)
        tracker = SiameseTracker(base.engine, params)
        score = float(np.mean([mean_iou(tracker, frames, gt) for frames, gt in seqs]))
        results.append({"lr": lr, "aspect_lr": aspect_lr, "penalty_k": penalty, "window_influence": window,
                        "mean_iou": round(score, 4)})
        click.echo(f"lr {lr:<5} aspect_lr {str(aspect_lr):<5} penalty_k {penalty:<5} window {window:<5} "
                   f"mean IoU {score:.4f}")
    results.sort(key=lambda r: r["mean_iou"])
    current = {"lr": spec.params.lr, "aspect_lr": spec.params.aspect_lr, "penalty_k": spec.params.penalty_k,
               "window_influence": spec.params.window_influence}
    click.echo(f"best: {results[-1]}  (catalog now: {current})")
    if json_path:
        Path(json_path).write_text(json.dumps({"model": model, "sequences": sequences, "length": length,
                                               "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
