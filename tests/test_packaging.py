"""What `pip install siamcli` gets: every subpackage, the bundled weights and their manifest, the
sample clip, accuracy.json and py.typed, found wherever pip puts the package (here: --target)."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from siamcli.catalog import BUNDLED, DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_lists_every_folder_of_python_modules():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "siamcli").rglob("*.py")}
    assert folders <= listed, f"add {sorted(folders - listed)} to [options] packages in setup.cfg"
    for folder in folders:
        assert (ROOT / folder.replace(".", "/") / "__init__.py").is_file(), f"{folder} has no __init__.py"
    assert listed - folders == {"siamcli.weights"}  # data only, mapped from weights/


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return next(out.glob("siamcli-*.whl"))


def test_the_wheel_holds_the_code_weights_and_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("siamcli/tracking/__init__.py", "siamcli/tracking/tracker.py", "siamcli/py.typed",
                 "siamcli/engines/accuracy.json", "siamcli/weights/manifest.json", *(f"siamcli/weights/{s.bundled}" for s in BUNDLED),
                 "siamcli/weights/LICENSE-NanoTrack", "siamcli/weights/NOTICE", "siamcli/samples/walker.mp4",
                 "siamcli/samples/README.md"):
        assert name in names, name
    assert not [n for n in names if n.startswith(("tests/", "docs/", "scripts/", "weights/"))]


def test_an_install_with_pip_target_finds_the_weights_and_tracks_the_sample_clip(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    check = ("import siamcli, siamcli.bundled as b, siamcli.catalog as c, siamcli.demo as d, siamcli.engines.factory as f; "
             "print(siamcli.__file__); print(b.weights_dir()); "
             "print([b.bundled_weights(s.bundled).name for s in c.BUNDLED]); "
             "print(d.demo_video()); print(sorted(f.accuracy_table()))")
    proc = subprocess.run([sys.executable, "-c", check], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    package, weights, bundled, demo, accuracy = proc.stdout.splitlines()
    assert package == str(target / "siamcli" / "__init__.py")
    assert weights == str(target / "siamcli" / "weights") and demo.startswith(str(target))
    assert bundled == str([s.bundled for s in BUNDLED]) and "nanotrack_v2" in accuracy
    proc = subprocess.run([sys.executable, "-m", "siamcli", "track", "--demo", "--max-frames", "5", "-o", "d.csv"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"tracked 5 frames with {DEFAULT_MODEL}" in proc.stderr and len((tmp_path / "d.csv").read_text().splitlines()) == 6
