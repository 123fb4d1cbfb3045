"""Each published architecture tracks end to end through `siamcli track` on a real video,
with random weights of the right structure saved in each checkpoint form users have.

Needs ../shared/data/videos. The ResNet-50 models take about 0.3 s a frame here, so they run few frames.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from siamcli.cli import main
from siamcli.catalog import build_model
from conftest import require_shared

MODELS = {
    "siamrpn_alex_dwxcorr": 8,
    "siamrpn_mobilev2_l234_dwxcorr": 4,
    "siamrpn_r50_l234_dwxcorr": 2,
    "siamban_r50_l234": 2,
}
FORMS = ["plain", "snapshot", "module_prefix"]


def save_checkpoint(path, name, form):
    torch.manual_seed(7)
    state = build_model(name).state_dict()
    if form == "snapshot":
        obj = {"epoch": 20, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.001}]}}
    elif form == "module_prefix":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = state
    torch.save(obj, path)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("form", FORMS)
def test_published_model_tracks_a_real_video(tmp_path, capsys, name, form):
    video = require_shared("data", "videos", "opencv_doc_cup.mp4")
    weights = tmp_path / "model.pth"
    save_checkpoint(weights, name, form)
    out = tmp_path / "boxes.csv"
    frames = MODELS[name]
    with pytest.raises(SystemExit) as done:
        # ResNet-50 on torch directly: `--engine auto` would first export and time an ONNX copy
        engine = "torch" if "r50" in name else "auto"
        main(["track", str(video), "--model", name, "--weights", str(weights), "--init", "250,180,100,90",
              "-o", str(out), "--max-frames", str(frames), "--engine", engine, "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    rows = list(csv.reader(open(out)))
    assert rows[0][:6] == ["frame", "x", "y", "w", "h", "score"]
    assert len(rows) == 1 + frames
    boxes = np.array([[float(v) for v in r[1:5]] for r in rows[1:]])
    scores = np.array([float(r[5]) for r in rows[1:]])
    assert np.all(np.isfinite(boxes)) and np.all((scores >= 0) & (scores <= 1))
    cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    eps = 1e-3  # the CSV keeps 4 decimals
    assert np.all((cx >= -eps) & (cx <= 640 + eps) & (cy >= -eps) & (cy <= 480 + eps))
    assert np.all((boxes[:, 2] >= 10) & (boxes[:, 2] <= 640) & (boxes[:, 3] >= 10) & (boxes[:, 3] <= 480))
