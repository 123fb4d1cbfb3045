"""Every model `siamcli models` lists tracks through `siamcli track` with the default engine: the
bundled ones with no --weights, the others with random weights of their published shapes (their
checkpoints are not redistributable). An engine that cannot be built for a model (an ONNX export
that fails) would show here as a traceback or exit 1.

Needs no ../shared: the sample clip ships with siamcli.
"""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from siamcli.catalog import MODELS, build_model
from siamcli.demo import DEMO_BOX, demo_video

FRAMES = 3


def listed_models():
    proc = subprocess.run([sys.executable, "-m", "siamcli", "models"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.splitlines()[1:] if line.strip()]
    return [cells[0] for cells in lines]


def test_models_lists_every_registered_model():
    assert sorted(listed_models()) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_tracks_through_the_cli_with_the_default_engine(tmp_path, name):
    spec = MODELS[name]
    args = [sys.executable, "-m", "siamcli", "track", str(demo_video()), "-m", name,
            "--init", ",".join(str(int(v)) for v in DEMO_BOX), "-o", str(tmp_path / "boxes.csv"),
            "--max-frames", str(FRAMES), "-q"]
    if spec.bundled is None:
        torch.manual_seed(0)
        weights = tmp_path / f"{name}.pth"
        torch.save(build_model(name).state_dict(), weights)
        args += ["-w", str(weights)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    rows = list(csv.reader(open(tmp_path / "boxes.csv")))
    assert rows[0][:5] == ["frame", "x", "y", "w", "h"]
    assert [int(r[0]) for r in rows[1:]] == list(range(FRAMES))
    boxes = np.array([[float(v) for v in r[1:5]] for r in rows[1:]])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)
    assert boxes[0].tolist() == list(DEMO_BOX)
    if spec.bundled is not None:  # real weights: the walker stays inside the box's neighbourhood
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        first = np.array(DEMO_BOX[:2]) + np.array(DEMO_BOX[2:]) / 2
        assert np.all(np.abs(centres - first) < 60), boxes
