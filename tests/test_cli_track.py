"""`siamcli track` end to end: CSV and video outputs, and one-line errors with exit code 2 on bad input."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siamcli.cli import main
from conftest import ROOT, require_shared, square_path


def run_cli(args, capsys):
    """Run siamcli in-process; return (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def read_rows(path: Path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_track_video_writes_one_row_per_frame_and_follows_the_square(tmp_path, capsys, synthetic_video, alex_weights):
    out = tmp_path / "boxes.csv"
    video = tmp_path / "annotated.mp4"
    code, _, err = run_cli(["track", synthetic_video, "--model", "siamrpn_alex_dwxcorr", "--weights", alex_weights,
                            "--init", "40,30,40,40", "-o", out, "--save-video", video, "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert rows[0] == ["frame", "x", "y", "w", "h", "score", "state"]
    assert {r[6] for r in rows[1:]} <= {"tracking", "uncertain", "lost"} and rows[1][6] == "tracking"
    assert len(rows) == 1 + 24
    assert [int(r[0]) for r in rows[1:]] == list(range(24))
    assert [float(v) for v in rows[1][1:5]] == [40.0, 30.0, 40.0, 40.0]
    boxes = np.array([[float(v) for v in r[1:5]] for r in rows[1:]])
    assert np.all(boxes[:, 2:] >= 10) and np.all(np.isfinite(boxes))
    assert "tracked 24 frames" in err and str(out) in err and str(video) in err
    assert "warning" not in err
    assert re.search(r"with siamrpn_alex_dwxcorr on (onnx|torch)-cpu", err)  # the engine auto chose
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 24
    ok, frame = cap.read()
    assert ok and frame.shape == (240, 320, 3)


def test_track_a_folder_of_frames_with_max_frames(tmp_path, capsys, frame_folder, alex_weights):
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", frame_folder, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "40 30 40 40", "-o", out, "--max-frames", "5", "-q"], capsys)
    assert code == 0, err
    assert len(read_rows(out)) == 1 + 5


def test_a_box_mostly_outside_the_frame_is_tracked_with_a_warning(tmp_path, capsys, frame_folder, alex_weights):
    """Coordinates typed for another resolution: 10,10,5000,20 on a 320x240 source."""
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", frame_folder, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "10,10,5000,20", "-o", out, "--max-frames", "3", "-q"], capsys)
    assert code == 0, err
    assert len(read_rows(out)) == 1 + 3
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1
    assert "box 10,10,5000,20 lies mostly outside the 320x240 first frame (6.2 % of it inside)" in warning[0]


def test_outside_warnings_count_the_share_of_the_box_inside_the_frame():
    from siamcli.frame_loop import outside_warnings

    shape = (240, 320, 3)
    assert outside_warnings([(0, 0, 320, 240), (290, 210, 40, 40)], shape) == []  # inside; 56 % inside
    assert outside_warnings([(-20, 0, 40, 40)], shape) == []  # exactly half inside
    messages = outside_warnings([(10, 10, 40, 40), (-30, 0, 40, 40), (300, 230, 40, 40)], shape)
    assert len(messages) == 2
    assert "box -30,0,40,40" in messages[0] and "(25.0 % of it inside)" in messages[0]
    assert "box 300,230,40,40" in messages[1] and "(12.5 % of it inside)" in messages[1]


def test_track_with_a_published_config_instead_of_a_name(tmp_path, capsys, frame_folder, alex_weights):
    cfg = require_shared("reference", "configs", "pysot", "siamrpn_alex_dwxcorr", "config.yaml")
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", frame_folder, "--config", cfg, "-w", alex_weights, "--init", "40,30,40,40",
                            "-o", out, "-q"], capsys)
    assert code == 0, err
    assert len(read_rows(out)) == 13


def test_rows_written_before_a_failure_stay_on_disk(tmp_path, capsys, frame_folder, alex_weights):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(sorted(frame_folder.iterdir())):
        target = folder / f.name
        target.write_bytes(f.read_bytes() if i != 6 else b"not a jpeg")
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", folder, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "40,30,40,40", "-o", out, "-q"], capsys)
    assert code == 2
    assert "cannot decode frame 6" in err and "Traceback" not in err
    assert len(read_rows(out)) == 1 + 6  # frames 0..5


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("siamcli: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "empty").mkdir()
    (d / "fake.mp4").write_text("this is not a video\n")
    (d / "notes.pth").write_text("not a checkpoint\n")
    return d


@pytest.mark.parametrize("case,expect", [
    ("missing_source", "source not found"),
    ("empty_folder", "no image frames"),
    ("unreadable_video", "cannot open video"),
    ("malformed_init", "--init expects four numbers"),
    ("box_outside", "lies outside the 320x240 frame"),
    ("zero_size_box", "zero or negative size"),
    ("other_architecture", "do not fit model siamban_r50_l234"),
    ("non_checkpoint", "is not a PyTorch checkpoint"),
    ("missing_weights", "weights file not found"),
    ("unknown_model", "unknown model"),
    ("no_weights", "no weights given"),
    ("missing_config", "config file not found"),
    ("cuda_graphs_on_cpu", "CUDA graphs need a CUDA GPU"),
    ("cuda_graphs_auto_engine_on_cpu", "CUDA graphs need a CUDA GPU"),
    ("cuda_graphs_onnx_engine", "--cuda-graphs applies to the torch engine"),
])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys, bad_inputs, synthetic_video, alex_weights,
                                                  case, expect):
    base = ["track", synthetic_video, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights, "--init", "40,30,40,40",
            "-o", tmp_path / "o.csv", "-q"]
    args = {
        "missing_source": ["track", tmp_path / "nope.mp4", *base[2:]],
        "empty_folder": ["track", bad_inputs / "empty", *base[2:]],
        "unreadable_video": ["track", bad_inputs / "fake.mp4", *base[2:]],
        "malformed_init": [*base[:6], "--init", "10,20,abc", *base[8:]],
        "box_outside": [*base[:6], "--init", "400,300,20,20", *base[8:]],
        "zero_size_box": [*base[:6], "--init", "10,10,0,20", *base[8:]],
        "other_architecture": ["track", synthetic_video, "-m", "siamban_r50_l234", *base[4:]],
        "non_checkpoint": [*base[:4], "-w", bad_inputs / "notes.pth", *base[6:]],
        "missing_weights": [*base[:4], "-w", tmp_path / "none.pth", *base[6:]],
        "unknown_model": ["track", synthetic_video, "-m", "siamfc", *base[4:]],
        "no_weights": ["track", synthetic_video, "-m", "siamrpn_alex_dwxcorr", *base[6:]],
        "missing_config": ["track", synthetic_video, "--config", tmp_path / "c.yaml", *base[4:]],
        "cuda_graphs_on_cpu": [*base, "--engine", "torch", "--device", "cpu", "--cuda-graphs"],
        # auto used to drop the torch candidates quietly and run onnxruntime
        "cuda_graphs_auto_engine_on_cpu": [*base, "--engine", "auto", "--device", "cpu", "--cuda-graphs"],
        "cuda_graphs_onnx_engine": [*base, "--engine", "onnx", "--cuda-graphs"],
    }[case]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert expect in _one_error_line(err)


def test_no_display_and_no_init_asks_for_init(tmp_path, capsys, monkeypatch, synthetic_video, alex_weights):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run_cli(["track", synthetic_video, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "-o", tmp_path / "o.csv", "-q"], capsys)
    assert code == 2
    assert "--init" in _one_error_line(err)
    assert not (tmp_path / "o.csv").exists()


def test_the_installed_command_reports_errors_without_traceback(tmp_path):
    exe = Path(sys.executable).with_name("siamcli")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "siamcli"]
    proc = subprocess.run(cmd + ["track", str(tmp_path / "missing.mp4"), "--init", "1,2,3,4"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"siamcli: error: source not found: {tmp_path / 'missing.mp4'}"]


@pytest.mark.parametrize("source_kind", ["video", "folder"])
def test_drawing_the_first_box_tracks_from_that_frame_on(tmp_path, capsys, monkeypatch, synthetic_video, frame_folder,
                                                          alex_weights, source_kind):
    """Without --init the box comes from the selection window (stubbed here): every frame still gets a row."""
    import siamcli.io.select as select

    monkeypatch.setattr(select, "select_box", lambda frame: (40.0, 30.0, 40.0, 40.0))
    source = synthetic_video if source_kind == "video" else frame_folder
    out = tmp_path / "b.csv"
    code, _, err = run_cli(["track", source, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights, "--engine", "torch",
                            "-o", out, "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert len(rows) == 1 + (24 if source_kind == "video" else 12)
    assert [float(v) for v in rows[1][1:5]] == [40.0, 30.0, 40.0, 40.0]
