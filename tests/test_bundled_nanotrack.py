"""NanoTrack's published weights as siamcli ships them: unchanged and recorded (manifest, NOTICE,
licence), the combined nanotrack_v2v3 checkpoint rebuilt byte for byte from them, and the bundled
models tracking alike with and without --weights and on both engines.

Needs no ../shared: the weights are in weights/, the sample clip in siamcli/samples.
"""
from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from siamcli.catalog import DEFAULT_MODEL, MODELS
from siamcli.demo import DEMO_BOX, demo_video

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
NANO_FILES = {"nanotrack_v2": "nanotrackv2.pth", "nanotrack_v3": "nanotrackv3.pth",
              "nanotrack_v2v3": "nanotrackv2v3.pth"}
INIT = ",".join(str(int(v)) for v in DEMO_BOX)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def track(tmp_path: Path, name: str, *options) -> np.ndarray:
    out = tmp_path / f"{name}.csv"
    proc = subprocess.run([sys.executable, "-m", "siamcli", "track", str(demo_video()), "--init", INIT,
                           "--max-frames", "20", "-o", str(out), "-q", *map(str, options)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(out.open()))[1:]
    return np.array([[float(v) for v in row[1:6]] for row in rows])


def test_the_nanotrack_files_are_bundled_with_their_sha256_licence_and_notice():
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())["models"]
    notice = (WEIGHTS / "NOTICE").read_text()
    assert (WEIGHTS / "LICENSE-NanoTrack").read_text().lstrip().startswith("Apache License\n")
    for model, name in NANO_FILES.items():
        assert MODELS[model].bundled == name
        entry = manifest[name]
        assert entry["model"] == model and entry["sha256"] == sha256(WEIGHTS / name)
        assert entry["size_bytes"] == (WEIGHTS / name).stat().st_size
        assert name in notice
    for name in ("nanotrackv2.pth", "nanotrackv3.pth"):
        source = manifest[name]["source"]
        assert source["repository"] == "https://github.com/HonglinChu/SiamTrackers"
        assert source["path"] == f"NanoTrack/models/pretrained/{name}" and source["path"] in notice
        assert source["commit"] in notice


def test_the_combined_checkpoint_is_rebuilt_byte_for_byte(tmp_path):
    out = tmp_path / "nanotrackv2v3.pth"  # torch names the archive's folder after the file
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_nanotrack_v2v3.py"), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sha256(out) == sha256(WEIGHTS / "nanotrackv2v3.pth")


def test_nanotrack_v2v3_is_the_default():
    assert DEFAULT_MODEL == "nanotrack_v2v3" and MODELS[DEFAULT_MODEL].bundled


@pytest.mark.parametrize("model", ["nanotrack_v2", "nanotrack_v3"])
def test_passing_the_bundled_file_as_weights_tracks_the_same(tmp_path, model):
    without = track(tmp_path, model + "_bundled", "-m", model)
    given = track(tmp_path, model + "_given", "-m", model, "-w", WEIGHTS / NANO_FILES[model])
    np.testing.assert_array_equal(without, given)


@pytest.mark.parametrize("model", ["nanotrack_v3", "nanotrack_v2v3"])
def test_onnxruntime_tracks_as_torch_fp32(tmp_path, model):
    onnx = track(tmp_path, model + "_onnx", "-m", model, "--engine", "onnx")
    torch_ = track(tmp_path, model + "_torch", "-m", model, "--engine", "torch")
    np.testing.assert_allclose(onnx[:, :4], torch_[:, :4], atol=0.05)
    np.testing.assert_allclose(onnx[:, 4], torch_[:, 4], atol=1e-3)
