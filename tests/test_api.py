"""The Python API (siamcli.Tracker, siamcli.track, siamcli.models) and `siamcli track --demo`, on the
sample clip that ships with siamcli: the same boxes as the command line, the same error messages."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import siamcli
from siamcli.catalog import BUNDLED_MODELS, DEFAULT_MODEL
from siamcli.demo import DEMO_BOX, demo_video
from test_cli_track import _one_error_line, read_rows, run_cli

ROOT = Path(__file__).resolve().parents[1]
#: the walking woman's box on frames of the sample clip, drawn by hand (x, y, w, h)
WALKER = {30: (334, 371, 46, 143), 60: (152, 330, 47, 120), 90: (68, 267, 40, 100), 119: (124, 216, 28, 80)}
FRAMES = 40  # enough for the tracks to differ when a setting does, short enough for the 2-core machine


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def csv_boxes(path: Path):
    return [tuple(float(v) for v in row[1:5]) for row in read_rows(path)[1:]]


def test_track_demo_follows_the_walker_through_the_sample_clip(tmp_path):
    """The README's first command, as a user runs it: the installed `siamcli`, no video of one's own."""
    exe = Path(sys.executable).with_name("siamcli")
    proc = subprocess.run([str(exe), "track", "--demo", "-q"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"tracked 120 frames with {DEFAULT_MODEL}" in proc.stderr and "walker_boxes.csv" in proc.stderr
    rows = read_rows(tmp_path / "walker_boxes.csv")
    assert rows[0] == ["frame", "x", "y", "w", "h", "score", "state"] and len(rows) == 1 + 120
    assert tuple(float(v) for v in rows[1][1:5]) == DEMO_BOX
    boxes = csv_boxes(tmp_path / "walker_boxes.csv")
    for frame, drawn in WALKER.items():
        assert iou(boxes[frame], drawn) > 0.5, (frame, boxes[frame], drawn)


def test_demo_takes_another_first_box_and_refuses_a_source_beside_it(tmp_path, capsys):
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", "--demo", "--init", "380,430,50,140", "--max-frames", "3", "-o", out, "-q"],
                           capsys)
    assert code == 0, err
    assert csv_boxes(out)[0] == (380.0, 430.0, 50.0, 140.0) and len(csv_boxes(out)) == 3
    code, _, err = run_cli(["track", str(demo_video()), "--demo", "-o", out], capsys)
    assert code == 2 and "either SOURCE or --demo" in _one_error_line(err)
    code, _, err = run_cli(["track", "-o", out], capsys)
    assert code == 2 and "missing SOURCE" in _one_error_line(err)


def test_tracker_and_track_give_the_boxes_siamcli_track_writes(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    code, _, err = run_cli(["track", "--demo", "--engine", "onnx", "--max-frames", FRAMES, "-o", out, "-q"], capsys)
    assert code == 0, err
    cli_boxes = np.array(csv_boxes(out))

    tracked = list(siamcli.track(demo_video(), DEMO_BOX, engine="onnx", max_frames=FRAMES))
    assert [i for i, _ in tracked] == list(range(FRAMES))
    assert tracked[0][1] == siamcli.TrackResult(DEMO_BOX, 1.0, "tracking")
    np.testing.assert_allclose([r.box for _, r in tracked], cli_boxes, atol=1e-4)  # the CSV's 4 decimals

    tracker = siamcli.Tracker(engine="onnx")
    video = cv2.VideoCapture(str(demo_video()))
    ok, frame = video.read()
    tracker.init(frame, DEMO_BOX)
    boxes = [DEMO_BOX]
    while len(boxes) < FRAMES:
        ok, frame = video.read()
        result = tracker.update(frame)
        assert result.state in ("tracking", "uncertain", "lost") and 0 <= result.score <= 1
        boxes.append(result.box)
    np.testing.assert_allclose(boxes, cli_boxes, atol=1e-4)
    assert tracker.name == DEFAULT_MODEL and tracker.engine == "onnx-cpu"


def test_tracker_settings_change_the_track_as_the_matching_options_do(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    code, _, err = run_cli(["track", "--demo", "--engine", "onnx", "--aspect-lr", "1", "--lost-threshold", "0.99",
                            "--max-frames", FRAMES, "-o", out, "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)[1:]
    results = [r for _, r in siamcli.track(demo_video(), DEMO_BOX, engine="onnx", max_frames=FRAMES, aspect_lr=1,
                                          lost_threshold=0.99)]
    np.testing.assert_allclose([r.box for r in results], csv_boxes(out), atol=1e-4)
    assert [r.state for r in results] == [row[6] for row in rows]
    default = [r.box for _, r in siamcli.track(demo_video(), DEMO_BOX, engine="onnx", max_frames=FRAMES)]
    assert np.abs(np.array(default) - csv_boxes(out)).max() > 1.0  # the settings took effect
    tracker = siamcli.Tracker(penalty_k=0.2, window_influence=0.3, lr=0.5)
    assert (tracker.params.penalty_k, tracker.params.window_influence, tracker.params.lr) == (0.2, 0.3, 0.5)
    assert tracker.params.aspect_lr == siamcli.models()[0].params.aspect_lr  # the rest stay the model's


def test_track_reads_a_folder_of_frames_and_stops_at_max_frames(frame_folder, alex_weights):
    tracked = list(siamcli.track(frame_folder, (40, 30, 40, 40), model="siamrpn_alex_dwxcorr", weights=alex_weights,
                                 max_frames=5))
    assert [i for i, _ in tracked] == [0, 1, 2, 3, 4]
    assert all(np.isfinite(r.box).all() and r.box[2] >= 10 for _, r in tracked)


def test_a_config_yaml_stands_in_for_a_model_name_as_with_track_config(tmp_path, capsys, frame_folder, alex_weights):
    from conftest import require_shared

    cfg = require_shared("reference", "configs", "pysot", "siamrpn_alex_dwxcorr", "config.yaml")
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", frame_folder, "--config", cfg, "-w", alex_weights, "--init", "40,30,40,40",
                            "--engine", "torch", "-o", out, "-q"], capsys)
    assert code == 0, err
    tracked = siamcli.track(frame_folder, (40, 30, 40, 40), model=cfg, weights=alex_weights, engine="torch")
    np.testing.assert_allclose([r.box for _, r in tracked], csv_boxes(out), atol=1e-4)


@pytest.mark.parametrize("case", ["box_outside", "zero_size_box", "missing_source", "missing_weights",
                                  "unknown_model", "no_weights", "camera"])
def test_bad_input_raises_the_message_the_command_line_prints(tmp_path, capsys, case):
    video = str(demo_video())
    api = {
        "box_outside": lambda: siamcli.track(video, (900, 100, 20, 20)),
        "zero_size_box": lambda: siamcli.track(video, (10, 10, 0, 20)),
        "missing_source": lambda: siamcli.track(tmp_path / "nope.mp4", DEMO_BOX),
        "missing_weights": lambda: siamcli.Tracker("nanotrack_v2", weights=tmp_path / "none.pth"),
        "unknown_model": lambda: siamcli.Tracker("siamfc"),
        "no_weights": lambda: siamcli.Tracker("siamrpn_alex_dwxcorr"),
        "camera": lambda: siamcli.track(97, DEMO_BOX),
    }[case]
    box = ",".join(map(str, DEMO_BOX))
    cli = {
        "box_outside": ["track", video, "--init", "900,100,20,20"],
        "zero_size_box": ["track", video, "--init", "10,10,0,20"],
        "missing_source": ["track", tmp_path / "nope.mp4", "--init", box],
        "missing_weights": ["track", video, "-m", "nanotrack_v2", "-w", tmp_path / "none.pth", "--init", box],
        "unknown_model": ["track", video, "-m", "siamfc", "--init", box],
        "no_weights": ["track", video, "-m", "siamrpn_alex_dwxcorr", "--init", box],
        "camera": ["webcam", "-c", "97", "--init", box, "--no-display"],
    }[case]
    with pytest.raises(siamcli.SiamcliError) as raised:
        api()
    code, _, err = run_cli([*cli, "-o", tmp_path / "o.csv", *(["-q"] if cli[0] == "track" else [])], capsys)
    assert code == 2
    assert _one_error_line(err) == f"siamcli: error: {raised.value}"


def test_unknown_or_bad_settings_are_refused_naming_the_valid_ones():
    with pytest.raises(siamcli.SiamcliError, match=r"unknown tracker setting 'penalty'; valid settings: penalty_k, "
                                                   r"window_influence, lr, aspect_lr"):
        siamcli.Tracker(penalty=0.1)
    for name, value, message in [("lr", 2, "between 0 and 1"), ("penalty_k", "x", "must be a number"),
                                 ("redetect_growth", 1.5, "must be an integer"), ("crop", "best", "crop must be")]:
        with pytest.raises(siamcli.SiamcliError, match=message):
            siamcli.Tracker(**{name: value})
    tracker = siamcli.Tracker()
    with pytest.raises(siamcli.SiamcliError, match="before update"):
        tracker.update(np.zeros((240, 320, 3), np.uint8))
    with pytest.raises(siamcli.SiamcliError, match="H x W x 3 uint8"):
        tracker.init(np.zeros((240, 320), np.float32), (10, 10, 20, 20))


def test_models_lists_what_siamcli_models_shows(capsys, monkeypatch):
    import siamcli.models.checkpoint  # noqa: F401  (the subpackage of the same name: the call still lists)

    listed = siamcli.models()
    assert [m.name for m in listed if m.bundled] == list(BUNDLED_MODELS) and listed[0].name == DEFAULT_MODEL
    assert {"nanotrack_v2", "siamrpn_alex_dwxcorr", "siamban_r50_l234"} <= {m.name for m in listed}
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]  # tab-separated off a terminal
    assert [row[0] for row in rows] == [m.name for m in listed]


def test_import_siamcli_loads_neither_torch_nor_opencv():
    code = "import sys, siamcli; print(sorted(m for m in ('torch', 'cv2', 'siamcli.api') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import siamcli; print(siamcli.__version__)"], capture_output=True,
                          text=True, timeout=60)
    assert re.fullmatch(r"\d+\.\d+\.\d+", proc.stdout.strip()), proc.stderr


def test_the_readme_python_snippet_runs_and_tracks_the_walker(tmp_path):
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"^```python\n(.*?)^```$", text, re.S | re.M).group(1)
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, last, bundled = proc.stdout.strip().splitlines()
    box = [float(v) for v in re.findall(r"-?\d+\.\d+", first)[:4]]
    assert iou(box, DEMO_BOX) > 0.7 and first.endswith("tracking")  # one frame on, the box has hardly moved
    assert last.startswith("49 (") and bundled == str(list(BUNDLED_MODELS))


def test_without_opencv_the_command_and_the_api_name_the_extras_to_install(tmp_path):
    hide = "import sys; sys.modules['cv2'] = None; "  # what an install without either OpenCV extra sees
    run = "sys.argv = ['siamcli', 'track', '--demo']; from siamcli.__main__ import main; main()"
    proc = subprocess.run([sys.executable, "-c", hide + run],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert _one_error_line(proc.stderr).startswith("siamcli: error: OpenCV is not installed: pip install "
                                                  "'siamcli[headless]'")
    proc = subprocess.run([sys.executable, "-c", hide + "import siamcli; siamcli.Tracker"], capture_output=True,
                          text=True, timeout=120)
    assert "ModuleNotFoundError: OpenCV is not installed" in proc.stderr and "siamcli[gui]" in proc.stderr
