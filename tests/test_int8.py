"""``--precision int8``: the torch engine's convolutions in int8 through oneDNN, calibrated on the first frame."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from siamcli.api import create_tracker
from siamcli.engines.factory import make_engine
from siamcli.engines.int8 import (Int8Conv2d, MaxPool2dUint8, count_int8_convs, onednn_int8_available,
                                  quantize_convs, quantize_uint8)
from siamcli.engines.quantize import calibration_crops
from siamcli.engines.torch_engine import TorchEngine
from siamcli.errors import SiamcliError
from siamcli.eval.datasets import load_sequence
from siamcli.eval.metrics import score_sequence
from siamcli.models.backbones.resnet import Bottleneck
from siamcli.models.registry import build_model
from conftest import require_shared
from test_cli_track import _one_error_line, read_rows, run_cli

pytestmark = pytest.mark.skipif(not onednn_int8_available(), reason="this torch build has no oneDNN int8 convs")


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _random_bn(module: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def test_int8_conv_matches_the_float_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 48, 3, padding=1, dilation=1).eval()
    x = torch.randn(1, 32, 20, 20)
    q = Int8Conv2d(conv, (float(x.min()), float(x.max())))
    with torch.inference_mode():
        got, want = q(x), conv(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    assert rel(got, want) < 0.03
    q.relu = True
    with torch.inference_mode():
        assert rel(q(x), torch.relu(want)) < 0.03
        assert float(q(x).min()) >= 0.0


def test_depthwise_convs_stay_in_float():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3, groups=16), nn.ReLU(),
                        nn.Conv2d(16, 4, 1)).eval()
    x = torch.rand(1, 8, 12, 12)
    q = quantize_convs(net, lambda m: m(x))
    assert [type(m).__name__ for m in q] == ["Int8Conv2d", "Identity", "Conv2d", "ReLU", "Int8Conv2d"]
    assert q[0].relu and q[0].out_quant is None  # the next conv is float: ReLU fused, float output
    with torch.inference_mode():
        assert rel(q(x), net(x)) < 0.05


def test_quantize_uint8_rounds_and_clips():
    x = torch.tensor([-3.0, -0.2, 0.0, 0.26, 1.0, 100.0])
    assert quantize_uint8(x, 0.5, 2).tolist() == [0, 2, 2, 3, 4, 202]
    assert quantize_uint8(x * 10, 0.5, 2).tolist()[-1] == 255


@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (3, 1)])
def test_uint8_max_pool_equals_torch_max_pool(kernel, stride):
    x = torch.randint(0, 256, (1, 8, 23, 19), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    pool = MaxPool2dUint8(nn.MaxPool2d(kernel, stride))
    want = nn.MaxPool2d(kernel, stride)(x.float())
    got = pool(x)
    assert got.dtype == torch.uint8 and torch.equal(got.float(), want)
    assert torch.equal(pool(x.float()), want)  # float input: torch's own pooling


def _real_pairs(spec_name: str, count: int = 6):
    from siamcli.catalog import get_spec

    frame = cv2.imread(str(sorted((require_shared("data", "seqs", "vot16_bag") / "img").iterdir())[0]))
    p = get_spec(spec_name).params
    return frame, calibration_crops([frame], count, p.exemplar_size, p.instance_size, rgb=p.input_order == "rgb")


def test_alex_in_int8_keeps_activations_uint8_between_convs_and_close_to_fp32():
    torch.manual_seed(0)
    model = build_model("siamrpn_alex_dwxcorr")
    _random_bn(model)
    frame, pairs = _real_pairs("siamrpn_alex_dwxcorr")
    fp32 = TorchEngine(model, device="cpu", precision="fp32")
    int8 = TorchEngine(model, device="cpu", precision="int8")
    assert int8.needs_calibration(frame)
    int8.calibrate(pairs[1:], frame)
    assert not int8.needs_calibration(frame.copy())  # same source: calibrated once
    assert int8.needs_calibration(frame[:-8])  # frames of another size: another source
    convs = [m for m in int8.model.modules() if isinstance(m, Int8Conv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules()) == count_int8_convs(int8.model)
    backbone = [m for m in int8.model.backbone.modules() if isinstance(m, Int8Conv2d)]
    assert all(c.out_quant is not None for c in backbone[:-1])  # uint8 from conv to conv
    assert any(isinstance(m, MaxPool2dUint8) for m in int8.model.modules())
    assert not any(isinstance(m, Int8Conv2d) for m in model.modules())  # the caller's network stays float
    z, x = pairs[0]
    want = fp32.track(x, fp32.template(z))
    got = int8.track(x, int8.template(z))
    for g, w in zip(got, want):
        assert g.shape == w.shape and rel(g, w) < 0.15
    fg_g, fg_w = got[0][0, 5:].reshape(-1), want[0][0, 5:].reshape(-1)  # foreground logits of the 5 anchors
    # random weights give a nearly flat map: int8's peak must be (almost) as high in fp32's map
    assert fg_w[np.argmax(fg_g)] >= fg_w.max() - 0.05 * (fg_w.max() - fg_w.min())


def test_bottleneck_chains_its_convs_in_uint8():
    torch.manual_seed(0)
    block = Bottleneck(64, 16).eval()
    _random_bn(block)
    x = torch.randn(2, 64, 15, 15).relu()
    q = quantize_convs(block, lambda m: m(x))
    assert q.conv1.out_quant is not None and q.conv2.out_quant is not None and q.conv3.out_quant is None
    with torch.inference_mode():
        assert rel(q(x), block(x)) < 0.05


def test_int8_engine_refuses_to_run_uncalibrated_and_on_other_engines(capsys, tmp_path, synthetic_video, alex_weights):
    model = build_model("siamrpn_alex_dwxcorr")
    engine = TorchEngine(model, device="cpu", precision="int8")
    with pytest.raises(SiamcliError, match="not calibrated"):
        engine.template(np.zeros((127, 127, 3), np.uint8))
    with pytest.raises(SiamcliError, match="export --int8"):
        make_engine(model, engine="onnx", precision="int8")
    code, _, err = run_cli(["track", synthetic_video, "--model", "siamrpn_alex_dwxcorr", "--weights", alex_weights,
                            "--engine", "onnx", "--precision", "int8", "--init", "40,30,40,40",
                            "-o", tmp_path / "b.csv", "-q"], capsys)
    assert code == 2 and "export --int8" in _one_error_line(err)


@pytest.mark.shared_data
def test_nanotrack_int8_tracks_the_bag_about_as_well_as_fp32():
    """Real weights on a real sequence: int8 (calibrated on the first frame) stays within 0.03 mean IoU of fp32."""
    weights = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    seq = load_sequence(require_shared("data", "seqs", "vot16_bag"))
    frames = [cv2.imread(str(f)) for f in seq.frames[:60]]
    scores = {}
    for precision in ("fp32", "int8"):
        tracker, _ = create_tracker("nanotrack_v2", weights=weights, engine="torch", precision=precision)
        tracker.init(frames[0], seq.groundtruth[0])
        boxes = [seq.groundtruth[0]] + [tracker.update(f).box for f in frames[1:]]
        scores[precision] = score_sequence(np.array(boxes), np.asarray(seq.groundtruth[:60]))["mean_iou"]
    assert scores["fp32"] > 0.6
    assert scores["int8"] > scores["fp32"] - 0.03, scores


def test_track_int8_writes_every_box(tmp_path, capsys, synthetic_video, alex_weights):
    out = tmp_path / "boxes.csv"
    code, _, err = run_cli(["track", synthetic_video, "--model", "siamrpn_alex_dwxcorr", "--weights", alex_weights,
                            "--engine", "torch", "--precision", "int8", "--max-frames", "8",
                            "--init", "40,30,40,40", "-o", out, "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert len(rows) == 1 + 8
    boxes = np.array([[float(v) for v in r[1:5]] for r in rows[1:]])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)
