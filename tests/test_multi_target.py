"""Several targets tracked in one batched network pass give the same boxes as one tracker each."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamcli.api import create_tracker
from siamcli.eval.datasets import find_sequences
from siamcli.tracking.multi import MultiTracker
from siamcli.tracking.tracker import SiameseTracker
from conftest import require_shared


def _run_single(engine, params, frames, box):
    t = SiameseTracker(engine, params)
    t.init(frames[0], box)
    return np.array([t.update(f).box for f in frames[1:]])


@pytest.mark.parametrize("engine_kind", ["torch", "onnx"])
def test_batched_targets_match_separate_trackers(alex_weights, synthetic_video, engine_kind):
    tracker, spec = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, device="cpu", engine=engine_kind)
    cap = cv2.VideoCapture(str(synthetic_video))
    frames = [cap.read()[1] for _ in range(4)]
    boxes = [(40, 30, 40, 40), (150, 100, 60, 50), (200, 150, 30, 30)]
    multi = MultiTracker(tracker.engine, spec.params)
    multi.init(frames[0], boxes)
    together = np.array([[r.box for r in multi.update(f)] for f in frames[1:]])  # (frames, targets, 4)
    assert together.shape == (3, 3, 4)
    for k, box in enumerate(boxes):
        alone = _run_single(tracker.engine, spec.params, frames, box)
        np.testing.assert_allclose(together[:, k], alone, atol=1e-2)


@pytest.mark.shared_data
def test_two_real_targets_tracked_together_follow_their_ground_truth():
    """Crossing's pedestrian and the same pedestrian shifted into a second copy of the frame side by side."""
    seq = find_sequences(require_shared("data", "seqs", "otb_Crossing"))[0]
    weights = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    tracker, spec = create_tracker("nanotrack_v2", weights=weights, device="cpu")
    frames = [np.hstack([cv2.imread(str(f))] * 2) for f in seq.frames[:40]]
    width = frames[0].shape[1] // 2
    gt = seq.groundtruth[:40]
    multi = MultiTracker(tracker.engine, spec.params)
    multi.init(frames[0], [gt[0], gt[0] + [width, 0, 0, 0]])
    out = np.array([[r.box for r in multi.update(f)] for f in frames[1:]])
    alone = _run_single(tracker.engine, spec.params, [f[:, :width] for f in frames], gt[0])
    np.testing.assert_allclose(out[:, 0], alone, atol=0.05)
    np.testing.assert_allclose(out[:, 1] - [width, 0, 0, 0], alone, atol=0.05)


def test_adding_a_target_later(alex_weights, synthetic_video):
    tracker, spec = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, device="cpu")
    cap = cv2.VideoCapture(str(synthetic_video))
    frames = [cap.read()[1] for _ in range(3)]
    multi = MultiTracker(tracker.engine, spec.params)
    multi.init(frames[0], [(40, 30, 40, 40)])
    assert len(multi.update(frames[1])) == 1
    multi.add(frames[1], (150, 100, 60, 50))
    results = multi.update(frames[2])
    assert len(results) == 2 and all(np.isfinite(r.box).all() for r in results)
    with pytest.raises(RuntimeError):
        MultiTracker(tracker.engine, spec.params).update(frames[0])


def test_track_command_with_several_init_boxes_writes_a_target_column(tmp_path, capsys, synthetic_video, alex_weights):
    import csv

    from siamcli.cli import main

    out = tmp_path / "b.csv"
    with pytest.raises(SystemExit) as done:
        main(["track", str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--engine", "torch",
              "--init", "40,30,40,40", "--init", "150,100,60,50", "-o", str(out), "--max-frames", "5", "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["frame", "target", "x", "y", "w", "h", "score", "state"]
    assert [(int(r[0]), int(r[1])) for r in rows[1:]] == [(f, t) for f in range(5) for t in range(2)]
    assert [float(v) for v in rows[2][2:6]] == [150, 100, 60, 50]
    # the same targets one at a time give the same boxes
    for k, box in enumerate(["40,30,40,40", "150,100,60,50"]):
        single = tmp_path / f"s{k}.csv"
        with pytest.raises(SystemExit):
            main(["track", str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--engine",
                  "torch", "--init", box, "-o", str(single), "--max-frames", "5", "-q"])
            raise SystemExit(0)
        alone = [[float(v) for v in r[1:5]] for r in list(csv.reader(open(single)))[1:]]
        together = [[float(v) for v in r[2:6]] for r in rows[1:] if int(r[1]) == k]
        np.testing.assert_allclose(together, alone, atol=1e-2)


@pytest.mark.parametrize("extra,msg", [(["--format", "otb"], "holds one target only"),
                                       (["--redetect"], "--redetect works with one target")])
def test_several_targets_refuse_what_cannot_hold_them(tmp_path, capsys, synthetic_video, alex_weights, extra, msg):
    from siamcli.cli import main

    with pytest.raises(SystemExit) as done:
        main(["track", str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--engine", "torch",
              "--init", "40,30,40,40", "--init", "150,100,60,50", "-o", str(tmp_path / "b.txt"), "-q", *extra])
    assert done.value.code == 2
    assert msg in capsys.readouterr().err
