"""The Python API (siamcli.Tracker, siamcli.track, siamcli.list_models) and `siamcli track --demo`, on the
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
    assert tracker.params.aspect_lr == siamcli.list_models()[0].params.aspect_lr  # the rest stay the model's


def _demo_frames(count: int):
    video = cv2.VideoCapture(str(demo_video()))
    frames = [video.read()[1] for _ in range(count)]
    video.release()
    return frames


def test_update_unpacks_as_opencv_trackers_answer():
    """`ok, box = tracker.update(frame)` as with cv2.Tracker, ok meaning "not lost"; the attributes stay."""
    frames = _demo_frames(6)
    tracker = siamcli.Tracker(engine="onnx")
    tracker.init(frames[0], DEMO_BOX)
    for frame in frames[1:]:
        result = tracker.update(frame)
        ok, box = result
        assert ok is (result.state != "lost") is result.ok and box == result.box and len(result) == 2
        assert (result[0], result[1]) == (ok, box) and len(box) == 4
    assert ok and iou(box, DEMO_BOX) > 0.3  # five frames on, the walker is still near her first box
    ok, box = siamcli.TrackResult((1.0, 2.0, 3.0, 4.0), 0.1, "lost")
    assert ok is False and box == (1.0, 2.0, 3.0, 4.0)
    assert siamcli.TrackResult((1.0, 2.0, 3.0, 4.0), 0.6, "uncertain").ok


def test_rgb_arrays_and_pil_images_track_as_the_bgr_frames_they_show():
    """color="rgb" and PIL images give the boxes of the BGR frames; an RGB array passed as BGR does not."""
    from PIL import Image

    frames = _demo_frames(12)

    def boxes(tracker, convert):
        tracker.init(convert(frames[0]), DEMO_BOX)
        return [tracker.update(convert(f)).box for f in frames[1:]]

    bgr = boxes(siamcli.Tracker(engine="onnx"), lambda f: f)
    rgb = boxes(siamcli.Tracker(engine="onnx", color="rgb"), lambda f: np.ascontiguousarray(f[..., ::-1]))
    pil = boxes(siamcli.Tracker(engine="onnx"), lambda f: Image.fromarray(f[..., ::-1]))
    rgba = boxes(siamcli.Tracker(engine="onnx"), lambda f: Image.fromarray(f[..., ::-1]).convert("RGBA"))
    assert rgb == bgr and pil == bgr and rgba == bgr  # the same pixels, whatever form they came in
    swapped = boxes(siamcli.Tracker(engine="onnx"), lambda f: np.ascontiguousarray(f[..., ::-1]))
    assert np.abs(np.array(swapped) - np.array(bgr)).max() > 0.01  # the channel order matters to the network
    with pytest.raises(siamcli.SiamcliError, match="color must be one of 'bgr', 'rgb'"):
        siamcli.Tracker(color="hsv")
    with pytest.raises(siamcli.SiamcliError, match="color applies to frames passed to Tracker"):
        siamcli.track(demo_video(), DEMO_BOX, color="rgb")
    with pytest.raises(siamcli.SiamcliError, match="or a PIL image, got list"):
        siamcli.Tracker().init([[0, 0, 0]], DEMO_BOX)


def test_pil_is_never_imported_by_siamcli():
    code = ("import sys, numpy as np, siamcli\n"
            "t = siamcli.Tracker(engine='onnx', color='rgb')\n"
            "t.init(np.zeros((120, 160, 3), np.uint8), (40, 40, 30, 30))\n"
            "t.update(np.zeros((120, 160, 3), np.uint8))\n"
            "print(sorted(m for m in sys.modules if m == 'PIL' or m.startswith('PIL.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


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
    if case == "no_weights":  # the same message, naming the way each of them takes a checkpoint
        assert "pass weights=FILE (experiments/siamrpn_alex_dwxcorr/model.pth from the pysot model zoo)" in str(
            raised.value)
        assert _one_error_line(err) == f"siamcli: error: {raised.value}".replace("weights=FILE", "--weights FILE")
    else:
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


def test_list_models_lists_what_siamcli_models_shows(capsys):
    from siamcli.catalog import BUNDLED_MODELS

    listed = siamcli.list_models()
    assert [m.name for m in listed if m.bundled] == list(BUNDLED_MODELS) and listed[0].name == DEFAULT_MODEL
    assert {"nanotrack_v2", "siamrpn_alex_dwxcorr", "siamban_r50_l234"} <= {m.name for m in listed}
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    lines = out.splitlines()  # tab-separated off a terminal, a header first
    header = lines[0].split("\t")
    rows = {line.split("\t")[0]: dict(zip(header, line.split("\t"))) for line in lines[1:]}
    assert list(rows) == [m.name for m in listed] and all(len(row) == len(header) for row in rows.values())
    for model in listed:
        row = rows[model.name]
        if model.bundled:
            assert row["weights"] == model.weights_source == "bundled" and row["checkpoint"] == "-"
        else:
            assert model.weights_source == f"{row['weights']}: {row['checkpoint']}"
        assert float(row["lost"]) == model.params.lost_threshold
        assert float(row["uncertain"]) == model.params.uncertain_threshold
    assert rows["siamrpn_alex_dwxcorr"]["weights"] == "pysot model zoo"
    assert rows["siamrpn_alex_dwxcorr_otb"]["checkpoint"] == "experiments/siamrpn_alex_dwxcorr_otb/model.pth"
    assert rows["siamban_r50_l234"]["weights"] == "SiamBAN model zoo"
    assert (rows["nanotrack_v1"]["weights"], rows["nanotrack_v1"]["checkpoint"]) == ("NanoTrack project",
                                                                                    "nanotrackv1.pth")


def test_siamcli_models_on_a_terminal_is_an_aligned_table_with_whole_names(tmp_path):
    """Run in a pseudo-terminal 80 columns wide, as a person types it: a table, not tab-separated
    lines, and no model name cut short."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen([sys.executable, "-m", "siamcli", "models"], stdin=child_fd, stdout=child_fd,
                            stderr=child_fd, env={**env, "TERM": "xterm"}, cwd=tmp_path)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(main_fd)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())
    lines = text.splitlines()
    assert "\t" not in text and max(len(line) for line in lines) <= 80
    assert any(line.split()[:2] == ["model", "weights"] for line in lines)
    starts = {line.split()[0] for line in lines if line.strip()}
    assert {m.name for m in siamcli.list_models()} <= starts  # every name whole, at the start of its row
    assert "pysot model zoo" in text and "SiamBAN model zoo" in text


def test_siamcli_models_is_no_longer_a_function_and_says_what_is(tmp_path):
    code = ("import siamcli\ntry:\n    siamcli.models\nexcept AttributeError as exc:\n    print(exc)\n"
            "import siamcli.models.lite\nprint(callable(siamcli.models), len(siamcli.list_models()) > 3)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    message, after = proc.stdout.strip().splitlines()
    assert "siamcli.list_models() lists the models" in message and after == "False True"


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
