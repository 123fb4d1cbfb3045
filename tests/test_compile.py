"""`--compile`: the torch engine's search branch through torch.compile (inductor, frozen weights)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from siamcli.engines.factory import make_engine
from siamcli.engines.torch_engine import TorchEngine
from siamcli.errors import SiamcliError
from siamcli.catalog import build_model
from test_cli_track import _one_error_line, read_rows, run_cli

needs_compiler = pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                                    reason="torch.compile on a CPU needs a C++ compiler; none found")


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@needs_compiler
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-4), ("bf16", 5e-2)])
def test_compiled_search_branch_matches_eager(precision, tol):
    torch.manual_seed(0)
    model = build_model("siamrpn_alex_dwxcorr")
    rng = np.random.default_rng(0)
    z = rng.integers(0, 256, (127, 127, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (2, 287, 287, 3), dtype=np.uint8)
    eager = TorchEngine(model, device="cpu", precision=precision)
    compiled = TorchEngine(model, device="cpu", precision=precision, compile=True)
    assert compiled.name.endswith("-compiled") and not eager.name.endswith("-compiled")
    ze = eager.join_templates([eager.template(z), eager.template(z[::-1].copy())])
    zc = compiled.join_templates([compiled.template(z), compiled.template(z[::-1].copy())])
    for _ in range(2):  # the second call runs the compiled graph again
        got = compiled.track(x, zc)
    for g, e in zip(got, eager.track(x, ze)):
        assert g.shape == e.shape and rel(g, e) < tol


def test_compile_is_for_the_torch_engine():
    with pytest.raises(SiamcliError, match="torch engine"):
        make_engine(build_model("siamrpn_alex_dwxcorr"), engine="onnx", compile=True)


@needs_compiler
def test_track_with_compile_writes_every_box(tmp_path, capsys, synthetic_video, alex_weights):
    out = tmp_path / "boxes.csv"
    code, _, err = run_cli(["track", synthetic_video, "--model", "siamrpn_alex_dwxcorr", "--weights", alex_weights,
                            "--engine", "torch", "--precision", "fp32", "--compile", "--max-frames", "6",
                            "--init", "40,30,40,40", "-o", out, "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert len(rows) == 1 + 6
    boxes = np.array([[float(v) for v in r[1:5]] for r in rows[1:]])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)


def test_compile_with_onnx_files_is_a_one_line_error(tmp_path, capsys, synthetic_video):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    code, _, err = run_cli(["track", synthetic_video, "--onnx", a, b, "--compile", "--init", "40,30,40,40",
                            "-o", tmp_path / "o.csv", "-q"], capsys)
    assert code == 2
    assert "torch engine" in _one_error_line(err)
