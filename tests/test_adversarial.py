"""Inputs and conditions chosen to break siamcli, run as a user runs it (a subprocess).

Each case checks the exit code, the one line on stderr and the files left on disk:
bad input is one line and exit code 2, work done is never lost, an output never
overwrites an input. The full-disk cases mount a small tmpfs and so run as root only.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, require_shared, square_path, textured_frame
from siamcli.catalog import DEFAULT_MODEL, MODELS

BOX = "40,30,40,40"  # the square's first position in the conftest clips
#: the line a successful run ends with
TRACKED = re.compile(r"tracked (\d+) frames with (\S+) on (\S+), [\d.]+ fps mean; boxes: (.+)")


def siamcli(*args, cwd: Path, env=None, timeout: int = 300):
    """Run ``python -m siamcli ARGS`` in ``cwd``: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "siamcli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def line_of(err: str) -> str:
    """The one line a command printed on stderr (fails when it printed more or none)."""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    return lines[0]


def rows_of(path: Path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path):
    """Temporary files anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """150 small frames of the moving square: enough rows to fill a few kB of box file."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for i, (x, y) in enumerate(square_path(150)):
        writer.write(textured_frame(320, 240, x % 260, y % 190, 40, seed=i))
    writer.release()
    return path


def _mount_tmpfs(folder: Path, kib: int) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a tmpfs, which needs root and mount")
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture()
def full_disk(tmp_path):
    """A 64 kB tmpfs with a filler file: ``fill(free_pages)`` leaves that many 4 kB pages free."""
    folder = tmp_path / "full"
    _mount_tmpfs(folder, 64)

    def fill(free_pages: int) -> Path:
        stat = os.statvfs(folder)
        (folder / "filler").write_bytes(b"\0" * ((stat.f_bavail - free_pages) * stat.f_frsize))
        assert os.statvfs(folder).f_bavail == free_pages
        return folder

    yield fill
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# -- 1. --redetect, through every command and engine that offers it ----------------------------
@pytest.fixture(scope="module")
def vanishing(tmp_path_factory) -> Path:
    """The square for 5 frames, gone for 6, back (elsewhere) for 5: the tracker loses it."""
    path = tmp_path_factory.mktemp("vanishing") / "vanishing.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(16):
        frame = textured_frame(320, 240, 40 + 3 * i, 30 + 2 * i, 40, seed=i)
        if 5 <= i < 11:
            frame = textured_frame(320, 240, 0, 0, 0, seed=i)
        if i >= 11:
            frame = textured_frame(320, 240, 200, 150, 40, seed=i)
        writer.write(frame)
    writer.release()
    return path


def _redetect_args(kind: str):
    if kind == "bundled":
        return []
    pair = require_shared("data", "weights", "nanotrack", "v2")
    if kind == "nanotrack_v2":
        return ["-m", "nanotrack_v2", "-w", pair / "nanotrackv2.pth"]
    return ["-m", "nanotrack_v2", "--onnx", pair / "nanotrack_backbone_sim.onnx", pair / "nanotrack_head_sim.onnx"]


@pytest.mark.parametrize("kind", ["bundled", "nanotrack_v2", "onnx_pair"])
@pytest.mark.parametrize("command", ["track", "webcam"])
def test_redetect_tracks_through_a_loss_and_reports(tmp_path, vanishing, kind, command):
    source = ["track", vanishing] if command == "track" else ["webcam", "-c", vanishing, "--no-display"]
    if command == "webcam" and kind != "bundled":
        pytest.skip("the webcam command shares track's loop: one engine is enough there")
    code, _, err = siamcli(*source, "--init", BOX, "-o", "rd.csv", "--redetect", "--lost-threshold", "0.999",
                           *_redetect_args(kind), *(["-q"] if command == "track" else []), cwd=tmp_path)
    assert code == 0, err
    match = TRACKED.fullmatch(line_of(err))
    assert match and match.group(4) == "rd.csv"
    rows = rows_of(tmp_path / "rd.csv")[1:]
    assert len(rows) == int(match.group(1)) == 16
    assert [float(v) for v in rows[0][1:5]] == [40.0, 30.0, 40.0, 40.0]
    states = [r[6] for r in rows]
    assert "lost" in states[5:11]  # the re-detector ran while the square was gone
    assert all(np.isfinite([float(v) for v in r[1:6]]).all() for r in rows)


# -- 2. writes that fail --------------------------------------------------------------------------
def test_a_full_disk_keeps_every_whole_row_of_the_box_file(tmp_path, full_disk, clip):
    folder = full_disk(1)
    code, _, err = siamcli("track", clip, "--init", BOX, "-o", folder / "a.csv", "-q", cwd=tmp_path)
    assert code == 2
    match = re.fullmatch(rf"siamcli: error: cannot write {folder}/a.csv: No space left on device \(ENOSPC\); "
                         r"(\d+) boxes kept in it", line_of(err))
    assert match, err
    text = (folder / "a.csv").read_bytes()
    assert text.endswith(b"\n") and b"\r" not in text
    rows = rows_of(folder / "a.csv")
    assert rows[0] == ["frame", "x", "y", "w", "h", "score", "state"]
    assert len(rows) - 1 == int(match.group(1)) > 10
    assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    assert all(len(r) == 7 for r in rows)


def test_a_full_disk_leaves_a_valid_json_document(tmp_path, full_disk, clip):
    folder = full_disk(1)
    code, _, err = siamcli("track", clip, "--init", BOX, "-o", folder / "a.json", "-q", cwd=tmp_path)
    assert code == 2
    match = re.fullmatch(rf"siamcli: error: cannot write {folder}/a.json: No space left on device \(ENOSPC\); "
                         r"(\d+) boxes kept in it", line_of(err))
    assert match, err
    frames = json.loads((folder / "a.json").read_text())["frames"]
    assert len(frames) == int(match.group(1)) > 5 and frames[0]["box"] == [40.0, 30.0, 40.0, 40.0]


def test_dev_full_is_one_line(tmp_path, frame_folder):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "-o", "/dev/full", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == "siamcli: error: cannot write /dev/full: No space left on device (ENOSPC)"


def test_a_video_that_fills_the_disk_is_removed_and_the_boxes_are_kept(tmp_path, full_disk, clip):
    folder = full_disk(1)
    code, _, err = siamcli("track", clip, "--init", BOX, "-o", "b.csv", "--save-video", folder / "v.mp4", "-q",
                           cwd=tmp_path)
    assert code == 2
    match = re.fullmatch(rf"siamcli: error: cannot write video {folder}/v.mp4: No space left on device "
                         r"\(ENOSPC\); the partial video was removed; (\d+) boxes kept in b.csv", line_of(err))
    assert match, err
    assert not (folder / "v.mp4").exists() and leftovers(folder) == []
    assert len(rows_of(tmp_path / "b.csv")) - 1 == int(match.group(1)) > 0


def test_a_batch_on_a_full_disk_stops_with_one_line_and_resumes(tmp_path, full_disk, clip):
    folder = full_disk(2)  # no room for the trajectory (about 15 kB of JSON), room for the summary
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video,x,y,w,h\n{clip},{BOX}\n")
    out = folder / "out"
    code, _, err = siamcli("batch", manifest, "-o", out, "--format", "json", "-j", "1", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: cannot write {out}/clip.json: No space left on device (ENOSPC); "
                            f"the batch stopped with 0 of 1 videos done, summary: {out}/summary.csv; "
                            "rerun to go on once there is room")
    assert leftovers(folder) == [] and not (out / "clip.json").exists()
    summary = rows_of(out / "summary.csv")
    assert summary[1][0] == "clip" and summary[1][5] == "failed"
    (folder / "filler").unlink()
    code, _, err = siamcli("batch", manifest, "-o", out, "--format", "json", "-j", "1", "-q", cwd=tmp_path)
    assert code == 0, err
    assert len(json.loads((out / "clip.json").read_text())["frames"]) == 150


def test_an_export_to_a_full_disk_leaves_no_partial_file(tmp_path, full_disk):
    folder = full_disk(1)
    code, out, err = siamcli("export", "-o", folder / "ex", cwd=tmp_path)
    assert code == 2 and out == ""
    assert line_of(err) == f"siamcli: error: cannot write {folder}/ex/template.onnx: No space left on device (ENOSPC)"
    assert list((folder / "ex").iterdir()) == []


# -- 3. first boxes that cannot be tracked ------------------------------------------------------
@pytest.mark.parametrize("box,message", [
    ("100,100,0.01,0.01", "box 100,100,0.01,0.01 is smaller than a pixel; width and height must be at least 1"),
    ("0,0,100000,100000", "box 0,0,100000,100000 is far larger than the 320x240 frame (at most 16 times its width, "
                          "height and area); are its coordinates for this source's size?"),
    ("0,0,1e300,1e300", "box 0,0,1e+300,1e+300 is far larger than the 320x240 frame (at most 16 times its width, "
                        "height and area); are its coordinates for this source's size?"),
    ("0,0,inf,20", "box 0,0,inf,20 has a non-finite value"),
])
def test_an_untrackable_first_box_is_refused_before_any_file_is_written(tmp_path, frame_folder, box, message):
    code, _, err = siamcli("track", frame_folder, "--init", box, "-o", "b.csv", "-q", cwd=tmp_path)
    assert code == 2 and line_of(err) == f"siamcli: error: {message}"
    assert not (tmp_path / "b.csv").exists()


# -- 4-6. names, files and signals ----------------------------------------------------------------
def test_a_video_name_longer_than_a_file_name_allows_is_tracked(tmp_path, synthetic_video):
    long_name = tmp_path / ("v" * 246 + ".mp4")
    shutil.copy(synthetic_video, long_name)
    (tmp_path / "m.csv").write_text(f"video,x,y,w,h\n{long_name.name},{BOX}\n")
    code, _, err = siamcli("batch", "m.csv", "-o", "out", "--max-frames", "3", "-q", cwd=tmp_path)
    assert code == 0, err
    summary = rows_of(tmp_path / "out" / "summary.csv")
    assert summary[1][5] == "ok" and summary[1][0] == "v" * 192
    assert len(rows_of(tmp_path / "out" / f"{'v' * 192}.csv")) == 1 + 3


@pytest.fixture()
def binary_sequence(tmp_path, frame_folder) -> Path:
    seq = tmp_path / "seq"
    shutil.copytree(frame_folder, seq / "img")
    (seq / "groundtruth_rect.txt").write_bytes(bytes(range(256)) * 4)
    return seq


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_binary_ground_truth_is_one_line(tmp_path, binary_sequence, command):
    code, _, err = siamcli(command, "seq", "-q" if command == "eval" else "--no-baseline", cwd=tmp_path)
    assert code == 2
    reason = "seq/groundtruth_rect.txt is not a text file (expected lines x,y,w,h)"
    assert line_of(err) == ("siamcli: error: " + ("sequence seq not scored: " if command == "eval" else "") + reason)


def test_threads_are_bounded_by_the_usable_cores(tmp_path, frame_folder):
    cores = len(os.sched_getaffinity(0))
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "--threads", "5000", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: Invalid value for '--threads': 5000 is not between 1 and {cores} "
                            "(the cores siamcli may use here)")


def test_ctrl_c_while_siamcli_starts_is_one_line(tmp_path):
    # the signal is sent from inside the import of rich (the first library siamcli's command line
    # loads), so it lands in the start-up every time, not by a chosen delay
    start = ("import os, signal, sys\n"
             "class Interrupt:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'rich.console':\n"
             "            os.kill(os.getpid(), signal.SIGINT)\n"
             "from siamcli.__main__ import main\n"
             "sys.meta_path.insert(0, Interrupt())\n"
             "main(['models'])\n")
    proc = subprocess.run([sys.executable, "-c", start], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and proc.stdout == ""
    assert line_of(proc.stderr) == "siamcli: interrupted"


# -- 7. outputs never take an input's place, nor each other's -------------------------------------
def test_an_output_named_as_the_source_video_is_refused(tmp_path, synthetic_video):
    source = tmp_path / "src.mp4"
    shutil.copy(synthetic_video, source)
    before = digest(source)
    code, _, err = siamcli("track", "src.mp4", "--init", BOX, "-o", "./src.mp4", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == "siamcli: error: -o src.mp4 would overwrite the input src.mp4; give the output another name"
    assert digest(source) == before


def test_an_output_among_the_source_frames_is_refused(tmp_path, frame_folder):
    frames = tmp_path / "frames"
    shutil.copytree(frame_folder, frames)
    before = digest(frames / "0002.jpg")
    code, _, err = siamcli("track", "frames", "--init", BOX, "-o", "frames/0002.jpg", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == ("siamcli: error: -o frames/0002.jpg would land among the input frames in frames; "
                            "give the output another name or folder")
    assert digest(frames / "0002.jpg") == before and len(list(frames.iterdir())) == 12


def test_two_outputs_of_one_name_are_refused(tmp_path, frame_folder):
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "-o", "x.mp4", "--save-video", "x.mp4", "-q",
                           cwd=tmp_path)
    assert code == 2
    assert line_of(err) == ("siamcli: error: -o x.mp4 and --save-video x.mp4 name the same file; "
                            "give each output its own name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,message", [
    (["-o", "nowhere/b.csv"], "cannot write nowhere/b.csv: folder nowhere does not exist"),
    (["-o", "."], "-o . is a folder; give a file name"),
    (["--save-video", "v.xyz"], "--save-video v.xyz: cannot write a .xyz video; name it .mp4 or .avi "
                                "(.mov, .m4v, .mkv also work)"),
    (["--save-video", "made"], "--save-video made: cannot write a suffix-less video; name it .mp4 or .avi "
                               "(.mov, .m4v, .mkv also work)"),
    (["--save-video", "folder.mp4"], "--save-video folder.mp4 is a folder; give a file name"),
])
def test_outputs_that_cannot_be_written_are_refused_before_the_run(tmp_path, frame_folder, args, message):
    (tmp_path / "made").mkdir()
    (tmp_path / "folder.mp4").mkdir()
    code, _, err = siamcli("track", frame_folder, "--init", BOX, *args, "-q", cwd=tmp_path)
    assert code == 2 and line_of(err) == f"siamcli: error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.mp4", "made"]


def test_a_batch_row_named_summary_does_not_lose_its_trajectory(tmp_path, synthetic_video):
    (tmp_path / "summary.mp4").symlink_to(synthetic_video)
    (tmp_path / "m.csv").write_text(f"video,x,y,w,h,id\nsummary.mp4,{BOX},\n{synthetic_video},{BOX},summary\n")
    code, _, err = siamcli("batch", "m.csv", "-o", "out", "--max-frames", "4", "-q", cwd=tmp_path)
    assert code == 1
    summary = rows_of(tmp_path / "out" / "summary.csv")
    assert summary[0][0] == "id" and [r[0] for r in summary[1:]] == ["summary-2", "line3"]
    assert summary[1][5] == "ok" and len(rows_of(tmp_path / "out" / "summary-2.csv")) == 1 + 4
    assert summary[2][6] == "manifest line 3: id 'summary' is taken by the batch's own summary.csv; choose another"
    code, _, err = siamcli("batch", "m.csv", "-o", "out", "--max-frames", "4", "-q", cwd=tmp_path)
    assert code == 1 and "1 skipped as already complete" in err


def test_a_batch_trajectory_named_as_a_manifest_video_is_refused(tmp_path, synthetic_video):
    shutil.copy(synthetic_video, tmp_path / "src.csv")  # a video whose name ends like a trajectory
    before = digest(tmp_path / "src.csv")
    (tmp_path / "m.csv").write_text(f"video,x,y,w,h\nsrc.csv,{BOX}\n")
    code, _, err = siamcli("batch", "m.csv", "-o", ".", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: the trajectory src.csv would overwrite the input {tmp_path}/src.csv; "
                            "give the output another name")
    assert digest(tmp_path / "src.csv") == before and not (tmp_path / "summary.csv").exists()


def test_eval_checks_its_outputs_before_tracking(tmp_path, frame_folder):
    seq = tmp_path / "seq"
    shutil.copytree(frame_folder, seq / "img")
    (seq / "groundtruth_rect.txt").write_text("".join(f"{x},{y},40,40\n" for x, y in square_path(12)))
    (tmp_path / "results").mkdir()
    code, _, err = siamcli("eval", "seq", "--json", "results", "-q", cwd=tmp_path)
    assert code == 2 and line_of(err) == "siamcli: error: --json results is a folder; give a file name"
    code, _, err = siamcli("eval", "seq", "--json", "seq/groundtruth_rect.txt", "-q", cwd=tmp_path)
    assert code == 2 and line_of(err) == ("siamcli: error: --json seq/groundtruth_rect.txt would overwrite the "
                                          "input seq/groundtruth_rect.txt; give the output another name")
    assert (seq / "groundtruth_rect.txt").read_text().startswith("40,30,40,40\n")


# -- 8. ONNX files and the model they belong to ----------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The bundled default model exported by `siamcli export`."""
    folder = tmp_path_factory.mktemp("exported")
    code, out, err = siamcli("export", "-o", "onnx", cwd=folder)
    assert code == 0, err
    assert out.splitlines() == ["template: onnx/template.onnx", "search: onnx/search.onnx"]
    return folder / "onnx"


def test_exported_files_name_their_model(exported):
    import onnx

    for name in ("template.onnx", "search.onnx"):
        props = {p.key: p.value for p in onnx.load(str(exported / name)).metadata_props}
        assert props == {"siamcli.model": DEFAULT_MODEL, "siamcli.architecture": MODELS[DEFAULT_MODEL].architecture}


def test_onnx_files_without_a_model_run_as_the_model_they_name(tmp_path, exported, frame_folder):
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "--onnx", exported / "template.onnx",
                           exported / "search.onnx", "-o", "b.csv", "-q", cwd=tmp_path)
    assert code == 0, err
    match = TRACKED.fullmatch(line_of(err))
    assert match and match.groups()[:3] == ("12", DEFAULT_MODEL, "onnx-cpu")


@pytest.mark.parametrize("model", ["siamban", "siamrpn_alex_dwxcorr"])
def test_onnx_files_of_another_model_are_refused(tmp_path, exported, frame_folder, model):
    template, search = exported / "template.onnx", exported / "search.onnx"
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "--onnx", template, search, "-m", model,
                           "-o", "b.csv", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: {template} and {search} were exported from model {DEFAULT_MODEL}, "
                            f"not {model}: run them with -m {DEFAULT_MODEL}")
    assert not (tmp_path / "b.csv").exists()


def test_nanotracks_published_pair_without_a_model_says_which_to_add(tmp_path, frame_folder):
    folder = require_shared("data", "weights", "nanotrack", "v2")
    backbone, head = folder / "nanotrack_backbone_sim.onnx", folder / "nanotrack_head_sim.onnx"
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "--onnx", backbone, head, "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: {backbone} and {head} name no model (NanoTrack's published backbone "
                            "and head carry none): add `-m nanotrack_v2`, the version they belong to")


# -- 9. inputs that used to give wrong answers quietly ---------------------------------------------
def test_a_frame_of_another_size_stops_the_run_naming_it(tmp_path, frame_folder):
    frames = tmp_path / "frames"
    shutil.copytree(frame_folder, frames)
    cv2.imwrite(str(frames / "0006.jpg"), cv2.resize(cv2.imread(str(frames / "0006.jpg")), (640, 480)))
    code, _, err = siamcli("track", "frames", "--init", BOX, "-o", "b.csv", cwd=tmp_path)  # progress bar on
    assert code == 2
    assert line_of(err) == ("siamcli: error: frame 5 of frames (0006.jpg) is 640x480, the frames before it 320x240: "
                            "the frames of a sequence must share one size; 5 boxes kept in b.csv")
    assert [r[0] for r in rows_of(tmp_path / "b.csv")[1:]] == ["0", "1", "2", "3", "4"]


def test_weights_holding_nan_are_refused(tmp_path, frame_folder, alex_weights):
    state = torch.load(alex_weights)
    key = sorted(state)[0]
    state[key] = torch.full_like(state[key], float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "-m", "siamrpn_alex_dwxcorr", "-w", "nan.pth",
                           "-o", "b.csv", "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: weights nan.pth hold NaN or infinite values in 1 tensor ({key}): "
                            "a diverged training run?")
    assert not (tmp_path / "b.csv").exists()


def _sequence(root: Path, name: str, frame_folder: Path, boxes: int) -> Path:
    seq = root / name
    shutil.copytree(frame_folder, seq / "img")
    (seq / "groundtruth_rect.txt").write_text("".join(f"{x},{y},40,40\n" for x, y in square_path(boxes)))
    return seq


def test_eval_scores_the_sequences_it_can_and_names_the_others(tmp_path, frame_folder):
    _sequence(tmp_path / "ds", "a_short", frame_folder, 8)  # ground truth for 8 of its 12 frames
    _sequence(tmp_path / "ds", "b_whole", frame_folder, 12)
    (_sequence(tmp_path / "ds", "c_broken", frame_folder, 12) / "img" / "0003.jpg").write_bytes(b"not a jpeg")
    code, out, err = siamcli("eval", "ds", "--json", "r.json", "-q", cwd=tmp_path)
    assert code == 1
    assert err.splitlines() == [
        "warning: sequence a_short: groundtruth_rect.txt has 8 boxes for 12 frames: the frames from 8 on are "
        "neither tracked nor scored",
        "siamcli: error: sequence c_broken not scored: cannot decode frame 2 of sequence c_broken: 0003.jpg",
    ]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [(s["name"], s["frames"]) for s in doc["sequences"]] == [("a_short", 8), ("b_whole", 12)]
    assert doc["failed"] == [{"name": "c_broken", "error": "cannot decode frame 2 of sequence c_broken: 0003.jpg"}]
    assert doc["overall"]["frames"] == 20 and "c_broken" not in out


# -- 10. one line, whatever the libraries print ----------------------------------------------------
def test_a_missing_camera_is_one_line(tmp_path):
    code, _, err = siamcli("webcam", "-c", "99", "--no-display", "--init", BOX, cwd=tmp_path)
    assert code == 2
    assert line_of(err) == "siamcli: error: cannot open camera 99: no such camera, or a stream OpenCV cannot read"


def test_an_empty_video_file_is_one_line(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    code, _, err = siamcli("track", "empty.mp4", "--init", BOX, "-q", cwd=tmp_path)
    assert code == 2
    assert line_of(err) == "siamcli: error: cannot open video empty.mp4: not a video file OpenCV can decode"


def test_a_truncated_jpeg_is_tracked_without_libjpegs_warning(tmp_path, frame_folder):
    frames = tmp_path / "frames"
    shutil.copytree(frame_folder, frames)
    data = (frames / "0004.jpg").read_bytes()
    (frames / "0004.jpg").write_bytes(data[: len(data) * 2 // 3])
    code, _, err = siamcli("track", "frames", "--init", BOX, "-o", "b.csv", "-q", cwd=tmp_path)
    assert code == 0
    assert TRACKED.fullmatch(line_of(err))
    assert len(rows_of(tmp_path / "b.csv")) == 1 + 12


# -- 11. smaller things -----------------------------------------------------------------------------
@pytest.mark.parametrize("device,message", [
    ("tpu", "unknown device 'tpu'; use cpu, cuda, cuda:N, tensorrt (onnx engine) or auto"),
    ("cuda", "device 'cuda' asked for, but there is no CUDA GPU here (torch finds none and onnxruntime has no "
             "GPU provider); use --device cpu or auto"),
])
def test_a_device_that_is_not_there_is_named(tmp_path, frame_folder, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "--device", device, "-q", cwd=tmp_path)
    assert code == 2 and line_of(err) == f"siamcli: error: {message}"


def test_eval_of_a_video_file_says_what_eval_takes(tmp_path, synthetic_video):
    code, _, err = siamcli("eval", synthetic_video, cwd=tmp_path)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: {synthetic_video} is a file: eval scores a folder of OTB-style "
                            "sequences (img/ + groundtruth_rect.txt) or one such sequence; to track a video, "
                            "use `siamcli track`")


def test_models_piped_keeps_every_name_whole(tmp_path):
    from siamcli.catalog import MODELS
    from siamcli.cli_models import COLUMNS

    code, out, err = siamcli("models", cwd=tmp_path, env=dict(os.environ, COLUMNS="80"))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split("\t")[:4] == ["model", "weights", "checkpoint", "family"]
    assert [line.split("\t")[0] for line in lines[1:]] == list(MODELS)
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines)


def test_init_file_with_a_byte_order_mark_and_one_based_boxes(tmp_path, frame_folder):
    (tmp_path / "first.txt").write_bytes("\ufeff41,31,40,40\n".encode("utf-8"))
    code, _, err = siamcli("track", frame_folder, "--init-file", "first.txt", "--one-based", "-o", "b.csv",
                           "--max-frames", "3", "-q", cwd=tmp_path)
    assert code == 0, err
    rows = rows_of(tmp_path / "b.csv")
    assert rows[1][:5] == ["0", "40.0000", "30.0000", "40.0000", "40.0000"] and len(rows) == 1 + 3
    code, _, err = siamcli("track", frame_folder, "--init-file", "first.txt", "-o", "c.csv", "--max-frames", "2",
                           "-q", cwd=tmp_path)
    assert code == 0 and rows_of(tmp_path / "c.csv")[1][1:3] == ["41.0000", "31.0000"]


def test_the_cache_is_one_folder_however_it_is_spelled(tmp_path, frame_folder):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), SIAMCLI_CACHE_DIR="~/cache")
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "-o", "b.csv", "--max-frames", "2", "-q",
                           cwd=tmp_path, env=env)
    assert code == 0, err
    assert (home / "cache" / "choices.json").is_file() and not (tmp_path / "~").exists()
    listed = []
    for spelling in ("~/cache", str(home / "cache"), str(home / ".." / "home" / "cache" / ".")):
        code, out, err = siamcli("cache", cwd=tmp_path, env=dict(env, SIAMCLI_CACHE_DIR=spelling, COLUMNS="200"))
        assert code == 0, err
        listed.append(out)
    assert listed[0] == listed[1] == listed[2]
    assert f"{home}/cache: 1 ONNX exports" in " ".join(listed[0].split())  # the title may wrap
    assert len([line for line in listed[0].splitlines() if DEFAULT_MODEL in line]) == 1


# -- 12. options: --start-frame, batch --max-frames and --save-video --------------------------------
def _iou(a, b) -> float:
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


def test_track_starts_on_the_start_frame(tmp_path, synthetic_video):
    start_box = "{},{},40,40".format(*square_path(24)[10])
    code, _, err = siamcli("track", synthetic_video, "--start-frame", "10", "--init", start_box, "-o", "b.csv",
                           "--save-video", "v.avi", "-q", cwd=tmp_path)
    assert code == 0, err
    assert TRACKED.fullmatch(line_of(err)).group(1) == "14"
    rows = rows_of(tmp_path / "b.csv")[1:]
    assert [int(r[0]) for r in rows] == list(range(10, 24))
    assert [float(v) for v in rows[0][1:5]] == [70.0, 50.0, 40.0, 40.0]
    assert _iou([float(v) for v in rows[-1][1:5]], (*square_path(24)[23], 40, 40)) > 0.5  # still on the square
    assert int(cv2.VideoCapture(str(tmp_path / "v.avi")).get(cv2.CAP_PROP_FRAME_COUNT)) == 14


def test_track_start_frame_with_max_frames_and_past_the_end(tmp_path, frame_folder):
    code, _, err = siamcli("track", frame_folder, "--start-frame", "4", "--init", "{},{},40,40".format(
        *square_path(12)[4]), "-o", "b.csv", "--max-frames", "3", "-q", cwd=tmp_path)
    assert code == 0, err
    assert [r[0] for r in rows_of(tmp_path / "b.csv")[1:]] == ["4", "5", "6"]
    code, _, err = siamcli("track", frame_folder, "--start-frame", "12", "--init", BOX, "-o", "c.csv", "-q",
                           cwd=tmp_path)
    assert code == 2
    assert line_of(err) == f"siamcli: error: start frame 12 is past the end of {frame_folder} (12 frames)"
    assert not (tmp_path / "c.csv").exists()


def test_batch_max_frames_and_videos_per_row(tmp_path, synthetic_video, frame_folder):
    x, y = square_path(24)[5]
    (tmp_path / "m.csv").write_text(f"video,x,y,w,h,start_frame,id\n{synthetic_video},{x},{y},40,40,5,late\n"
                                    f"{frame_folder},{BOX},0,frames\n")
    args = ["batch", "m.csv", "-o", "out", "--max-frames", "4", "--save-video", "videos", "-j", "1", "-q"]
    code, _, err = siamcli(*args, cwd=tmp_path)
    assert code == 0, err
    assert [r[0] for r in rows_of(tmp_path / "out" / "late.csv")[1:]] == ["5", "6", "7", "8"]
    assert [r[0] for r in rows_of(tmp_path / "out" / "frames.csv")[1:]] == ["0", "1", "2", "3"]
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["frames.mp4", "late.mp4"]
    for name in ("frames", "late"):
        capture = cv2.VideoCapture(str(tmp_path / "videos" / f"{name}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
        ok, frame = capture.read()
        assert ok and frame.shape == (240, 320, 3)
    code, _, err = siamcli(*args, cwd=tmp_path)  # all done: nothing redone
    assert code == 0 and "2 skipped as already complete, 0 run" in err
    (tmp_path / "videos" / "late.mp4").unlink()  # a video asked for and missing: that row is redone
    code, _, err = siamcli(*args, cwd=tmp_path)
    assert code == 0 and "1 skipped as already complete, 1 run" in err and (tmp_path / "videos" / "late.mp4").exists()
    code, _, err = siamcli("batch", "m.csv", "-o", "out", "-j", "1", "-q", cwd=tmp_path)  # no limit: redone whole
    assert code == 0 and "0 skipped" in err
    assert len(rows_of(tmp_path / "out" / "frames.csv")) == 1 + 12 and leftovers(tmp_path) == []
