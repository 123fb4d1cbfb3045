"""ONNX export: the two graphs run under onnxruntime give the torch model's outputs on real crops."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import require_shared
from siamcli.errors import SiamcliError
from siamcli.export import export_onnx
from siamcli.catalog import build_model
from siamcli.tracking.crop import channel_mean, context_size, crop_patch


def real_crops(instance_size: int, seq: str = "otb_Crossing", frame: int = 10):
    """Template crop of the first frame's box and a search crop of a later frame, as the tracker takes them."""
    folder = require_shared("data", "seqs", seq)
    from siamcli.eval.datasets import load_sequence

    seq = load_sequence(folder)
    gt = seq.groundtruth
    first, later = cv2.imread(str(seq.frames[0])), cv2.imread(str(seq.frames[frame]))
    x, y, w, h = gt[0]
    center = (x + (w - 1) / 2, y + (h - 1) / 2)
    s_z = context_size(w, h, 0.5)
    avg = channel_mean(first)
    z = crop_patch(first, center, 127, round(s_z), avg)
    search = crop_patch(later, center, instance_size, round(s_z * instance_size / 127), avg)
    return z, search


def nchw(patch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


def check_parity(model, out_dir, instance_size: int) -> None:
    import onnxruntime as ort

    paths = export_onnx(model, out_dir, instance_size=instance_size)
    assert paths["template"].is_file() and paths["search"].is_file()
    z, x = real_crops(instance_size)
    t_sess = ort.InferenceSession(str(paths["template"]), providers=["CPUExecutionProvider"])
    s_sess = ort.InferenceSession(str(paths["search"]), providers=["CPUExecutionProvider"])
    zf = t_sess.run(None, {"z": nchw(z)})
    cls, loc = s_sess.run(["cls", "loc"], {"x": nchw(x), **{f"zf{i}": a for i, a in enumerate(zf)}})
    with torch.no_grad():
        want_cls, want_loc = model.forward(torch.from_numpy(nchw(z)), torch.from_numpy(nchw(x)))
    assert cls.shape == tuple(want_cls.shape) and loc.shape == tuple(want_loc.shape)
    assert relative_error(cls, want_cls.numpy()) < 1e-4
    assert relative_error(loc, want_loc.numpy()) < 1e-4


@pytest.mark.shared_data
def test_alex_parity_weights_export_matches_torch_on_real_crops(tmp_path):
    from siamcli.models.checkpoint import load_weights

    weights = require_shared("reference", "parity", "siamrpn_alex_dwxcorr_random.pth")
    model = build_model("siamrpn_alex_dwxcorr")
    load_weights(model, weights, "siamrpn_alex_dwxcorr")
    check_parity(model, tmp_path, 287)


@pytest.mark.shared_data
def test_nanotrack_v2_real_weights_export_matches_torch_on_real_crops(tmp_path):
    from siamcli.models.checkpoint import load_weights

    weights = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    model = build_model("nanotrack_v2")
    load_weights(model, weights, "nanotrack_v2")
    check_parity(model, tmp_path, 255)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["siamrpn_mobilev2_l234_dwxcorr", "siamban_r50_l234"])
def test_multi_level_random_weights_export_matches_torch_on_real_crops(tmp_path, name):
    torch.manual_seed(0)
    check_parity(build_model(name), tmp_path, 255)


def test_exported_search_graph_takes_wider_search_patches(tmp_path):
    """The search input's height and width are free, so re-detection's wider patches run too."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model("nanotrack_v2")
    paths = export_onnx(model, tmp_path)
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 255, (1, 3, 127, 127)).astype(np.float32)
    x = rng.uniform(0, 255, (1, 3, 319, 319)).astype(np.float32)
    zf = ort.InferenceSession(str(paths["template"])).run(None, {"z": z})
    cls, _ = ort.InferenceSession(str(paths["search"])).run(None, {"x": x, "zf0": zf[0]})
    with torch.no_grad():
        want, _ = model.forward(torch.from_numpy(z), torch.from_numpy(x))
    assert cls.shape == tuple(want.shape) == (1, 2, 20, 20)
    assert relative_error(cls, want.numpy()) < 1e-4


def test_export_leaves_the_model_in_eval_mode(tmp_path):
    model = build_model("siamrpn_alex_dwxcorr")
    export_onnx(model, tmp_path)
    assert not any(m.training for m in model.modules())


def test_export_to_a_file_path_is_a_user_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(SiamcliError, match="not a folder"):
        export_onnx(build_model("siamrpn_alex_dwxcorr"), target)


def test_export_command_writes_both_graphs(tmp_path, alex_weights):
    from siamcli.cli_export import export_cmd

    out = tmp_path / "onnx"
    result = CliRunner().invoke(export_cmd, ["siamrpn_alex_dwxcorr", "-w", str(alex_weights), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "template.onnx").stat().st_size > 1000
    assert (out / "search.onnx").stat().st_size > 1000
    assert "template:" in result.output


def test_export_command_with_mismatched_weights_exits_2_with_one_line(tmp_path, alex_weights, capsys):
    from siamcli.cli import main

    with pytest.raises(SystemExit) as done:
        main(["export", "nanotrack_v2", "-w", str(alex_weights), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith("siamcli: error: ") and "do not fit model nanotrack_v2" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.shared_data
def test_int8_export_quantizes_the_backbone_and_keeps_the_peak(tmp_path):
    """`siamcli export --int8`: int8 convolutions calibrated on a real video; the correlation
    (its kernel is the template-features input) stays fp32; on real crops the score peak is
    where the fp32 graph puts it."""
    import onnx
    import onnxruntime as ort

    from siamcli.cli_export import export_cmd
    from siamcli.engines.onnx_engine import OnnxEngine
    from siamcli.engines.quantize import dynamic_kernel_convs

    video = require_shared("data", "videos", "pysot_bag.avi")
    out = tmp_path / "onnx"
    result = CliRunner().invoke(export_cmd, ["siamrpn", "-o", str(out), "--int8", str(video),
                                             "--calibration-crops", "12"])
    assert result.exit_code == 0, result.output
    assert "search_int8:" in result.output
    model = onnx.load(str(out / "search_int8.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10
    # the correlation Convs (kernels from the template-features input) keep their fp32 inputs
    fp32_model = onnx.load(str(out / "search.onnx"))
    names = dynamic_kernel_convs(fp32_model)
    before = {n.name: list(n.input) for n in fp32_model.graph.node if n.name in names}
    after = {n.name: list(n.input) for n in model.graph.node if n.name in names}
    assert names and after == before
    assert not any("DequantizeLinear" in i for inputs in after.values() for i in inputs)
    assert sum(n.op_type == "Conv" and "DequantizeLinear" in n.input[1] for n in model.graph.node) > 10
    assert (out / "search_int8.onnx").stat().st_size < 0.5 * (out / "search.onnx").stat().st_size

    z, x = real_crops(255)
    z, x = z[..., ::-1], x[..., ::-1]  # the bundled models take RGB
    fp32 = OnnxEngine(out / "template.onnx", out / "search.onnx", device="cpu", threads=1)
    int8 = OnnxEngine(out / "template.onnx", out / "search_int8.onnx", device="cpu", threads=1)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    zf = fp32.template(np.ascontiguousarray(z))
    (c32, l32), (c8, l8) = fp32.track(np.ascontiguousarray(x), zf), int8.track(np.ascontiguousarray(x), zf)
    score32, score8 = c32[0, 1] - c32[0, 0], c8[0, 1] - c8[0, 0]
    assert np.unravel_index(score8.argmax(), score8.shape) == np.unravel_index(score32.argmax(), score32.shape)
    assert not np.allclose(c8, c32)  # it is a different (quantized) graph
    assert np.corrcoef(score8.ravel(), score32.ravel())[0, 1] > 0.9


def test_int8_export_with_an_unreadable_calibration_source_exits_2(tmp_path, capsys):
    from siamcli.cli import main

    junk = tmp_path / "notes.txt"
    junk.write_text("not a video")
    with pytest.raises(SystemExit) as done:
        main(["export", "siamrpn", "-o", str(tmp_path / "o"), "--int8", str(junk)])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith("siamcli: error: ") and len(err.strip().splitlines()) == 1


def test_precision_int8_points_to_the_int8_export_and_runs_its_files(tmp_path, capsys, synthetic_video):
    """int8 runs on onnxruntime from `siamcli export --int8`: asking a checkpoint for int8 says so in one
    line; the exported int8 files run with --precision int8, fp32 files are refused for it."""
    from siamcli.cli import main
    from test_cli_track import _one_error_line, read_rows

    with pytest.raises(SystemExit) as done:
        main(["track", str(synthetic_video), "-m", "siamrpn", "--precision", "int8", "--init", "40,30,40,40",
              "-o", str(tmp_path / "a.csv"), "-q"])
    assert done.value.code == 2 and "siamcli export --int8" in _one_error_line(capsys.readouterr().err)
    out = tmp_path / "onnx"
    main(["export", "siamrpn", "-o", str(out), "--int8", str(synthetic_video), "--calibration-crops", "4"])
    capsys.readouterr()
    boxes = tmp_path / "b.csv"
    main(["track", str(synthetic_video), "--onnx", str(out / "template.onnx"), str(out / "search_int8.onnx"),
          "--precision", "int8", "--init", "40,30,40,40", "--max-frames", "5", "-o", str(boxes), "-q"])
    assert "onnx-cpu" in capsys.readouterr().err and len(read_rows(boxes)) == 1 + 5
    with pytest.raises(SystemExit) as done:
        main(["track", str(synthetic_video), "--onnx", str(out / "template.onnx"), str(out / "search.onnx"),
              "--precision", "int8", "--init", "40,30,40,40", "-o", str(tmp_path / "c.csv"), "-q"])
    assert done.value.code == 2 and "runs in fp32, not int8" in _one_error_line(capsys.readouterr().err)
