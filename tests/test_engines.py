"""Engines: torch (fp32 / bf16 / fp16, CUDA graphs), onnxruntime (siamcli export, NanoTrack ONNX pair), make_engine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import require_shared
from siamcli.engines.factory import candidates, choose_engine, make_engine, verified_precisions
from siamcli.engines.onnx_engine import OnnxEngine, OnnxPairEngine, providers_for
from siamcli.engines.onnx_engine import free_spatial_input
from siamcli.engines.torch_engine import TorchEngine
from siamcli.errors import SiamcliError
from siamcli.engines.onnx_export import export_onnx_bytes
from siamcli.catalog import build_model
from test_export import real_crops, relative_error

NO_CUDA = "no CUDA GPU"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)


def nano_paths():
    folder = require_shared("data", "weights", "nanotrack", "v2")
    return folder / "nanotrackv2.pth", folder / "nanotrack_backbone_sim.onnx", folder / "nanotrack_head_sim.onnx"


@pytest.fixture(scope="module")
def nanotrack():
    from siamcli.models.checkpoint import load_weights

    pth, _, _ = nano_paths()
    model = build_model("nanotrack_v2")
    load_weights(model, pth, "nanotrack_v2")
    return model


@pytest.fixture(scope="module")
def alex():
    torch.manual_seed(0)
    return build_model("siamrpn_alex_dwxcorr")


def random_patches(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# -- torch ---------------------------------------------------------------------------------
def test_fp16_on_cpu_is_a_user_error(alex):
    with pytest.raises(SiamcliError, match="fp16 needs a CUDA GPU"):
        TorchEngine(alex, device="cpu", precision="fp16")


def test_cuda_graphs_on_cpu_is_a_user_error(alex):
    with pytest.raises(SiamcliError, match="CUDA graphs need a CUDA GPU"):
        TorchEngine(alex, device="cpu", cuda_graphs=True)


def test_unknown_precision_and_bad_thread_count_are_user_errors(alex):
    with pytest.raises(SiamcliError, match="unknown precision"):
        TorchEngine(alex, device="cpu", precision="int4")
    with pytest.raises(SiamcliError, match="threads must be at least 1"):
        TorchEngine(alex, device="cpu", threads=0)


@pytest.mark.shared_data
def test_bf16_outputs_stay_close_to_fp32_on_a_real_crop(nanotrack):
    z, x = real_crops(255)
    fp32 = TorchEngine(nanotrack, device="cpu")
    bf16 = TorchEngine(nanotrack, device="cpu", precision="bf16")
    cls32, loc32 = fp32.track(x, fp32.template(z))
    cls16, loc16 = bf16.track(x, bf16.template(z))
    assert cls16.dtype == np.float32 and cls16.shape == cls32.shape == (1, 2, 16, 16)
    # bf16 keeps 8 mantissa bits (loc comes out rounded to ~0.4 %, errors add up through the layers);
    # the best candidate stays where fp32 puts it. Tracking accuracy: tools/accuracy_table.py
    assert relative_error(loc16, loc32) < 0.1
    fg32, fg16 = cls32[0, 1] - cls32[0, 0], cls16[0, 1] - cls16[0, 0]
    assert np.unravel_index(fg16.argmax(), fg16.shape) == np.unravel_index(fg32.argmax(), fg32.shape)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_torch_batch_of_searches_with_their_own_templates_equals_one_by_one(alex, precision):
    engine = TorchEngine(alex, device="cpu", precision=precision)
    z, x = random_patches(3, 127, seed=1), random_patches(3, 287, seed=2)
    zf = engine.template(z)
    cls, loc = engine.track(x, zf)
    assert cls.shape == (3, 10, 21, 21) and loc.shape == (3, 20, 21, 21)
    for i in range(3):
        one_cls, one_loc = engine.track(x[i], engine.template(z[i]))
        tol = 1e-4 if precision == "fp32" else 5e-2
        assert relative_error(cls[i:i + 1], one_cls) < tol
        assert relative_error(loc[i:i + 1], one_loc) < tol


def test_join_templates_stacks_single_target_features(alex):
    engine = TorchEngine(alex, device="cpu")
    z, x = random_patches(2, 127, seed=3), random_patches(2, 287, seed=4)
    joined = engine.join_templates([engine.template(z[0]), engine.template(z[1])])
    batch_cls, _ = engine.track(x, joined)
    assert relative_error(batch_cls[1:], engine.track(x[1], engine.template(z[1]))[0]) < 1e-4


@cuda
def test_fp16_on_cuda_stays_close_to_fp32(alex):
    z, x = random_patches(1, 127)[0], random_patches(1, 287, seed=5)[0]
    fp32 = TorchEngine(alex, device="cuda")
    fp16 = TorchEngine(alex, device="cuda", precision="fp16")
    assert relative_error(fp16.track(x, fp16.template(z))[1], fp32.track(x, fp32.template(z))[1]) < 0.05


@cuda
def test_cuda_graph_replay_matches_eager_and_follows_a_new_template(alex):
    eager = TorchEngine(alex, device="cuda")
    graphs = TorchEngine(alex, device="cuda", cuda_graphs=True)
    z, x = random_patches(2, 127, seed=6), random_patches(2, 287, seed=7)
    for i in range(2):  # second template: the graph must read the new features
        zf = graphs.template(z[i])
        for _ in range(2):
            got = graphs.track(x[i], zf)
            want = eager.track(x[i], eager.template(z[i]))
            assert relative_error(got[0], want[0]) < 1e-3 and relative_error(got[1], want[1]) < 1e-3


# -- onnxruntime ---------------------------------------------------------------------------
def test_cpu_provider_and_missing_cuda_provider():
    import onnxruntime as ort

    assert providers_for("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(SiamcliError, match="onnxruntime-gpu"):
            providers_for("cuda")
        assert providers_for("auto") == ["CPUExecutionProvider"]
    with pytest.raises(SiamcliError, match="unknown device"):
        providers_for("tpu")


@pytest.mark.shared_data
def test_onnx_engine_matches_torch_engine_on_real_crops(nanotrack):
    z, x = real_crops(255)
    onnx = OnnxEngine(*export_onnx_bytes(nanotrack), device="cpu", threads=2)
    ref = TorchEngine(nanotrack, device="cpu")
    got, want = onnx.track(x, onnx.template(z)), ref.track(x, ref.template(z))
    assert relative_error(got[0], want[0]) < 1e-4 and relative_error(got[1], want[1]) < 1e-4


def test_onnx_engine_batch_equals_one_by_one(alex):
    engine = OnnxEngine(*export_onnx_bytes(alex, instance_size=287), device="cpu")
    z, x = random_patches(3, 127, seed=8), random_patches(3, 287, seed=9)
    zf = engine.template(z)
    assert zf[0].shape[0] == 3
    cls, loc = engine.track(x, zf)
    assert cls.shape == (3, 10, 21, 21)
    joined = engine.join_templates([engine.template(z[i]) for i in range(3)])
    for i in range(3):
        one = engine.track(x[i], engine.template(z[i]))
        assert relative_error(cls[i:i + 1], one[0]) < 1e-4 and relative_error(loc[i:i + 1], one[1]) < 1e-4
    assert relative_error(engine.track(x, joined)[0], cls) < 1e-5


def test_onnx_engine_rejects_mismatched_graphs(alex, nanotrack):
    alex_t, _ = export_onnx_bytes(alex)
    _, nano_s = export_onnx_bytes(nanotrack)
    with pytest.raises(SiamcliError, match="do not match"):
        OnnxEngine(alex_t, nano_s, device="cpu")


def test_onnx_engine_loads_a_multi_level_export_whose_template_sizes_are_symbolic():
    """The l234 models crop their template features with a Slice, which the exporter leaves with
    symbolic sizes; the search graph declares them 7x7. The pair must still load and run."""
    torch.manual_seed(0)
    model = build_model("siamrpn_mobilev2_l234_dwxcorr").eval()
    template, search = export_onnx_bytes(model)
    engine = OnnxEngine(template, search, device="cpu", threads=2)
    z, x = real_crops(255)
    cls, loc = engine.track(x, engine.template(z))
    with torch.no_grad():
        want_cls, want_loc = model.forward(torch.from_numpy(np.ascontiguousarray(z.transpose(2, 0, 1)[None],
                                                                                 dtype=np.float32)),
                                           torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None],
                                                                                 dtype=np.float32)))
    assert relative_error(cls, want_cls.numpy()) < 1e-4 and relative_error(loc, want_loc.numpy()) < 1e-4


def test_onnx_engine_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(SiamcliError, match="ONNX file not found"):
        OnnxEngine(tmp_path / "template.onnx", tmp_path / "search.onnx", device="cpu")


# -- NanoTrack's published ONNX pair ---------------------------------------------------------
@pytest.mark.shared_data
def test_published_backbone_input_becomes_free_in_height_and_width():
    _, backbone, _ = nano_paths()
    data = backbone.read_bytes()
    freed, declared = free_spatial_input(data)
    assert declared == [1, 3, 255, 255]
    assert free_spatial_input(freed)[1] == [1, 3, "height", "width"]


@pytest.mark.shared_data
def test_onnx_pair_gives_the_pth_outputs_on_real_crops(nanotrack):
    _, backbone, head = nano_paths()
    z, x = real_crops(255)
    pair = OnnxPairEngine(backbone, head, device="cpu")
    ref = TorchEngine(nanotrack, device="cpu")
    zf = pair.template(z)
    assert zf[0].shape == (1, 48, 8, 8)  # the 127 template ran through the 255-declared backbone
    got, want = pair.track(x, zf), ref.track(x, ref.template(z))
    assert relative_error(got[0], want[0]) < 1e-4 and relative_error(got[1], want[1]) < 1e-4


@pytest.mark.shared_data
def test_onnx_pair_refuses_a_wider_search_with_a_clear_message():
    _, backbone, head = nano_paths()
    pair = OnnxPairEngine(backbone, head, device="cpu")
    zf = pair.template(random_patches(1, 127)[0])
    with pytest.raises(SiamcliError, match="siamcli export"):
        pair.track(random_patches(1, 319)[0], zf)


@pytest.mark.shared_data
@pytest.mark.parametrize("seq", ["otb_Crossing", "uav123_10fps_wakeboard7"])
def test_onnx_pair_tracks_like_the_pth(seq):
    from siamcli.api import create_tracker
    from siamcli.eval.datasets import load_sequence
    from siamcli.eval.runner import track_sequence

    pth, backbone, head = nano_paths()
    sequence = load_sequence(require_shared("data", "seqs", seq))
    ref, _ = create_tracker(model="nanotrack_v2", weights=pth)
    pair, _ = create_tracker(model="nanotrack_v2", onnx_files=(backbone, head))
    assert isinstance(pair.engine, OnnxPairEngine)
    want = track_sequence(ref, sequence).metrics["mean_iou"]
    got = track_sequence(pair, sequence).metrics["mean_iou"]
    assert abs(got - want) <= 0.01


# -- make_engine -----------------------------------------------------------------------------
def test_reduced_precision_needs_a_recorded_accuracy_check():
    table = {"good": {"fp32": {"mean_iou": 0.70}, "bf16": {"mean_iou": 0.695}},
             "bad": {"fp32": {"mean_iou": 0.70}, "bf16": {"mean_iou": 0.68}}}
    assert verified_precisions("good", table) == ["fp32", "bf16"]
    assert verified_precisions("bad", table) == ["fp32"]
    assert verified_precisions("unknown", table) == ["fp32"]


def test_auto_candidates_respect_fixed_engine_and_precision():
    assert ("torch", "bf16") not in candidates("auto", "auto", "never-checked", "cpu")
    assert candidates("onnx", "auto", None, "cpu") == [("onnx", "fp32")]
    assert candidates("torch", "fp32", None, "cpu") == [("torch", "fp32")]
    assert candidates("torch", "bf16", None, "cpu") == [("torch", "bf16")]  # explicit requests are honoured


def test_make_engine_auto_probes_and_returns_a_working_engine(alex):
    engine, probe = choose_engine(alex, engine="auto", precision="auto", device="cpu", probe_runs=2,
                                  instance_size=287)
    assert set(probe.ms) == {"onnx-fp32", "torch-fp32"} and not probe.remembered  # bf16 is not verified here
    cls, loc = engine.track(random_patches(1, 287)[0], engine.template(random_patches(1, 127)[0]))
    assert cls.shape == (1, 10, 21, 21)


def test_make_engine_user_errors(alex):
    with pytest.raises(SiamcliError, match="unknown engine"):
        make_engine(alex, engine="tensorflow")
    with pytest.raises(SiamcliError, match="fp32 only"):
        make_engine(alex, engine="onnx", precision="bf16", device="cpu")
    with pytest.raises(SiamcliError, match="siamcli export --int8"):
        make_engine(alex, engine="torch", precision="int8", device="cpu")


def test_create_tracker_keeps_its_old_signature_and_takes_engine_options(alex_weights, frame_folder):
    import cv2

    from siamcli.api import create_tracker

    frames = sorted(frame_folder.iterdir())
    for kwargs in ({}, {"engine": "onnx", "precision": "fp32"}, {"engine": "torch", "precision": "bf16"}):
        tracker, spec = create_tracker("siamrpn_alex_dwxcorr", None, alex_weights, "cpu", **kwargs)
        tracker.init(cv2.imread(str(frames[0])), (40, 30, 40, 40))
        result = tracker.update(cv2.imread(str(frames[1])))
        assert len(result.box) == 4 and np.isfinite(result.box).all()
