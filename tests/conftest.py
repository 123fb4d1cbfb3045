"""Shared fixtures: paths to ../shared/data, synthetic videos and random-weight checkpoints."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
REFERENCE = SHARED / "reference"
NEEDS_SHARED = "needs ../shared/data and ../shared/reference beside the project (real sequences, videos, weights)"

# the tests start from an empty start-up cache of their own (siamcli.engines.startup_cache), never the user's;
# subprocesses inherit it. It holds hundreds of MB of exports by the end: removed when the run ends
os.environ["SIAMCLI_CACHE_DIR"] = tempfile.mkdtemp(prefix="siamcli-test-cache-")
atexit.register(shutil.rmtree, os.environ["SIAMCLI_CACHE_DIR"], ignore_errors=True)


def require_shared(*parts: str) -> Path:
    """Path under ../shared, or skip the test saying it needs the shared data."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{NEEDS_SHARED}: {path} is missing")
    return path


def textured_frame(width: int, height: int, x: int, y: int, size: int, seed: int = 0) -> np.ndarray:
    """Grey noisy background with a bright textured square at (x, y)."""
    rng = np.random.default_rng(seed)
    frame = np.full((height, width, 3), 90, np.uint8)
    frame += rng.integers(0, 30, frame.shape, dtype=np.uint8)
    pattern = np.zeros((size, size, 3), np.uint8)
    pattern[: size // 2, : size // 2] = (20, 40, 230)
    pattern[size // 2:, size // 2:] = (230, 200, 20)
    pattern[: size // 2, size // 2:] = (250, 250, 250)
    pattern[size // 2:, : size // 2] = (10, 10, 10)
    frame[y:y + size, x:x + size] = pattern
    return frame


def square_path(n: int, width: int = 320, height: int = 240, size: int = 40):
    """Top-left corners of a square moving diagonally, one per frame."""
    return [(40 + 3 * i, 30 + 2 * i) for i in range(n)]


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    """A 24-frame 320x240 mp4 of a square moving 3 px right and 2 px down per frame."""
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for i, (x, y) in enumerate(square_path(24)):
        writer.write(textured_frame(320, 240, x, y, 40, seed=i))
    writer.release()
    return path


@pytest.fixture(scope="session")
def frame_folder(tmp_path_factory) -> Path:
    """The same motion as 12 numbered JPEG frames."""
    folder = tmp_path_factory.mktemp("frames")
    for i, (x, y) in enumerate(square_path(12)):
        cv2.imwrite(str(folder / f"{i + 1:04d}.jpg"), textured_frame(320, 240, x, y, 40, seed=i))
    return folder


@pytest.fixture(scope="session")
def alex_weights(tmp_path_factory) -> Path:
    """A plain state dict of siamrpn_alex_dwxcorr with random weights (seeded)."""
    from siamcli.catalog import build_model

    torch.manual_seed(0)
    model = build_model("siamrpn_alex_dwxcorr")
    path = tmp_path_factory.mktemp("weights") / "alex_random.pth"
    torch.save(model.state_dict(), path)
    return path
