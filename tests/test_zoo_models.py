"""Model-zoo architectures: checkpoint keys/shapes, output shapes, batching, config building."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from siamcli.models import zoo
from siamcli.models.base import SiameseModel
from siamcli.models.heads import UPChannelBAN, UPChannelRPN

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
KEYS_JSON = REFERENCE / "checkpoint_keys.json"
CONFIGS = REFERENCE / "configs"

NAMES = list(zoo.ZOO_CONFIGS)
# search size and score-map size per model
SEARCH = {name: (287, 21) if "alex" in name else (255, 25) for name in NAMES}

_models: dict = {}


def model(name: str) -> SiameseModel:
    """Build each zoo model once per session (ResNet-50 takes ~0.3 s to build)."""
    if name not in _models:
        torch.manual_seed(0)
        _models[name] = zoo.build_zoo_model(name)
    return _models[name]


@pytest.fixture(scope="module")
def expected_keys():
    if not KEYS_JSON.is_file():
        pytest.skip(f"reference key list not found at {KEYS_JSON} (needs ../shared beside the project)")
    with open(KEYS_JSON) as fh:
        data = json.load(fh)
    return {name: {k: tuple(shape) for k, shape in entries} for name, entries in data.items()}


def key_diff(model_: torch.nn.Module, expected: dict) -> str:
    got = {k: tuple(v.shape) for k, v in model_.state_dict().items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shapes = sorted(f"{k}: got {got[k]}, want {expected[k]}"
                    for k in set(got) & set(expected) if got[k] != expected[k])
    lines = []
    for title, items in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if items:
            lines.append(f"{title} ({len(items)}): " + "; ".join(items[:20])
                         + (" ..." if len(items) > 20 else ""))
    return "\n".join(lines)


def rand_img(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 255.0


# -- (1) checkpoint keys -------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_matches_checkpoint_keys(name, expected_keys):
    m = model(name)
    diff = key_diff(m, expected_keys[name])
    assert not diff, f"{name} state_dict differs from checkpoint_keys.json:\n{diff}"
    assert len(m.state_dict()) == len(expected_keys[name])


def test_builders_return_eval_models_with_expected_attributes():
    for name in NAMES:
        m = model(name)
        assert isinstance(m, SiameseModel)
        assert not m.training, name
        assert m.family == ("ban" if name.startswith("siamban") else "rpn")
        assert hasattr(m, "backbone")
        assert hasattr(m, "neck") == ("alex" not in name), name
        assert hasattr(m, "head" if m.family == "ban" else "rpn_head"), name


# -- (2) output shapes -----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_output_shapes(name):
    m = model(name)
    search, score = SEARCH[name]
    with torch.no_grad():
        zf = m.extract_template(rand_img(1, 127, 1))
        xf = m.extract_search(rand_img(1, search, 2))
        cls, loc = m.correlate(zf, xf)
    if "alex" in name:
        assert zf.shape == (1, 256, 6, 6) and xf.shape == (1, 256, 26, 26)
    else:
        assert [tuple(f.shape[2:]) for f in zf] == [(7, 7)] * 3
        assert [tuple(f.shape[2:]) for f in xf] == [(31, 31)] * 3
    if m.family == "rpn":
        assert cls.shape == (1, 10, score, score)
        assert loc.shape == (1, 20, score, score)
    else:
        assert cls.shape == (1, 2, score, score)
        assert loc.shape == (1, 4, score, score)
        assert bool((loc > 0).all())
    assert torch.isfinite(cls).all() and torch.isfinite(loc).all()


def test_template_then_track_equals_forward():
    m = model("siamrpn_alex_dwxcorr")
    z, x = rand_img(1, 127, 1), rand_img(1, 287, 2)
    with torch.no_grad():
        m.template(z)
        cls, loc = m.track(x)
        cls2, loc2 = m(z, x)
    torch.testing.assert_close(cls, cls2)
    torch.testing.assert_close(loc, loc2)


# -- (2b) the template's half of the head runs once per target ---------------------
def _template_side_convs(m):
    """The head convs that only ever see template features."""
    names = ("conv_kernel", "template_cls_conv", "template_loc_conv")
    return [mod for name, mod in m.named_modules() if name.rsplit(".", 1)[-1] in names]


@pytest.mark.parametrize("name", ["siamrpn_alex_dwxcorr", "siamban_r50_l234"])
def test_search_runs_no_template_conv_and_matches_the_whole_head(name):
    m = model(name)
    search, _ = SEARCH[name]
    z, x = rand_img(1, 127, 11), rand_img(1, search, 12)
    calls = []
    convs = _template_side_convs(m)
    assert convs
    with torch.no_grad():
        kernels = m.template_kernels(z)
        hooks = [c.register_forward_hook(lambda *_: calls.append(1)) for c in convs]
        try:
            cls, loc = m.search(x, kernels)
        finally:
            for h in hooks:
                h.remove()
        cls_ref, loc_ref = m.correlate(m.extract_template(z), m.extract_search(x))
    assert calls == []  # the per-frame branch leaves the template's convs alone
    torch.testing.assert_close(cls, cls_ref)
    torch.testing.assert_close(loc, loc_ref)
    # the kernels are the adapted template: 4x4 (alex) / 5x5 (ResNet-50) after a 3x3 conv, two per level
    flat = kernels if isinstance(kernels, list) else [kernels]
    side = 4 if "alex" in name else 5
    assert [tuple(k.shape[2:]) for k in flat] == [(side, side)] * (2 if "alex" in name else 6)


def test_upchannel_kernels_are_the_lifted_template():
    cfg = copy.deepcopy(ALEX)
    cfg["RPN"] = {"TYPE": "UPChannelRPN", "KWARGS": {"anchor_num": 5, "feature_in": 256}}
    torch.manual_seed(1)
    m = zoo.build_from_config(cfg)
    z, x = rand_img(1, 127, 13), rand_img(1, 287, 14)
    with torch.no_grad():
        kernels = m.template_kernels(z)
        assert [tuple(k.shape) for k in kernels] == [(1, 2560, 4, 4), (1, 5120, 4, 4)]
        cls, loc = m.search(x, kernels)
        cls_ref, loc_ref = m(z, x)
    torch.testing.assert_close(cls, cls_ref)
    torch.testing.assert_close(loc, loc_ref)


def test_multi_head_refuses_kernels_of_another_level_count():
    m = model("siamban_r50_l234")
    with torch.no_grad():
        kernels = m.template_kernels(rand_img(1, 127, 15))
        xf = m.extract_search(rand_img(1, 255, 16))
        with pytest.raises(ValueError, match="6 kernels"):
            m.respond(kernels[:4], xf)


# -- (3) batching ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["siamrpn_alex_dwxcorr", "siamrpn_mobilev2_l234_dwxcorr"])
def test_batch_matches_single(name):
    m = model(name)
    search, _ = SEARCH[name]
    z = rand_img(2, 127, 3)
    x = rand_img(2, search, 4)
    with torch.no_grad():
        cls_b, loc_b = m(z, x)
        for i in range(2):
            cls_i, loc_i = m(z[i:i + 1], x[i:i + 1])
            torch.testing.assert_close(cls_b[i:i + 1], cls_i, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(loc_b[i:i + 1], loc_i, atol=1e-4, rtol=1e-4)
    # the two samples really used different templates
    assert not torch.allclose(cls_b[0], cls_b[1])


def test_batched_multi_ban_matches_single():
    """SiamBAN (ResNet-50): one batched backbone pass, then the head batched vs per sample."""
    m = model("siamban_r50_l234")
    with torch.no_grad():
        zf = m.extract_template(rand_img(2, 127, 3))
        xf = m.extract_search(rand_img(2, 255, 4))
        cls_b, loc_b = m.correlate(zf, xf)
        for i in range(2):
            cls_i, loc_i = m.correlate([f[i:i + 1] for f in zf], [f[i:i + 1] for f in xf])
            torch.testing.assert_close(cls_b[i:i + 1], cls_i, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(loc_b[i:i + 1], loc_i, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cls_b[0], cls_b[1])


def test_one_template_broadcasts_over_search_batch():
    m = model("siamrpn_alex_dwxcorr")
    x = rand_img(2, 287, 5)
    with torch.no_grad():
        zf = m.template(rand_img(1, 127, 6))
        cls_b, loc_b = m.track(x, zf)
        for i in range(2):
            cls_i, loc_i = m.track(x[i:i + 1], zf)
            torch.testing.assert_close(cls_b[i:i + 1], cls_i, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(loc_b[i:i + 1], loc_i, atol=1e-4, rtol=1e-4)


# -- (4) build_from_config ----------------------------------------------------------
def _config_files():
    if not CONFIGS.is_dir():
        return [pytest.param(None, id="configs-missing",
                             marks=pytest.mark.skip(reason=f"published configs not found at {CONFIGS} "
                                                           "(needs ../shared beside the project)"))]
    return [pytest.param(p, id=f"{p.parent.parent.name}/{p.parent.name}")
            for p in sorted(CONFIGS.glob("*/*/config.yaml"))]


# the OTB-tuned SiamRPN++ r50 config sets ``weighted: False``, so its model has
# the base keys minus the level weights
DROPPED = {"siamrpn_r50_l234_dwxcorr_otb": {"rpn_head.cls_weight", "rpn_head.loc_weight"}}


@pytest.mark.parametrize("path", _config_files())
def test_build_from_published_config(path, expected_keys):
    yaml = pytest.importorskip("yaml")
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    name = path.parent.name
    base = name[:-len("_otb")] if name.endswith("_otb") else name
    expected = {k: s for k, s in expected_keys[base].items() if k not in DROPPED.get(name, ())}
    m = zoo.build_from_config(cfg)
    assert not m.training
    assert m.family == ("ban" if base.startswith("siamban") else "rpn")
    diff = key_diff(m, expected)
    assert not diff, f"{path}: state_dict differs from checkpoint_keys.json[{base}]:\n{diff}"


def test_configs_cover_every_zoo_model():
    if not CONFIGS.is_dir():
        pytest.skip(f"published configs not found at {CONFIGS}")
    names = {p.parent.name for p in CONFIGS.glob("*/*/config.yaml")}
    assert set(NAMES) <= names


ALEX = zoo.ZOO_CONFIGS["siamrpn_alex_dwxcorr"]


def _with(section: str, **changes) -> dict:
    cfg = copy.deepcopy(zoo.ZOO_CONFIGS["siamrpn_r50_l234_dwxcorr"])
    cfg[section].update(changes)
    return cfg


@pytest.mark.parametrize("cfg, words", [
    (_with("BACKBONE", TYPE="resnet101"), ["resnet101", "alexnetlegacy", "mobilenetv2", "resnet50"]),
    (_with("ADJUST", TYPE="FancyNeck"), ["FancyNeck", "AdjustAllLayer"]),
    (_with("RPN", TYPE="GraphRPN"), ["GraphRPN", "MultiRPN", "DepthwiseRPN", "UPChannelRPN"]),
    ({**_with("RPN"), "MASK": {"MASK": True}}, ["SiamMask", "MASK"]),
    ({"BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [2, 3, 4]}},
      "BAN": {"BAN": True, "TYPE": "FooBAN", "KWARGS": {}}}, ["FooBAN", "MultiBAN"]),
    ({"BACKBONE": {"TYPE": "alexnetlegacy"}}, ["RPN", "BAN"]),
    ({"RPN": {"TYPE": "DepthwiseRPN"}}, ["BACKBONE"]),
    (_with("BACKBONE", KWARGS={"used_layers": [2, 3, 4], "depth": 101}), ["resnet50", "depth"]),
], ids=["backbone", "neck", "rpn-head", "siammask", "ban-head", "no-head", "no-backbone", "bad-kwargs"])
def test_unsupported_config_raises_value_error(cfg, words):
    with pytest.raises(ValueError) as info:
        zoo.build_from_config(cfg)
    for word in words:
        assert word in str(info.value)


def test_siammask_published_config_refused():
    cfg = {"BACKBONE": {"TYPE": "resnet50", "KWARGS": {"used_layers": [0, 1, 2, 3]}},
           "ADJUST": {"ADJUST": True, "TYPE": "AdjustAllLayer",
                      "KWARGS": {"in_channels": [1024], "out_channels": [256]}},
           "RPN": {"TYPE": "DepthwiseRPN",
                   "KWARGS": {"anchor_num": 5, "in_channels": 256, "out_channels": 256}},
           "MASK": {"MASK": True, "TYPE": "MaskCorr"}}
    with pytest.raises(ValueError, match="SiamMask"):
        zoo.build_from_config(cfg)


# -- (5) up-channel heads --------------------------------------------------------------
def test_upchannel_rpn_shapes_and_batching():
    torch.manual_seed(0)
    head = UPChannelRPN(anchor_num=5, feature_in=64).eval()
    zf = torch.randn(2, 64, 6, 6)
    xf = torch.randn(2, 64, 26, 26)
    with torch.no_grad():
        cls, loc = head(zf, xf)
        assert cls.shape == (2, 10, 21, 21) and loc.shape == (2, 20, 21, 21)
        cls1, loc1 = head(zf[1:], xf[1:])
    torch.testing.assert_close(cls[1:], cls1, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(loc[1:], loc1, atol=1e-4, rtol=1e-4)


def test_upchannel_rpn_from_config():
    cfg = copy.deepcopy(ALEX)
    cfg["RPN"] = {"TYPE": "UPChannelRPN", "KWARGS": {"anchor_num": 5, "feature_in": 256}}
    m = zoo.build_from_config(cfg)
    sd = m.state_dict()
    assert tuple(sd["rpn_head.template_cls_conv.weight"].shape) == (2560, 256, 3, 3)
    assert tuple(sd["rpn_head.template_loc_conv.weight"].shape) == (5120, 256, 3, 3)
    assert tuple(sd["rpn_head.search_cls_conv.weight"].shape) == (256, 256, 3, 3)
    assert tuple(sd["rpn_head.loc_adjust.weight"].shape) == (20, 20, 1, 1)
    with torch.no_grad():
        cls, loc = m(rand_img(1, 127, 7), rand_img(1, 287, 8))
    assert cls.shape == (1, 10, 21, 21) and loc.shape == (1, 20, 21, 21)


def test_upchannel_ban_shapes():
    head = UPChannelBAN(feature_in=32, cls_out_channels=2).eval()
    with torch.no_grad():
        cls, loc = head(torch.randn(1, 32, 7, 7), torch.randn(1, 32, 31, 31))
    assert cls.shape == (1, 2, 25, 25) and loc.shape == (1, 4, 25, 25)
