"""Every kind of file and stream siamcli reads, made bad on purpose and given as a user gives it.

Checkpoints, YAML configs, ONNX files, ground truth, frame folders, box files, the start-up
cache's remembered choices and bench's frame counts: bad content is one line on stderr and exit
code 2 (or, where the content has a meaning, the run it means), never a traceback, a library's
warning, a run that blocks or a quietly wrong result. The bad files are built here.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_shared
from test_adversarial import BOX, TRACKED, line_of, rows_of, siamcli

ALEX = ("-m", "siamrpn_alex_dwxcorr")
#: the torch engine in fp32: no probe, no export, so a refusal or a run takes seconds
TORCH = ("--engine", "torch", "--precision", "fp32")


def _track(tmp_path, *args, timeout=300):
    return siamcli("track", *args, "-o", "b.csv", "-q", cwd=tmp_path, timeout=timeout)


# -- checkpoints --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def alex_state(alex_weights):
    return torch.load(alex_weights)


def _first_float(state) -> str:
    return sorted(k for k, v in state.items() if v.is_floating_point())[0]


def _quantized(t):
    with warnings.catch_warnings():  # torch's deprecation notice for making quantized tensors
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(t, 0.1, 0, torch.quint8)


@pytest.mark.parametrize("kind,change,described", [
    ("sparse", lambda t: t.to_sparse(), "a sparse tensor (sparse_coo)"),
    ("float8", lambda t: t.to(torch.float8_e4m3fn), "of dtype float8_e4m3fn"),
    ("meta", lambda t: t.to("meta"), "a meta tensor, which holds no values"),
    ("quantized", _quantized, "a quantized tensor (quint8)"),
    ("complex", lambda t: t.to(torch.complex64), "of dtype complex64"),
    ("bool", lambda t: t > 0, "of dtype bool"),
    ("expanded", lambda t: torch.zeros(1).expand(t.shape), "a view of 96 values over a storage of 4 bytes"),
])
def test_a_tensor_that_is_not_dense_real_weights_is_refused_by_name(tmp_path, frame_folder, alex_state, kind,
                                                                    change, described):
    key = _first_float(alex_state)
    torch.save({**alex_state, key: change(alex_state[key])}, tmp_path / "bad.pth")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *ALEX, "-w", "bad.pth", *TORCH)
    assert code == 2
    assert line_of(err) == (f"siamcli: error: weights bad.pth: tensor {key} is {described}; a checkpoint holds "
                            "dense float32 (or float16/bfloat16) weights, as torch.save(model.state_dict(), path) "
                            "writes them")
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int64])
def test_integer_weights_are_refused_where_the_model_holds_floats(tmp_path, frame_folder, alex_state, dtype):
    torch.save({k: (v * 100).to(dtype) if v.is_floating_point() else v for k, v in alex_state.items()},
               tmp_path / "int.pth")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *ALEX, "-w", "int.pth", *TORCH)
    assert code == 2
    name = str(dtype).replace("torch.", "")
    first = next(k for k, v in alex_state.items() if v.is_floating_point())  # the first the checkpoint holds
    assert line_of(err) == (f"siamcli: error: weights int.pth: tensor {first} is of dtype {name}, "
                            "where model siamrpn_alex_dwxcorr holds floating-point weights; re-save the checkpoint "
                            "with its float32 weights")


@pytest.mark.parametrize("form", ["half", "bfloat16", "legacy"])
def test_half_bfloat16_and_legacy_checkpoints_track_as_their_float32_values_quietly(tmp_path, frame_folder, alex_state,
                                                                                  form):
    dtype = {"half": torch.float16, "bfloat16": torch.bfloat16, "legacy": torch.float32}[form]
    given = {k: v.to(dtype) if v.is_floating_point() else v for k, v in alex_state.items()}
    # the same values in float32, in today's format: what the given checkpoint must load as
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in given.items()}, tmp_path / "f.pth")
    torch.save(given, tmp_path / "w.pth", _use_new_zipfile_serialization=form != "legacy")
    for name in ("w", "f"):
        code, _, err = siamcli("track", frame_folder, "--init", BOX, *ALEX, "-w", f"{name}.pth", *TORCH,
                               "--max-frames", "4", "-o", f"{name}.csv", "-q", cwd=tmp_path)
        assert code == 0 and TRACKED.fullmatch(line_of(err)), err  # the summary line alone: no torch warning
    assert rows_of(tmp_path / "w.csv") == rows_of(tmp_path / "f.csv")


def _zip_bomb(path: Path, inflated_mib: int) -> None:
    """A checkpoint of one small tensor plus a deflated entry of zeros that inflates to ``inflated_mib``."""
    torch.save({"w": torch.zeros(4)}, path.with_suffix(".plain"))
    with zipfile.ZipFile(path.with_suffix(".plain")) as plain, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in plain.infolist():
            out.writestr(info.filename, plain.read(info.filename))
        prefix = plain.infolist()[0].filename.split("/")[0]
        with out.open(f"{prefix}/data/1", "w", force_zip64=True) as entry:
            for _ in range(inflated_mib):
                entry.write(bytes(1 << 20))


def test_a_zip_bomb_checkpoint_is_refused_before_it_inflates(tmp_path, frame_folder):
    _zip_bomb(tmp_path / "bomb.pth", 256)
    size = (tmp_path / "bomb.pth").stat().st_size
    assert size < 1 << 20  # 256 MiB of zeros deflate to a few hundred kB
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *ALEX, "-w", "bomb.pth", *TORCH)
    assert code == 2
    line = line_of(err)
    assert line.startswith(f"siamcli: error: bomb.pth is not loaded: its {size:,} bytes inflate to ")
    assert line.endswith(f"(more than the {4 * size + (1 << 20):,} a checkpoint of this size may hold)")


def test_an_expanded_view_of_a_billion_values_is_refused_before_it_is_made(tmp_path, frame_folder, alex_state):
    torch.save({**alex_state, "spare": torch.zeros(1).expand(10 ** 9)}, tmp_path / "view.pth")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *ALEX, "-w", "view.pth", *TORCH)
    assert code == 2
    assert line_of(err).startswith("siamcli: error: weights view.pth: tensor spare is a view of 1,000,000,000 values "
                                   "over a storage of 4 bytes; ")


def test_a_fifo_as_weights_is_refused_without_waiting_for_a_writer(tmp_path, frame_folder):
    os.mkfifo(tmp_path / "w.pth")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *ALEX, "-w", "w.pth", timeout=120)
    assert code == 2
    assert line_of(err) == "siamcli: error: weights file w.pth is not a regular file (a pipe, socket or device)"


# -- YAML configs -------------------------------------------------------------------------------
ALEX_CONFIG = """META_ARC: siamrpn_alex_dwxcorr
BACKBONE:
  TYPE: alexnetlegacy
  KWARGS:
    width_mult: 1.0
ADJUST:
  ADJUST: false
RPN:
  TYPE: DepthwiseRPN
  KWARGS:
    anchor_num: 5
    in_channels: 256
    out_channels: 256
ANCHOR:
  STRIDE: 8
  RATIOS: [0.33, 0.5, 1, 2, 3]
  SCALES: [8]
  ANCHOR_NUM: 5
TRACK:
  TYPE: SiamRPNTracker
  PENALTY_K: 0.16
  WINDOW_INFLUENCE: 0.40
  LR: 0.30
  EXEMPLAR_SIZE: 127
  INSTANCE_SIZE: 287
  BASE_SIZE: 0
  CONTEXT_AMOUNT: 0.5
"""


def _alias_bomb(levels: int) -> str:
    """Ten aliases a level: ``levels`` levels stand for 10^levels values in under 2 kB."""
    lines = ["  a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return ALEX_CONFIG + "\n".join(lines) + "\n"


@pytest.mark.parametrize("content,reason", [
    (ALEX_CONFIG + "  DEEP: " + "[" * 10_000 + "]" * 10_000 + "\n",
     "is refused: it nests lists or mappings more than 64 levels deep"),
    (_alias_bomb(8), "is refused: its aliases expand it to more than 100,000 values"),
    (_alias_bomb(9), "is refused: its aliases expand it to more than 100,000 values"),
    (ALEX_CONFIG.replace("TRACK:\n", "TRACK: &t\n") + "  SELF: *t\n",
     "is refused: an alias names a node that contains it (a recursive structure)"),
    (ALEX_CONFIG + "  LR2: " + "7" * 5000 + "\n",
     "is not a valid YAML file (Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits;"),
    (ALEX_CONFIG + "  OBJ: !!python/object/apply:os.system ['echo hi']\n",
     "is not a valid YAML file (ConstructorError at line 28)"),
])
def test_a_config_beyond_the_bounds_is_one_line(tmp_path, frame_folder, alex_weights, content, reason):
    (tmp_path / "config.yaml").write_text(content)
    assert len(content) < 25_000
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--config", "config.yaml", "-w", alex_weights,
                          *TORCH, timeout=120)
    assert code == 2
    assert line_of(err).startswith(f"siamcli: error: config.yaml {reason}")
    assert "hi" not in err


def test_a_config_too_large_or_a_fifo_is_refused_before_it_is_read(tmp_path, frame_folder, alex_weights):
    (tmp_path / "big.yaml").write_text(ALEX_CONFIG + "#" * (1 << 20) + "\n")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--config", "big.yaml", "-w", alex_weights)
    assert code == 2
    size = (tmp_path / "big.yaml").stat().st_size
    assert line_of(err) == (f"siamcli: error: config file big.yaml is {size / 2**20:.4g} MiB, more than the 1 MiB "
                            "siamcli reads")
    os.mkfifo(tmp_path / "fifo.yaml")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--config", "fifo.yaml", "-w", alex_weights,
                          timeout=120)
    assert code == 2
    assert line_of(err) == "siamcli: error: config file fifo.yaml is not a regular file (a pipe, socket or device)"


def test_a_config_describing_a_huge_network_is_refused_before_the_network_is_made(tmp_path, frame_folder,
                                                                                  alex_weights):
    # 200,000 output channels: the RPN's kernels alone would take gigabytes
    (tmp_path / "huge.yaml").write_text(ALEX_CONFIG.replace("    out_channels: 256", "    out_channels: 200000"))
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--config", "huge.yaml", "-w", alex_weights, *TORCH)
    assert code == 2
    line = line_of(err)
    assert line.startswith(f"siamcli: error: weights {alex_weights} do not fit model siamrpn_alex_dwxcorr: ")
    assert "rpn_head.cls.conv_kernel.0.weight [256, 256, 3, 3] vs [200000, 256, 3, 3]" in line


def test_a_config_with_aliases_within_the_bounds_tracks_as_its_plain_form(tmp_path, frame_folder, alex_weights):
    (tmp_path / "plain.yaml").write_text(ALEX_CONFIG)
    (tmp_path / "aliased.yaml").write_text(ALEX_CONFIG.replace("  KWARGS:\n    anchor_num: 5\n",
                                                               "  KWARGS: &rpn\n    anchor_num: 5\n")
                                           + "  SPARE: *rpn\n")
    rows = []
    for name in ("plain", "aliased"):
        code, _, err = siamcli("track", frame_folder, "--init", BOX, "--config", f"{name}.yaml", "-w", alex_weights,
                               *TORCH, "--max-frames", "4", "-o", f"{name}.csv", "-q", cwd=tmp_path)
        assert code == 0, err
        rows.append(rows_of(tmp_path / f"{name}.csv"))
    assert rows[0] == rows[1] and len(rows[0]) == 5


def test_the_start_up_cache_key_holds_the_network_sections_only(tmp_path):
    from siamcli.catalog import spec_from_config

    (tmp_path / "a.yaml").write_text(ALEX_CONFIG)
    (tmp_path / "b.yaml").write_text(ALEX_CONFIG.replace("LR: 0.30", "LR: 0.35") + "  NOTE: [" + "1, " * 5000 + "1]\n")
    a, b = spec_from_config(tmp_path / "a.yaml"), spec_from_config(tmp_path / "b.yaml")
    assert a.params.lr == 0.30 and b.params.lr == 0.35
    assert a.network_config == b.network_config  # the tracker's settings are no part of the exported network
    assert "TRACK" not in a.network_config and a.network_config["BACKBONE"]["TYPE"] == "alexnetlegacy"


# -- ONNX files ---------------------------------------------------------------------------------
def _graph(path: Path, inputs, outputs, matmuls: int = 0, metadata=None) -> Path:
    """A small valid ONNX graph declaring these (name, shape) inputs and outputs; ``matmuls``
    MatMul nodes (what tells NanoTrack's heads apart)."""
    import onnx
    from onnx import TensorProto, helper

    def value(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes = [helper.make_node("Identity", [inputs[0][0]], [name]) for name, _ in outputs]
    nodes += [helper.make_node("MatMul", [inputs[0][0], inputs[-1][0]], [f"mm{i}"]) for i in range(matmuls)]
    graph = helper.make_graph(nodes, "g", [value(*i) for i in inputs], [value(*o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 7
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _nanotrack_pair(folder: Path, channels: int, matmuls: int, score: int):
    """Graphs declaring the inputs and outputs of NanoTrack's published backbone and head."""
    folder.mkdir(exist_ok=True)
    backbone = _graph(folder / "backbone.onnx", [("input", [1, 3, 255, 255])], [("output", [1, channels, 16, 16])])
    head = _graph(folder / "head.onnx", [("input1", [1, channels, 8, 8]), ("input2", [1, channels, 16, 16])],
                  [("output1", [1, 2, score, score]), ("output2", [1, 4, score, score])], matmuls)
    return backbone.relative_to(folder.parent), head.relative_to(folder.parent)


@pytest.fixture()
def pairs(tmp_path):
    return {"v1": _nanotrack_pair(tmp_path / "v1", 48, 1, 16), "v2": _nanotrack_pair(tmp_path / "v2", 48, 2, 16),
            "v3": _nanotrack_pair(tmp_path / "v3", 96, 2, 15)}


def _export_pair(folder: Path, feature: int = 128, model: str = "siamrpn"):
    folder.mkdir(exist_ok=True)
    labels = {"siamcli.model": model, "siamcli.architecture": "siamrpn_lite0x1"}
    template = _graph(folder / "template.onnx", [("z", ["n", 3, 127, 127])], [("zf0", ["n", feature, 4, 4])],
                      metadata=labels)
    search = _graph(folder / "search.onnx", [("x", [1, 3, "height", "width"]), ("zf0", [1, feature, 4, 4])],
                    [("cls", [1, 2, "h", "w"]), ("loc", [1, 4, "h", "w"])], metadata=labels)
    return template.relative_to(folder.parent), search.relative_to(folder.parent)


def test_nanotracks_pair_with_another_model_is_refused_naming_nanotrack(tmp_path, frame_folder, pairs):
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", "siamrpn", "--onnx", *pairs["v2"])
    assert code == 2
    assert line_of(err) == ("siamcli: error: v2/backbone.onnx and v2/head.onnx are NanoTrack's published backbone and "
                            "head (nanotrack_v2), not files of siamrpn: run them with -m nanotrack_v2")
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("version,model", [("v3", "nanotrack_v2"), ("v2", "nanotrack_v1"), ("v1", "nanotrack_v3")])
def test_another_nanotrack_versions_pair_is_refused_naming_its_version(tmp_path, frame_folder, pairs, version, model):
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", model, "--onnx", *pairs[version])
    assert code == 2
    assert line_of(err) == (f"siamcli: error: {version}/backbone.onnx and {version}/head.onnx are the published "
                            f"backbone and head of nanotrack_{version}, not of {model}: run them with "
                            f"-m nanotrack_{version}")


def test_a_pair_given_in_the_wrong_order_is_said_to_be_swapped(tmp_path, frame_folder, pairs):
    template, search = _export_pair(tmp_path / "exp")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--onnx", search, template)
    assert code == 2
    assert line_of(err) == ("siamcli: error: exp/search.onnx is the search graph of a `siamcli export` and "
                            "exp/template.onnx is the template graph of a `siamcli export`: they are given in the "
                            "wrong order; give --onnx exp/template.onnx exp/search.onnx")
    backbone, head = pairs["v2"]
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", "nanotrack_v2", "--onnx", head, backbone)
    assert code == 2
    assert line_of(err) == ("siamcli: error: v2/head.onnx is a NanoTrack head and v2/backbone.onnx is a NanoTrack "
                            "backbone: they are given in the wrong order; give --onnx v2/backbone.onnx v2/head.onnx")


def test_files_of_two_pairs_garbage_and_strangers_are_one_line(tmp_path, frame_folder, pairs):
    (tmp_path / "garbage.onnx").write_bytes(b"garbage\n")
    template, _ = _export_pair(tmp_path / "a", feature=128)
    _, search = _export_pair(tmp_path / "b", feature=256)
    cases = [
        (("-m", "nanotrack_v2", "--onnx", pairs["v2"][0], pairs["v3"][1]),
         "v2/backbone.onnx gives 48-channel features and v3/head.onnx takes 96-channel ones: the backbone and head "
         "of two different NanoTrack pairs"),
        (("--onnx", "garbage.onnx", search), "garbage.onnx is not a valid ONNX model ("),
        (("--onnx", template, search), "a/template.onnx and b/search.onnx come from different exports: the search "
         "graph takes zf0 [1, 256, 4, 4], the template graph gives zf0 ['n', 128, 4, 4]; give the template.onnx and "
         "search.onnx of one `siamcli export`"),
        (("-m", "nanotrack_v2", "--onnx", template, pairs["v2"][1]),
         "a/template.onnx is the template graph of a `siamcli export` and v2/head.onnx is a NanoTrack head: not a pair "
         "siamcli runs; give template.onnx and search.onnx of one `siamcli export`, or NanoTrack's backbone.onnx and "
         "head.onnx, in that order"),
    ]
    for args, message in cases:
        code, _, err = _track(tmp_path, frame_folder, "--init", BOX, *args)
        assert code == 2, err
        assert line_of(err).startswith("siamcli: error: " + message), err


def test_onnx_files_with_weights_are_a_contradiction(tmp_path, frame_folder, alex_weights):
    template, search = _export_pair(tmp_path / "exp")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--onnx", template, search, "-w", alex_weights)
    assert code == 2
    assert line_of(err) == ("siamcli: error: --onnx runs the weights inside the two ONNX files: drop --weights, or "
                            "drop --onnx to run the checkpoint")


def test_a_real_export_given_swapped_is_said_to_be_swapped(tmp_path, frame_folder):
    code, _, err = siamcli("export", "siamrpn", "-o", "onnx", cwd=tmp_path)
    assert code == 0, err
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--onnx", "onnx/search.onnx", "onnx/template.onnx")
    assert code == 2
    assert "they are given in the wrong order; give --onnx onnx/template.onnx onnx/search.onnx" in line_of(err)
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "--onnx", "onnx/template.onnx", "onnx/search.onnx")
    assert code == 0 and TRACKED.fullmatch(line_of(err)).group(2) == "siamrpn"


@pytest.fixture()
def nano_weights(tmp_path) -> Path:
    """A stand-in for a NanoTrack checkpoint: bench refuses its baseline before reading it."""
    torch.save({"w": torch.zeros(1)}, tmp_path / "nano.pth")
    return tmp_path / "nano.pth"


@pytest.mark.parametrize("case", ["v3", "swapped", "garbage", "export", "no-baseline", "not-nanotrack"])
def test_a_baseline_pair_that_cannot_be_the_baseline_is_one_line(tmp_path, frame_folder, pairs, nano_weights, case):
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07garbage")
    files = {"v3": pairs["v3"], "swapped": pairs["v2"][::-1], "no-baseline": pairs["v2"],
             "garbage": ("garbage.onnx", pairs["v2"][1]), "export": _export_pair(tmp_path / "exp"),
             "not-nanotrack": pairs["v2"]}[case]
    model = ("-m", "siamrpn") if case == "not-nanotrack" else ("-m", "nanotrack_v2", "-w", nano_weights)
    extra = ("--no-baseline",) if case == "no-baseline" else ()
    code, _, err = siamcli("bench", frame_folder, *model, "--init", BOX, "--baseline-onnx", *files, *extra,
                           cwd=tmp_path)
    assert code == 2
    message = {
        "v3": "v3/backbone.onnx and v3/head.onnx (nanotrack_v3's) give a 15x15 score map; cv2.TrackerNano runs the "
              "pairs of NanoTrack v1 and v2 (16x16): use --no-baseline",
        "swapped": "v2/head.onnx is a NanoTrack head and v2/backbone.onnx is a NanoTrack backbone: they are given in "
                   "the wrong order; give --baseline-onnx v2/backbone.onnx v2/head.onnx",
        "garbage": "garbage.onnx is not a valid ONNX model (",
        "export": "exp/template.onnx and exp/search.onnx are the graphs of a `siamcli export`; --baseline-onnx takes "
                  "NanoTrack's published backbone.onnx and head.onnx, which cv2.TrackerNano loads",
        "no-baseline": "--baseline-onnx gives the baseline's files, and --no-baseline runs none: drop one of them",
        "not-nanotrack": "--baseline-onnx gives the NanoTrack pair of cv2.TrackerNano, the baseline of NanoTrack "
                         "models (or of any with --vs-opencv); the baseline of siamrpn is torch eager on its "
                         "--weights: drop --baseline-onnx",
    }[case]
    assert line_of(err).startswith("siamcli: error: " + message)


@pytest.mark.shared_data
def test_the_published_pairs_of_another_version_are_refused_before_any_frame(tmp_path, frame_folder):
    nano = require_shared("data", "weights", "nanotrack")
    v3 = (nano / "v3" / "nanotrack_backbone.onnx", nano / "v3" / "nanotrack_head.onnx")
    v2 = (nano / "v2" / "nanotrack_backbone_sim.onnx", nano / "v2" / "nanotrack_head_sim.onnx")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", "nanotrack_v2", "--onnx", *v3)
    assert code == 2 and line_of(err).endswith("not of nanotrack_v2: run them with -m nanotrack_v3")
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", "siamrpn", "--onnx", *v2)
    assert code == 2 and line_of(err).endswith("not files of siamrpn: run them with -m nanotrack_v2")
    assert not (tmp_path / "b.csv").exists()
    code, _, err = siamcli("bench", frame_folder, "-m", "nanotrack_v2", "-w", nano / "v2" / "nanotrackv2.pth",
                           "--init", BOX, "--baseline-onnx", *v3, cwd=tmp_path)
    assert code == 2 and "give a 15x15 score map; cv2.TrackerNano runs the pairs of NanoTrack v1 and v2" in line_of(err)
    code, _, err = _track(tmp_path, frame_folder, "--init", BOX, "-m", "nanotrack_v3", "--onnx", *v3)
    assert code == 0 and len(rows_of(tmp_path / "b.csv")) == 13


# -- ground truth -------------------------------------------------------------------------------
def _sequence(root: Path, frame_folder: Path, rows) -> Path:
    shutil.copytree(frame_folder, root / "img")
    (root / "groundtruth_rect.txt").write_text("".join(f"{r}\n" for r in rows))
    return root


def _truth(n: int = 12):
    return [f"{40 + 3 * i},{30 + 2 * i},40,40" for i in range(n)]


def test_a_row_holding_nan_or_inf_is_not_annotated_like_an_empty_one(tmp_path, frame_folder):
    marked = _truth()
    marked[3], marked[5], marked[7] = "nan,36,40,40", "55,inf,40,40", "-inf,44,40,nan"
    empty = _truth()
    empty[3] = empty[5] = empty[7] = "0,0,0,0"
    _sequence(tmp_path / "marked", frame_folder, marked)
    _sequence(tmp_path / "empty", frame_folder, empty)
    docs = []
    for name in ("marked", "empty"):
        code, _, err = siamcli("eval", name, "-m", "siamrpn", *TORCH, "--json", f"{name}.json", "-q", cwd=tmp_path)
        assert code == 0 and err == "", err
        docs.append(json.loads((tmp_path / f"{name}.json").read_text())["overall"])
    assert docs[0]["frames"] == docs[1]["frames"] == 12
    assert {k: v for k, v in docs[0].items() if k != "fps"} == {k: v for k, v in docs[1].items() if k != "fps"}


def test_a_huge_ground_truth_value_is_refused_by_line_without_numpy_warnings(tmp_path, frame_folder):
    rows = _truth()
    rows[4] = "1e308,38,40,40"
    _sequence(tmp_path / "seq", frame_folder, rows)
    for command in (("eval", "seq", "-q"), ("bench", "seq", "--no-baseline")):
        code, _, err = siamcli(*command, cwd=tmp_path)
        assert code == 2
        assert line_of(err) == ("siamcli: error: " + ("sequence seq not scored: " if command[0] == "eval" else "")
                                + "seq/groundtruth_rect.txt:5: '1e308,38,40,40' is no box in pixels "
                                  "(values beyond 1e+06)")


def test_scoring_never_warns_on_the_largest_boxes_allowed():
    from siamcli.eval.datasets import MAX_COORDINATE
    from siamcli.eval.metrics import score_sequence

    gt = np.array([[MAX_COORDINATE, -MAX_COORDINATE, MAX_COORDINATE, MAX_COORDINATE], [np.nan, 0, 10, 10],
                   [0, 0, 10, 10]])
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_sequence(pred, gt)
    assert scores["frames_scored"] == 2 and scores["mean_iou"] == 0.5


# -- frame folders ------------------------------------------------------------------------------
def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, its data a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1 << 16)))
            + chunk(b"IEND", b""))


def test_hidden_files_among_the_frames_are_no_frames(tmp_path, frame_folder):
    frames = tmp_path / "frames"
    shutil.copytree(frame_folder, frames)
    for name in [p.name for p in frames.iterdir()]:
        (frames / f"._{name}").write_bytes(b"\x00\x05\x16\x07AppleDouble metadata")
    (frames / ".thumbnail.png").write_bytes(b"not an image")
    code, _, err = _track(tmp_path, "frames", "--init", BOX, "-m", "siamrpn", *TORCH)
    assert code == 0 and TRACKED.fullmatch(line_of(err)), err
    assert [r[0] for r in rows_of(tmp_path / "b.csv")[1:]] == [str(i) for i in range(12)]


def test_a_frame_declaring_more_pixels_than_opencv_decodes_is_one_line(tmp_path, frame_folder):
    frames = tmp_path / "frames"
    shutil.copytree(frame_folder, frames)
    (frames / "0013.png").write_bytes(_png_claiming(60000, 60000))
    code, _, err = _track(tmp_path, "frames", "--init", BOX, "-m", "siamrpn", *TORCH)
    assert code == 2
    assert line_of(err) == ("siamcli: error: cannot decode frame 12 of frames: 0013.png (OpenCV refuses it: "
                            "pixels <= CV_IO_MAX_IMAGE_PIXELS); 12 boxes kept in b.csv")


def test_a_fifo_as_the_video_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "video.mp4")
    code, _, err = _track(tmp_path, "video.mp4", "--init", BOX, timeout=120)
    assert code == 2
    assert line_of(err) == "siamcli: error: video video.mp4 is not a regular file (a pipe, socket or device)"


# -- box files and quoted input ------------------------------------------------------------------
def test_a_50_mb_init_file_line_is_not_echoed(tmp_path, frame_folder):
    (tmp_path / "box.txt").write_bytes(b"1," * (25 << 20))
    code, _, err = _track(tmp_path, frame_folder, "--init-file", "box.txt")
    assert code == 2
    assert line_of(err) == ("siamcli: error: --init-file box.txt holds no box line in its first 64 KiB "
                            "(expected a line x,y,w,h)")


def test_a_long_bad_box_is_quoted_by_its_start_and_length(tmp_path, frame_folder):
    (tmp_path / "box.txt").write_text("# the first box\n" + "12,30,40," + "9" * 3000 + ",7\n")
    code, _, err = _track(tmp_path, frame_folder, "--init-file", "box.txt")
    assert code == 2
    assert line_of(err) == ("siamcli: error: --init-file box.txt expects four numbers x,y,w,h (e.g. 120,80,40,60), "
                            f"got '12,30,40,{'9' * 51}'... (3011 characters)")
    code, _, err = _track(tmp_path, frame_folder, "--init", "x" * 10_000)
    assert code == 2 and len(line_of(err)) < 200 and "(10000 characters)" in err


def test_an_init_file_that_is_a_device_is_refused_unread(tmp_path, frame_folder):
    code, _, err = _track(tmp_path, frame_folder, "--init-file", "/dev/zero")
    assert code == 2
    assert line_of(err) == "siamcli: error: --init-file /dev/zero is not a regular file (a pipe, socket or device)"


# -- the start-up cache --------------------------------------------------------------------------
GOOD_ENTRY = {"choice": "onnx-fp32", "probe_ms": {"onnx-fp32": 1.5, "torch-fp32": 3.0}, "model": "siamrpn",
              "threads": None, "device": "auto"}


@pytest.mark.parametrize("content,caption", [
    ("garbage{", "choices.json is damaged (not JSON): passed over"),
    ("[1, 2]", "choices.json is damaged (a JSON list, not an object): passed over"),
    (json.dumps({"a": GOOD_ENTRY, "b": {"foo": 5}, "c": 5, "d": {**GOOD_ENTRY, "choice": None},
                 "e": {**GOOD_ENTRY, "probe_ms": {"x": "fast"}}, "f": {**GOOD_ENTRY, "threads": -2}}),
     "5 entries of choices.json unreadable: passed over"),
])
def test_a_damaged_choices_file_shows_no_garbage_and_is_rebuilt(tmp_path, frame_folder, content, caption):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "choices.json").write_text(content)
    env = dict(os.environ, SIAMCLI_CACHE_DIR=str(cache), COLUMNS="200")
    code, out, err = siamcli("cache", cwd=tmp_path, env=env)
    assert code == 0 and err == "", err
    assert caption in out and "None" not in out and "foo" not in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows == ([] if "entries" not in caption else [next(line for line in rows if "siamrpn" in line)])
    code, _, err = siamcli("track", frame_folder, "--init", BOX, "-m", "siamrpn", "--threads", "1", "-o", "b.csv", "-q",
                           cwd=tmp_path, env=env)  # auto's choice, measured and remembered
    assert code == 0, err
    rebuilt = json.loads((cache / "choices.json").read_text())
    assert all(set(entry) == set(GOOD_ENTRY) and entry["model"] == "siamrpn" for entry in rebuilt.values())


# -- bench's frame counts ------------------------------------------------------------------------
def test_bench_at_its_documented_minimum_measures(tmp_path, frame_folder):
    code, _, err = siamcli("bench", frame_folder, "-m", "siamrpn", "--init", BOX, "-n", "2", "--no-baseline",
                           *TORCH, "--json", "r.json", cwd=tmp_path)
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["frames"] == 2 and result["fps"] > 0
    assert set(result["stages_ms"]) == {"decode", "crop", "network", "post", "write", "total"}


@pytest.mark.parametrize("args,message", [
    (("-n", "4", "--warmup", "4"), "--warmup 4 leaves no frame to time: of the 4 frames used, the first starts the "
                                   "tracker and 3 are updates; use --warmup 2 or less, or more frames with -n"),
    (("-n", "2", "--warmup", "1"), "--warmup 1 leaves no frame to time: of the 2 frames used, the first starts the "
                                   "tracker and 1 is an update; more frames with -n"),
    (("--warmup", "11"), "--warmup 11 leaves no frame to time: of the 12 frames used, the first starts the tracker "
                         "and 11 are updates; use --warmup 10 or less, or more frames with -n"),
])
def test_a_warmup_that_leaves_nothing_to_time_is_refused(tmp_path, frame_folder, args, message):
    code, _, err = siamcli("bench", frame_folder, "-m", "siamrpn", "--init", BOX, *args, "--no-baseline", *TORCH,
                           cwd=tmp_path)
    assert code == 2
    assert line_of(err) == f"siamcli: error: {message}"
