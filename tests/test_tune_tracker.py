"""tools/tune_tracker.py (`python -m tools.tune_tracker`): the grid search that chose the bundled models'
tracker settings."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import ROOT, require_shared

#: run from the project root, as the maintainer runs it
TOOL = [sys.executable, "-m", "tools.tune_tracker"]


def _short_sequence(src, dst, frames: int):
    (dst / "img").mkdir(parents=True)
    for path in sorted((src / "img").iterdir())[:frames]:
        shutil.copy(path, dst / "img" / path.name)
    lines = (src / "groundtruth_rect.txt").read_text().splitlines()[:frames]
    (dst / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")


def test_every_point_of_the_grid_tracks_every_sequence_and_the_best_is_reported(tmp_path):
    val = require_shared("data", "val")
    data = tmp_path / "val"
    for name in ("otb_Toy", "uav10_car16_1"):
        _short_sequence(val / name, data / name, 12)
    out = tmp_path / "grid.json"
    run = subprocess.run([*TOOL, "siamrpn", "--dataset", str(data), "--starts", "2",
                          "--lr", "0.2,0.4", "--window", "0.3,0.5", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith("lr ")]) == 4 and lines[-1].startswith("best: ")
    grid = json.loads(out.read_text())
    assert grid["starts"] == 2 and grid["model"] == "siamrpn"
    points = grid["results"]
    assert {(p["lr"], p["window_influence"]) for p in points} == {(0.2, 0.3), (0.2, 0.5), (0.4, 0.3), (0.4, 0.5)}
    for p in points:
        assert set(p["sequences"]) == {"otb_Toy", "uav10_car16_1"}
        assert 0.0 <= p["mean_iou"] <= 1.0
        assert abs(p["mean_iou"] - sum(p["sequences"].values()) / 2) < 1e-3
    # sorted best last, and the best is what the last line names
    assert points[-1]["mean_iou"] == max(p["mean_iou"] for p in points)
    assert f"'mean_iou': {points[-1]['mean_iou']}" in lines[-1]
    # the start frame's box is the ground truth, so a tracker that stays on its target scores well above 0
    assert points[-1]["mean_iou"] > 0.3


def test_a_folder_without_sequences_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "empty").mkdir()
    run = subprocess.run([*TOOL, "siamrpn", "--dataset", str(tmp_path / "empty")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no OTB-style sequences" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


def test_aspect_lr_penalty_and_search_size_points_with_given_weights(tmp_path):
    """--aspect-lr (with 'none', the reference trackers' box update), --penalty and --instance-size
    span the grid too, on the weights given with -w."""
    val = require_shared("data", "val")
    data = tmp_path / "val"
    _short_sequence(val / "otb_Toy", data / "otb_Toy", 8)
    out = tmp_path / "grid.json"
    weights = ROOT / "weights" / "siamrpn.pth"
    run = subprocess.run([*TOOL, "siamrpn", "-w", str(weights), "--dataset", str(data),
                          "--starts", "1", "--aspect-lr", "none,0.05", "--penalty", "0.1", "--instance-size",
                          "223,255", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    grid = json.loads(out.read_text())
    assert grid["weights"] == str(weights)
    assert {(p["aspect_lr"], p["penalty_k"], p["instance_size"]) for p in grid["results"]} == {
        (None, 0.1, 223), (None, 0.1, 255), (0.05, 0.1, 223), (0.05, 0.1, 255)}
    assert "aspect_lr None" in run.stdout and "instance 255" in run.stdout


def test_weights_of_another_model_are_one_line_and_exit_code_2(tmp_path):
    val = require_shared("data", "val")
    _short_sequence(val / "otb_Toy", tmp_path / "val" / "otb_Toy", 4)
    run = subprocess.run([*TOOL, "siamrpn", "-w", str(ROOT / "weights" / "siamrpnban.pth"),
                          "--dataset", str(tmp_path / "val")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr
