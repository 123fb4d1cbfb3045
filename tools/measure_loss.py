"""Target-loss measurements for a model on real sequences (the figures behind the loss thresholds).

For each sequence: the score distribution while tracking normally, then the same run with the
target blacked out (its ground-truth box plus 15 %) for frames 30-59: the scores during the
blackout, the frame at which the state turns ``lost``, and the mean IoU over the 10 frames after
the blackout, without and with re-detection.

    .venv/bin/python -m tools.measure_loss ../shared/data/seqs --weights nanotrackv2.pth [--model nanotrack_v2]
"""
from __future__ import annotations

import click
import cv2
import numpy as np

from siamcli.api import create_tracker
from siamcli.eval.datasets import find_sequences, valid_boxes
from siamcli.eval.metrics import iou
from siamcli.tracking.redetect import RedetectingTracker

BLACKOUT = (30, 60)


def run(seq, model, weights, blackout=None, redetect=False):
    """(scores, states, IoUs) of frames 1..N-1; NaN IoU where the frame is not annotated."""
    tracker, _ = create_tracker(model=model, weights=weights, device="cpu", engine="torch")
    if redetect:
        tracker = RedetectingTracker(tracker)
    gt = seq.groundtruth
    scores, states, ious = [], [], []
    for i, path in enumerate(seq.frames):
        img = cv2.imread(str(path))
        if blackout and blackout[0] <= i < blackout[1]:
            x, y, w, h = gt[i]
            x0, y0 = int(max(0, x - 0.15 * w)), int(max(0, y - 0.15 * h))
            img[y0:int(y + 1.15 * h), x0:int(x + 1.15 * w)] = 0
        if i == 0:
            tracker.init(img, gt[0])
            continue
        result = tracker.update(img)
        scores.append(result.score)
        states.append(result.state)
        ok = valid_boxes(gt[i:i + 1])[0]
        ious.append(float(iou(np.array([result.box]), gt[i:i + 1])[0]) if ok else np.nan)
    return np.array(scores), states, np.array(ious)


@click.command(help=__doc__)
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="The checkpoint (default: the model's bundled weights).")
@click.option("--model", default="nanotrack_v2", show_default=True)
def main(dataset, weights, model) -> None:
    b0, b1 = BLACKOUT
    for seq in find_sequences(dataset):
        s, _, _ = run(seq, model, weights)
        click.echo(f"{seq.name}: tracking scores min {s.min():.3f} p5 {np.percentile(s, 5):.3f} "
                   f"median {np.median(s):.3f}")
        if len(seq) < b1 + 10 or valid_boxes(seq.groundtruth[b0:b1]).sum() < (b1 - b0):
            click.echo(f"{seq.name}: too short or not annotated through frames {b0}-{b1 - 1}, no blackout run")
            continue
        for redetect in (False, True):
            s2, states, ious = run(seq, model, weights, BLACKOUT, redetect)
            during = states[b0 - 1:b1 - 1]
            first_lost = next((k for k, x in enumerate(during) if x == "lost"), None)
            blk = s2[b0 - 1:b1 - 1]
            click.echo(f"{seq.name} redetect={redetect}: blackout scores median {np.median(blk):.3f} "
                       f"max {blk.max():.3f}; lost from blackout frame +{first_lost}, {during.count('lost')}/30 "
                       f"frames lost; mean IoU of the 10 frames after: {np.nanmean(ious[b1 - 1:b1 + 9]):.3f}")


if __name__ == "__main__":
    main()
