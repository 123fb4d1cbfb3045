"""Choose a model's tracker settings by tracking annotated sequences (a grid search).

    .venv/bin/python -m tools.tune_tracker siamrpnban --starts 3 --json grid.json

As the pysot authors tune on a validation benchmark: every combination of the
listed learning rates (lr, aspect lr), scale/ratio penalties, cosine-window
influences and search-region sizes tracks every sequence of DATASET (default
``../shared/data/val``, kept apart from training and from the held-out set),
from ``--starts`` frames spread over each sequence (OTB's TRE), and is scored by
mean IoU averaged over the sequences. Frames are decoded once and kept in memory.
Prints every point, the best last, and can write them all as JSON.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import click
import cv2
import numpy as np

from siamcli.api import create_tracker
from siamcli.errors import SiamcliError
from siamcli.eval.datasets import find_sequences
from siamcli.eval.metrics import score_sequence
from siamcli.eval.runner import robustness_runs
from siamcli.frame_loop import track_frames
from siamcli.tracking.tracker import SiameseTracker
from tools import SHARED, BadInput


def _floats(text: str) -> List[Optional[float]]:
    return [None if v.strip().lower() == "none" else float(v) for v in text.split(",") if v.strip()]


class Loaded:
    """A sequence's frames in memory, its ground truth and its runs."""

    def __init__(self, seq, starts: int) -> None:
        self.name = seq.name
        self.frames = [cv2.imread(str(p)) for p in seq.frames]
        self.groundtruth = seq.groundtruth
        self.runs = robustness_runs(seq, starts)


def mean_iou(tracker: SiameseTracker, seq: Loaded) -> float:
    """Mean IoU of ``seq``'s runs, each scored from its start frame on."""
    scores = []
    for start, box in seq.runs:
        boxes = [result.box for _, _, result in track_frames(tracker, seq.frames[start:], box)]
        scores.append(score_sequence(np.array(boxes), seq.groundtruth[start:])["mean_iou"])
    return float(np.mean(scores))


@click.command()
@click.argument("model")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), help="Default: the bundled weights.")
@click.option("--dataset", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=SHARED / "data" / "val", show_default=True,
              help="OTB-style sequences to choose on.")
@click.option("--starts", default=3, show_default=True, help="Starts per sequence (OTB's TRE).")
@click.option("--lr", "lrs", default=None, help="Learning rates, comma-separated (default: the model's).")
@click.option("--aspect-lr", "aspect_lrs", default=None,
              help="Aspect learning rates; 'none' moves width and height by lr (the reference trackers).")
@click.option("--penalty", "penalties", default=None, help="penalty_k values.")
@click.option("--window", "windows", default=None, help="Window influences.")
@click.option("--instance-size", "sizes", default=None, help="Search-region sides in pixels.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
def main(model, weights, dataset, starts, lrs, aspect_lrs, penalties, windows, sizes, json_path):
    """Grid-search MODEL's tracker settings by tracking DATASET."""
    try:
        seqs = [Loaded(s, starts) for s in find_sequences(dataset)]
    except SiamcliError as exc:
        raise BadInput(str(exc)) from None
    if not seqs:
        raise BadInput(f"no annotated sequences under {dataset}")
    try:
        base, spec = create_tracker(model=model, weights=weights, engine="onnx")
    except SiamcliError as exc:
        raise BadInput(str(exc)) from None
    p = spec.params
    grid = list(itertools.product(
        _floats(lrs) if lrs else [p.lr], _floats(aspect_lrs) if aspect_lrs else [p.aspect_lr],
        _floats(penalties) if penalties else [p.penalty_k], _floats(windows) if windows else [p.window_influence],
        [int(v) for v in sizes.split(",")] if sizes else [p.instance_size]))
    results = []
    for lr, aspect_lr, penalty, window, size in grid:
        params = replace(p, lr=lr, aspect_lr=aspect_lr, penalty_k=penalty, window_influence=window,
                         instance_size=size)
        tracker = SiameseTracker(base.engine, params)
        per = {s.name: round(mean_iou(tracker, s), 4) for s in seqs}
        score = float(np.mean(list(per.values())))
        results.append({"lr": lr, "aspect_lr": aspect_lr, "penalty_k": penalty, "window_influence": window,
                        "instance_size": size, "mean_iou": round(score, 4), "sequences": per})
        click.echo(f"lr {lr:<5} aspect_lr {str(aspect_lr):<5} penalty_k {penalty:<5} window {window:<5} "
                   f"instance {size:<4} mean IoU {score:.4f}")
    results.sort(key=lambda r: r["mean_iou"])
    best = {k: v for k, v in results[-1].items() if k != "sequences"}
    current = {"lr": p.lr, "aspect_lr": p.aspect_lr, "penalty_k": p.penalty_k,
               "window_influence": p.window_influence, "instance_size": p.instance_size}
    click.echo(f"best: {best}  (catalog now: {current})")
    if json_path:
        Path(json_path).write_text(json.dumps({"model": model, "weights": weights, "dataset": str(dataset),
                                               "starts": starts, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
