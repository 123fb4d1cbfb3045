"""`siamcli batch --executor ray` on a local Ray: the same files, summary and resume as local workers."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from siamcli.batch import Defaults, RunOptions, read_manifest, run_batch

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'siamcli[ray]' to run these tests")

MODEL = "siamrpn_alex_dwxcorr"


def files(out: Path):
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv")) if p.name != "summary.csv"}


def summary(out: Path):
    with open(out / "summary.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "fps"} for r in csv.DictReader(f)]


def test_ray_executor_matches_local_workers_and_resumes(tmp_path, synthetic_video, frame_folder, alex_weights):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,x,y,w,h\n"
                        f"{synthetic_video},40,30,40,40\n"
                        f"{frame_folder},40,30,40,40\n"
                        f"{tmp_path / 'missing.mp4'},1,1,10,10\n")
    jobs = read_manifest(manifest, Defaults(model=MODEL, weights=str(alex_weights)))
    local = run_batch(jobs, RunOptions(out_dir=str(tmp_path / "local"), threads=1), workers=2)
    on_ray = run_batch(jobs, RunOptions(out_dir=str(tmp_path / "ray"), threads=1), workers=2, executor="ray")
    assert [r["status"] for r in on_ray.records] == ["ok", "ok", "failed"]
    assert on_ray.records[2]["error"] == f"source not found: {tmp_path / 'missing.mp4'}"
    assert files(tmp_path / "ray") == files(tmp_path / "local") and len(files(tmp_path / "ray")) == 2
    assert summary(tmp_path / "ray") == summary(tmp_path / "local")
    assert not ray.is_initialized()  # the local Ray started for the run is stopped again

    again = run_batch(jobs, RunOptions(out_dir=str(tmp_path / "ray"), threads=1), workers=2, executor="ray")
    assert (again.skipped, again.ran) == (2, 1)
