"""`siamcli batch`: manifest parsing, whole outputs, resume, failures recorded, workers agree."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from siamcli.batch import Defaults, RunOptions, read_manifest, run_batch
from siamcli.batch.run import remove_stale_temporaries
from siamcli.batch.worker import STATE_DIR
from siamcli.cli_batch import batch_cmd
from siamcli.errors import SiamcliError
from conftest import ROOT, square_path, textured_frame

MODEL = "siamrpn_alex_dwxcorr"


def rows_of(path: Path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def summary_of(out: Path):
    with open(out / "summary.csv", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def trajectories(out: Path):
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv")) if p.name != "summary.csv"}


def write_manifest(path: Path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """60 frames of the moving square (so a killed run is caught half-way)."""
    path = tmp_path_factory.mktemp("longvideo") / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for i, (x, y) in enumerate(square_path(60)):
        writer.write(textured_frame(320, 240, x % 260, y % 190, 40, seed=i))
    writer.release()
    return path


@pytest.fixture()
def otb_folder(tmp_path, frame_folder) -> Path:
    """Two OTB-style sequences: img/ + groundtruth_rect.txt (the second one starts on frame 2)."""
    root = tmp_path / "seqs"
    for name, skip in (("alpha", 0), ("beta", 2)):
        img = root / name / "img"
        img.mkdir(parents=True)
        lines = []
        for i, (x, y) in enumerate(square_path(12)):
            (img / f"{i + 1:04d}.jpg").write_bytes((frame_folder / f"{i + 1:04d}.jpg").read_bytes())
            lines.append("0,0,0,0" if i < skip else f"{x},{y},40,40")
        (root / name / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return root


# -- manifest ------------------------------------------------------------------------
def test_manifest_rows_become_jobs_with_unique_ids_and_paths_relative_to_the_manifest(tmp_path):
    (tmp_path / "w.pth").write_bytes(b"")
    m = write_manifest(tmp_path / "m.csv", [
        "video,x,y,w,h,start_frame,model,weights,id",
        "clips/a.mp4,1,2,30,40,,,,",
        "clips/a.mp4,1,2,30,40,5,,,",
        "/abs/b.avi,1.5,2,30,40,0,nanotrack_v2,w.pth,bee",
        "# a comment line",
        "",
    ])
    jobs = read_manifest(m, Defaults(model=MODEL, weights="/x/alex.pth"))
    assert [j.id for j in jobs] == ["a", "a-2", "bee"]
    assert jobs[0].video == str(tmp_path / "clips" / "a.mp4")
    assert jobs[0].box == (1.0, 2.0, 30.0, 40.0) and jobs[0].model == MODEL and jobs[0].weights == "/x/alex.pth"
    assert jobs[1].start_frame == 5
    assert jobs[2].model == "nanotrack_v2" and jobs[2].weights == str(tmp_path / "w.pth")
    assert all(j.error is None for j in jobs)


def test_malformed_manifest_rows_are_kept_as_failed_jobs_with_their_line(tmp_path):
    m = write_manifest(tmp_path / "m.csv", [
        "video,x,y,w,h,model",
        "a.mp4,1,2,3",
        "b.mp4,1,2,three,4,",
        "c.mp4,1,2,3,4,siamban_r50_l234",
        "d.mp4,1,2,3,4,",
    ])
    jobs = read_manifest(m, Defaults(model=MODEL, weights="alex.pth"))
    errors = [j.error for j in jobs]
    assert errors[0].startswith("manifest line 2: expected 6 fields")
    assert errors[1] == "manifest line 3: w is not a number: 'three'"
    assert errors[2].startswith("manifest line 4: model siamban_r50_l234 needs weights")
    assert errors[3] is None


@pytest.mark.parametrize("header, message", [
    ("video,x,y,w", "missing column(s) h"),
    ("video,x,y,w,h,colour", "unknown column(s) colour"),
])
def test_manifest_with_bad_header_is_a_user_error(tmp_path, header, message):
    m = write_manifest(tmp_path / "m.csv", [header, "a.mp4,1,2,3,4,5"])
    with pytest.raises(SiamcliError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(m)


def test_missing_manifest_is_a_user_error(tmp_path):
    with pytest.raises(SiamcliError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_folder_of_sequences_starts_each_on_its_first_annotated_box(otb_folder):
    jobs = read_manifest(otb_folder, Defaults(model=MODEL, weights="w.pth"))
    assert [(j.id, j.start_frame) for j in jobs] == [("alpha", 0), ("beta", 2)]
    x, y = square_path(12)[2]
    assert jobs[1].box == (x, y, 40.0, 40.0)


def test_batch_writes_whole_trajectories_and_a_summary(tmp_path, synthetic_video, otb_folder, alex_weights):
    m = write_manifest(tmp_path / "m.csv", [
        "video,x,y,w,h,start_frame,id",
        f"{synthetic_video},40,30,40,40,,square",
        f"{synthetic_video},49,36,40,40,3,square_from3",
    ])
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(out), "-m", MODEL, "-w", str(alex_weights), "-q"])
    assert result.exit_code == 0, result.output
    rows = rows_of(out / "square.csv")
    assert rows[0][:6] == ["frame", "x", "y", "w", "h", "score"]
    assert len(rows) == 1 + 24 and rows[1][:5] == ["0", "40.0000", "30.0000", "40.0000", "40.0000"]
    later = rows_of(out / "square_from3.csv")
    assert [r[0] for r in later[1:]] == [str(i) for i in range(3, 24)]
    summary = summary_of(out)
    assert list(summary) == ["square", "square_from3"]
    assert summary["square"]["status"] == "ok" and summary["square"]["frames"] == "24"
    assert 0.0 <= float(summary["square"]["mean_score"]) <= 1.0 and summary["square"]["error"] == ""
    assert not list(out.glob("*.tmp")) and not list((out / STATE_DIR).glob("*.tmp"))

    seqs = CliRunner().invoke(batch_cmd, [str(otb_folder), "-o", str(tmp_path / "seqout"), "-m", MODEL,
                                          "-w", str(alex_weights), "-q"])
    assert seqs.exit_code == 0, seqs.output
    assert len(rows_of(tmp_path / "seqout" / "alpha.csv")) == 1 + 12
    assert rows_of(tmp_path / "seqout" / "beta.csv")[1][0] == "2"


def test_broken_rows_are_recorded_and_the_others_finish(tmp_path, synthetic_video, alex_weights):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video\n")
    m = write_manifest(tmp_path / "m.csv", [
        "video,x,y,w,h,id",
        f"{synthetic_video},40,30,40,40,good",
        f"{tmp_path / 'missing.mp4'},1,1,10,10,missing",
        f"{synthetic_video},900,700,40,40,outside",
        f"{not_video},1,1,10,10,not_video",
        f"{synthetic_video},1,2,3",
        f"{synthetic_video},40,30,40,40,good_too",
    ])
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(out), "-m", MODEL, "-w", str(alex_weights),
                                            "--jobs", "2", "-q"])
    assert result.exit_code == 1, result.output
    summary = summary_of(out)
    assert {k: v["status"] for k, v in summary.items()} == {
        "good": "ok", "missing": "failed", "outside": "failed", "not_video": "failed", "square": "failed",
        "good_too": "ok"}
    errors = {k: v["error"] for k, v in summary.items()}
    assert errors["missing"] == f"source not found: {tmp_path / 'missing.mp4'}"
    assert errors["outside"] == "box 900,700,40,40 lies outside the 320x240 frame"
    assert errors["not_video"].startswith(f"cannot open video {not_video}")
    assert errors["square"].startswith("manifest line 6: expected 6 fields")
    assert sorted(p.name for p in out.glob("*.csv")) == ["good.csv", "good_too.csv", "summary.csv"]
    assert "2 of 6 videos done" in result.output


def test_rerun_skips_finished_videos_and_redoes_the_rest(tmp_path, synthetic_video, alex_weights):
    lines = ["video,x,y,w,h,id"] + [f"{synthetic_video},40,30,40,40,v{i}" for i in range(3)]
    m = write_manifest(tmp_path / "m.csv", lines)
    out = tmp_path / "out"
    jobs = read_manifest(m, Defaults(model=MODEL, weights=str(alex_weights)))
    opts = RunOptions(out_dir=str(out), threads=1)
    first = run_batch(jobs, opts)
    assert (first.skipped, first.ran, first.ok) == (0, 3, True)
    before = trajectories(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("v*.csv")}

    again = run_batch(jobs, opts)
    assert (again.skipped, again.ran) == (3, 0)
    assert {p: p.stat().st_mtime_ns for p in out.glob("v*.csv")} == stamps

    # a crash between the trajectory's rename and its record: that video is redone
    (out / STATE_DIR / "v1.json").unlink()
    # a half-written temporary of a dead process is cleared
    (out / ".v2.csv.999999999.tmp").write_text("frame,x\n0,")
    third = run_batch(jobs, opts)
    assert (third.skipped, third.ran) == (2, 1)
    assert trajectories(out) == before and not list(out.glob("*.tmp"))

    # a changed box is a different job: redone, not reused
    moved = read_manifest(write_manifest(tmp_path / "m2.csv", lines[:1] + [
        f"{synthetic_video},41,30,40,40,v0"]), Defaults(model=MODEL, weights=str(alex_weights)))
    assert run_batch(moved, opts).ran == 1
    assert json.loads((out / STATE_DIR / "v0.json").read_text())["fingerprint"] == moved[0].fingerprint("csv")


def test_stale_temporaries_of_live_processes_are_left_alone(tmp_path):
    mine = tmp_path / f".a.csv.{os.getpid()}.tmp"
    dead = tmp_path / ".b.csv.999999999.tmp"
    mine.write_text("x")
    dead.write_text("x")
    assert remove_stale_temporaries(tmp_path) == 1
    assert mine.exists() and not dead.exists()


def test_two_workers_give_the_same_files_as_one(tmp_path, synthetic_video, frame_folder, alex_weights):
    m = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h"] + [
        f"{synthetic_video},40,30,40,40", f"{frame_folder},40,30,40,40", f"{synthetic_video},43,32,40,40"])
    jobs = read_manifest(m, Defaults(model=MODEL, weights=str(alex_weights)))
    one = run_batch(jobs, RunOptions(out_dir=str(tmp_path / "one"), threads=1), workers=1)
    two = run_batch(jobs, RunOptions(out_dir=str(tmp_path / "two"), threads=1), workers=2)
    assert one.ok and two.ok
    assert trajectories(tmp_path / "one") == trajectories(tmp_path / "two")
    assert len(trajectories(tmp_path / "one")) == 3


def test_a_run_killed_with_sigkill_resumes_with_whole_files(tmp_path, long_video, alex_weights):
    n = 6
    m = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h"] + [f"{long_video},40,30,40,40"] * n)
    out = tmp_path / "out"
    script = ("import sys\nfrom siamcli.cli import cli, main\nfrom siamcli.cli_batch import batch_cmd\n"
              "cli.commands.setdefault('batch', batch_cmd)\nif __name__ == '__main__':\n    main(sys.argv[1:])\n")
    runner = tmp_path / "run_siamcli.py"
    runner.write_text(script)
    cmd = [sys.executable, str(runner), "batch", str(m), "-o", str(out), "-m", MODEL, "-w", str(alex_weights),
           "--jobs", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + str(ROOT / "tests")}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    state = out / STATE_DIR
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_dir() and any(p.suffix == ".json" for p in state.iterdir()):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch process and its workers, as a hard kill would
    proc.wait()
    finished = sorted(p.stem for p in state.glob("*.json"))
    for path in out.glob("*.csv"):  # every trajectory under its final name is whole
        assert len(rows_of(path)) == 1 + 60, path.name

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} skipped as already complete, {n - len(finished)} run" in rerun.stderr
    reference = run_batch(read_manifest(m, Defaults(model=MODEL, weights=str(alex_weights))),
                          RunOptions(out_dir=str(tmp_path / "ref"), threads=1))
    assert reference.ok and trajectories(out) == trajectories(tmp_path / "ref")


def test_aspect_lr_per_row_or_batch_wide_keeps_or_frees_the_box_shape(tmp_path, synthetic_video, alex_weights):
    """An aspect_lr cell applies to its row, --aspect-lr to rows that leave it empty; 0 keeps the first
    box's aspect on every frame, the model's own update (none given) changes it; a value out of [0, 1]
    fails that row only; a changed aspect_lr is a different job on rerun."""
    m = write_manifest(tmp_path / "m.csv", [
        "video,x,y,w,h,aspect_lr,id",
        f"{synthetic_video},40,30,40,30,0,kept",
        f"{synthetic_video},40,30,40,30,,own",
        f"{synthetic_video},40,30,40,30,1.5,bad",
    ])
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(out), "-m", MODEL, "-w", str(alex_weights),
                                            "--jobs", "1", "-q"])
    assert result.exit_code == 1, result.output
    summary = summary_of(out)
    assert summary["bad"]["error"] == "manifest line 4: aspect_lr must lie in [0, 1], got '1.5'"
    ratios = {}
    for name in ("kept", "own"):
        rows = list(csv.DictReader((out / f"{name}.csv").open()))
        assert len(rows) == 24 and summary[name]["status"] == "ok"
        ratios[name] = np.array([float(r["w"]) / float(r["h"]) for r in rows])
    assert np.allclose(ratios["kept"], 40 / 30, rtol=1e-4)
    assert np.abs(ratios["own"] / (40 / 30) - 1).max() > 0.01

    # the batch-wide option fills the empty cell: "own" is now a different job, "kept" is unchanged
    again = tmp_path / "again"
    outputs = []
    for run_out in (out, again):
        result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(run_out), "-m", MODEL, "-w", str(alex_weights),
                                                "--jobs", "1", "-q", "--aspect-lr", "0"])
        assert result.exit_code == 1, result.output
        outputs.append(result.output)
    assert "(1 skipped as already complete, 2 run, 1 failed)" in outputs[0]  # "kept" reused, "own" redone
    rows = list(csv.DictReader((again / "own.csv").open()))
    assert np.allclose([float(r["w"]) / float(r["h"]) for r in rows], 40 / 30, rtol=1e-4)
    jobs = {j.id: j for j in read_manifest(m, Defaults(model=MODEL, weights=str(alex_weights)))}
    wide = {j.id: j for j in read_manifest(m, Defaults(model=MODEL, weights=str(alex_weights), aspect_lr=0.0))}
    assert (jobs["kept"].aspect_lr, jobs["own"].aspect_lr, wide["own"].aspect_lr) == (0.0, None, 0.0)
    assert jobs["kept"].fingerprint("csv") == wide["kept"].fingerprint("csv")
    assert jobs["own"].fingerprint("csv") != wide["own"].fingerprint("csv")
    assert (out / "own.csv").read_bytes() == (again / "own.csv").read_bytes()  # the rerun redid it


def test_aspect_lr_option_out_of_range_is_a_usage_error(tmp_path, synthetic_video):
    m = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h", f"{synthetic_video},40,30,40,40"])
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(tmp_path / "out"), "--aspect-lr", "-0.1"])
    assert result.exit_code == 2 and "--aspect-lr" in result.output


def test_batch_without_a_model_uses_the_bundled_default(tmp_path, synthetic_video):
    from siamcli.bundled import weights_dir

    if weights_dir() is None:
        pytest.skip("weights/ holds no bundled models")
    m = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h", f"{synthetic_video},40,30,40,40"])
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(tmp_path / "out"), "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.output
    summary = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert [r["status"] for r in summary] == ["ok"] and int(summary[0]["frames"]) == 24


def test_batch_model_without_weights_is_a_user_error(tmp_path, synthetic_video):
    m = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h", f"{synthetic_video},40,30,40,40"])
    result = CliRunner().invoke(batch_cmd, [str(m), "-o", str(tmp_path / "out"), "-m", "siamrpn_alex_dwxcorr"])
    assert isinstance(result.exception, SiamcliError)
    assert "needs --weights" in str(result.exception)


def test_warnings_of_finished_videos_are_in_the_summary_and_printed(tmp_path, synthetic_video, alex_weights):
    """A first box mostly outside the frame is tracked all the same: status ok, the warning in
    the error column and on the console."""
    lines = ["video,x,y,w,h,id", f"{synthetic_video},300,220,200,100,outside", f"{synthetic_video},40,30,40,40,inside"]
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_cmd, [str(write_manifest(tmp_path / "m.csv", lines)), "-o", str(out),
                                            "-m", MODEL, "-w", str(alex_weights), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    summary = summary_of(out)
    assert summary["outside"]["status"] == summary["inside"]["status"] == "ok"
    assert summary["outside"]["error"] == ("warning: box 300,220,200,100 lies mostly outside the 320x240 first "
                                           "frame (2.0 % of it inside); are its coordinates for this source's size?")
    assert summary["inside"]["error"] == ""
    assert len(rows_of(out / "outside.csv")) == 1 + 24
    assert "outside: warning: box 300,220,200,100" in " ".join(result.output.split())


@pytest.mark.shared_data
def test_a_damaged_video_in_a_batch_keeps_its_boxes_with_a_warning(tmp_path, alex_weights):
    from conftest import require_shared

    tree = require_shared("data", "videos", "opencv_tree.avi")  # cut off by its source after frame 67
    out = tmp_path / "out"
    manifest = write_manifest(tmp_path / "m.csv", ["video,x,y,w,h,id", f"{tree},120,60,60,80,tree"])
    result = CliRunner().invoke(batch_cmd, [str(manifest), "-o", str(out), "-m", MODEL, "-w", str(alex_weights), "-q"])
    assert result.exit_code == 0, result.output
    row = summary_of(out)["tree"]
    assert row["status"] == "ok" and row["frames"] == "68" and len(rows_of(out / "tree.csv")) == 1 + 68
    assert row["error"].startswith("warning: decoding stopped after 68 of the 444 frames")
