"""`siamcli webcam`: headless runs on a real video, keys (select / pause / quit) through an injected
key source and, under Xvfb, through a real OpenCV window."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamcli.io.sources import open_camera
from siamcli.io.writers import CsvBoxWriter
from siamcli.live import KeySourceControls, key_action, run_tracking
from test_cli_track import read_rows, run_cli, _one_error_line
from conftest import require_shared

NANO = ("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
MEGAMIND_FACE = (400, 140, 150, 190)


def test_key_codes_map_to_actions():
    assert [key_action(k) for k in (ord("s"), ord(" "), ord("p"), ord("q"), 27, -1, ord("x"), 0x100000 | ord("q"))] \
        == ["select", "select", "pause", "quit", "quit", None, None, "quit"]


def _nano():
    from siamcli.api import create_tracker

    return create_tracker(model="nanotrack_v2", weights=require_shared(*NANO), device="cpu")[0]


@pytest.mark.shared_data
def test_injected_keys_reselect_pause_and_quit_on_a_real_video(tmp_path):
    video = require_shared("data", "videos", "opencv_Megamind.avi")
    script = {3: ord("s"), 6: ord("p"), 9: ord(" ")}  # key returned by the n-th call
    calls, selected = [], []

    def keys():
        calls.append(len(calls))
        n = len(calls) - 1
        if n == 12:
            return 27  # Esc
        return script.get(n, -1)

    def select(frame):
        selected.append(frame.shape)
        return (300.0, 150.0, 120.0, 140.0)

    controls = KeySourceControls(keys, select)
    with open_camera(str(video)) as source, CsvBoxWriter(tmp_path / "b.csv") as boxes:
        report = run_tracking(source, _nano(), boxes, init_box=MEGAMIND_FACE, controls=controls, label="t")
    rows = read_rows(tmp_path / "b.csv")[1:]
    # calls 0..6 show frames 0..6: s re-selects on frame 3, p pauses after frame 6; calls 7..9 wait while
    # paused, space (call 9) re-selects there; nothing resumes, so call 12 (Esc, while paused) quits
    assert report.quit_by_key and report.reselections == 2 and len(selected) == 2
    assert [float(v) for v in rows[3][1:5]] == [300.0, 150.0, 120.0, 140.0] and rows[3][5] == "1.000000"
    assert len(rows) == report.rows == controls.shown
    assert [int(r[0]) for r in rows] == list(range(len(rows)))


@pytest.mark.shared_data
def test_headless_webcam_on_a_video_file_stops_at_max_frames(tmp_path, capsys):
    video = require_shared("data", "videos", "opencv_Megamind.avi")
    out = tmp_path / "live.csv"
    code, _, err = run_cli(["webcam", "--camera", video, "-m", "nanotrack_v2", "-w", require_shared(*NANO),
                            "--init", ",".join(map(str, MEGAMIND_FACE)), "--no-display", "--max-frames", "15",
                            "-o", out], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert rows[0][-1] == "state" and len(rows) == 1 + 15
    assert "tracked 15 frames" in err


def test_webcam_without_display_is_one_line(tmp_path, capsys, monkeypatch, synthetic_video, alex_weights):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = run_cli(["webcam", "-c", synthetic_video, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "40,30,40,40", "-o", tmp_path / "o.csv"], capsys)
    assert code == 2 and "--no-display" in _one_error_line(err)
    monkeypatch.setenv("DISPLAY", ":987")  # set, but nothing listens there
    code, _, err = run_cli(["webcam", "-c", synthetic_video, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "40,30,40,40"], capsys)
    assert code == 2 and "cannot connect to the X display ':987'" in _one_error_line(err)


def test_no_display_needs_an_init_box(capsys, synthetic_video, alex_weights):
    code, _, err = run_cli(["webcam", "-c", synthetic_video, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--no-display"], capsys)
    assert code == 2 and "--no-display needs the first box" in _one_error_line(err)


def test_a_missing_camera_is_one_line(capsys, alex_weights, tmp_path):
    code, _, err = run_cli(["webcam", "-c", tmp_path / "nope.mp4", "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--no-display", "--init", "1,2,3,4"], capsys)
    assert code == 2 and "not found" in _one_error_line(err)


# -- under a virtual display ------------------------------------------------------------------------
def _gui_env():
    """Environment whose Python sees an OpenCV with a GUI: this venv's, or the one SIAMCLI_GUI_PYTHONPATH names."""
    env = dict(os.environ)
    extra = os.environ.get("SIAMCLI_GUI_PYTHONPATH")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH")) if p)
    probe = subprocess.run([sys.executable, "-c", "from siamcli.io.window import opencv_has_gui as g; print(g())"],
                           env=env, capture_output=True, text=True)
    return env if probe.stdout.strip() == "True" else None


@pytest.fixture()
def xvfb_display():
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian packages xvfb and xdotool)")
    env = _gui_env()
    if env is None:
        pytest.skip("needs OpenCV's GUI build (opencv-python, not -headless) in the venv or on SIAMCLI_GUI_PYTHONPATH")
    number = 90 + os.getpid() % 500
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{number}")
    for _ in range(100):
        if socket.exists():
            break
        time.sleep(0.05)
    env["DISPLAY"] = f":{number}"
    yield env
    server.terminate()
    server.wait(timeout=10)


def _rows(path):
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


@pytest.mark.shared_data
def test_keys_pressed_in_the_window_pause_and_quit_under_xvfb(tmp_path, xvfb_display):
    env = xvfb_display
    video = require_shared("data", "videos", "opencv_Megamind.avi")  # 270 frames
    out = tmp_path / "live.csv"
    proc = subprocess.Popen([sys.executable, "-m", "siamcli", "webcam", "-c", str(video), "-m", "nanotrack_v2",
                             "-w", str(require_shared(*NANO)), "--init", ",".join(map(str, MEGAMIND_FACE)),
                             "-o", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def xdo(*args):
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=20)

    try:
        deadline = time.monotonic() + 60
        while _rows(out) < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        window = xdo("search", "--sync", "--name", "siamcli").stdout.split()[0]
        xdo("windowfocus", "--sync", window)
        xdo("key", "p")
        time.sleep(1.0)
        paused_at = _rows(out)
        time.sleep(1.0)
        assert _rows(out) == paused_at, "rows kept coming while paused"
        assert 10 <= paused_at < 270
        xdo("key", "p")
        time.sleep(1.0)
        assert _rows(out) > paused_at or proc.poll() is not None
        xdo("key", "q")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = read_rows(out)[1:]
    assert f"tracked {len(rows)} frames" in err and len(rows) < 270
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
