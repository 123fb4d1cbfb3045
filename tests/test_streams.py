"""Streams that end early or are stopped: damaged video, SIGINT/SIGTERM mid-run."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from test_cli_track import read_rows, run_cli
from conftest import require_shared

NANO = ("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")


@pytest.mark.shared_data
@pytest.mark.parametrize("command", ["track", "webcam"])
def test_damaged_video_reports_the_frame_where_decoding_stopped(tmp_path, capsys, command):
    video = require_shared("data", "videos", "opencv_tree.avi")
    weights = require_shared(*NANO)
    out = tmp_path / "tree.csv"
    src = [video] if command == "track" else ["-c", video, "--no-display"]
    code, _, err = run_cli([command, *src, "-m", "nanotrack_v2", "-w", weights, "--init", "120,60,60,80",
                            "-o", out, *(["-q"] if command == "track" else [])], capsys)
    assert code == 0, err
    assert "stopped decoding after frame 67: 68 of the 444 frames" in err
    assert len(read_rows(out)) == 1 + 68


@pytest.mark.shared_data
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_half_way_keeps_every_box_and_a_playable_video(tmp_path, sig):
    video = require_shared("data", "videos", "opencv_doc_box.mp4")  # 455 frames
    weights = require_shared(*NANO)
    out, saved = tmp_path / "boxes.csv", tmp_path / "annotated.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "siamcli", "track", str(video), "-m", "nanotrack_v2", "-w",
                             str(weights), "--init", "230,160,180,140", "-o", str(out), "--save-video", str(saved),
                             "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(out.read_text().splitlines()) > 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err
    rows = read_rows(out)[1:]
    assert 40 <= len(rows) < 455
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    cap = cv2.VideoCapture(str(saved))
    assert cap.isOpened()
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    assert decoded == len(rows)
    assert f"after frame {len(rows) - 1}: {len(rows)} boxes kept" in err


def test_a_signal_during_a_write_counts_the_row_it_interrupted():
    """The signal lands while frame 3's row is being written: that row is kept and counted."""
    import os

    import numpy as np

    from siamcli.live import run_tracking
    from siamcli.tracking.tracker import TrackResult

    class Tracker:
        def init(self, frame, box):
            self.box = box

        def update(self, frame):
            return TrackResult(tuple(self.box), 0.99, "tracking")

    class Writer:
        rows = []

        def write(self, index, box, score, state, target=0):
            self.rows.append(index)
            if index == 3:
                os.kill(os.getpid(), signal.SIGINT)

    frames = [np.zeros((20, 20, 3), np.uint8)] * 10
    writer = Writer()
    report = run_tracking(frames, Tracker(), writer, init_box=(1, 1, 5, 5))
    assert report.interrupted == "SIGINT"
    assert writer.rows == [0, 1, 2, 3]
    assert report.rows == 4 and report.last_frame == 3


def test_frames_decoded_ahead_arrive_in_order_and_stop_cleanly(tmp_path):
    """The prefetching thread yields every frame in order, raises a bad frame where it is, and stops on close."""
    import cv2
    import numpy as np

    from siamcli.errors import SiamcliError
    from siamcli.io.sources import open_source

    for i in range(12):
        img = np.full((24, 32, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), img)
    from siamcli.frame_loop import track_frames
    from siamcli.io.sources import Prefetcher

    class Still:
        def init(self, frame, box):
            pass

        def update(self, frame):
            return int(frame[0, 0, 0])

    with open_source(tmp_path) as src:
        assert src.prefetch > 0
        assert [r for _, _, r in track_frames(Still(), src, (1, 1, 4, 4))][1:] == [i * 20 for i in range(1, 12)]
    (tmp_path / "005.png").write_bytes(b"broken")
    got = []
    with open_source(tmp_path) as src, pytest.raises(SiamcliError, match="cannot decode frame 5"):
        for frame in Prefetcher(iter(src), 4):
            got.append(int(frame[0, 0, 0]))
    assert got == [0, 20, 40, 60, 80]
    with open_source(tmp_path) as src:
        ahead = Prefetcher(iter(src), 4)
        next(iter(ahead))
        ahead.close()  # abandoned after one frame: the decoding thread ends
        assert not ahead._thread.is_alive()
