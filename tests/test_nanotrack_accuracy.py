"""NanoTrack v2 through siamcli tracks as well as OpenCV's own TrackerNano on the real sequences.

Needs ../shared/data (real sequences and the real NanoTrack v2 weights). OpenCV's
figures are the reference run listed in ../shared/data/README.md.
"""
from __future__ import annotations

import json

import pytest

from siamcli.cli import main
from conftest import require_shared

OPENCV_MEAN_IOU = {
    "otb_Crossing": 0.769,
    "otb_Bird2": 0.617,
    "vot16_bag": 0.773,
    "mil_girl": 0.641,
    "uav123_10fps_wakeboard7": 0.767,
}


@pytest.mark.shared_data
def test_nanotrack_v2_mean_iou_within_003_of_opencv_on_every_sequence(tmp_path):
    seqs = require_shared("data", "seqs")
    weights = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    out = tmp_path / "eval.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(seqs), "--model", "nanotrack_v2", "--weights", str(weights), "--json", str(out), "-q"])
        raise SystemExit(0)
    assert done.value.code == 0
    doc = json.loads(out.read_text())
    got = {s["name"]: s["mean_iou"] for s in doc["sequences"]}
    assert set(got) == set(OPENCV_MEAN_IOU)
    low = {n: (round(got[n], 3), ref) for n, ref in OPENCV_MEAN_IOU.items() if got[n] < ref - 0.03}
    assert not low, f"mean IoU more than 0.03 below OpenCV's TrackerNano: {low}"
