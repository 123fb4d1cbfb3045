"""A published config.yaml selects the architecture and the tracker hyper-parameters."""
from __future__ import annotations

import pytest

from siamcli.api import resolve_spec
from siamcli.catalog import build_network
from siamcli.catalog import MODELS, spec_from_config
from siamcli.errors import SiamcliError
from conftest import require_shared

EXPECTED = {  # config -> (family, instance, score size, penalty_k, window_influence, lr)
    "pysot/siamrpn_alex_dwxcorr": ("rpn", 287, 21, 0.16, 0.40, 0.30),
    "pysot/siamrpn_alex_dwxcorr_otb": ("rpn", 287, 21, 0.16, 0.40, 0.30),
    "pysot/siamrpn_r50_l234_dwxcorr": ("rpn", 255, 25, 0.05, 0.42, 0.38),
    "pysot/siamrpn_r50_l234_dwxcorr_otb": ("rpn", 255, 25, 0.24, 0.5, 0.25),
    "pysot/siamrpn_mobilev2_l234_dwxcorr": ("rpn", 255, 25, 0.04, 0.4, 0.5),
    "siamban/siamban_r50_l234": ("ban", 255, 25, 0.08513642556896711, 0.4632532824922313, 0.44418184746462425),
    "siamban/siamban_r50_l234_otb": ("ban", 255, 25, 0.020530504470126613, 0.3850733326567302, 0.4730770315643308),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_published_config_gives_the_published_hyper_parameters(name):
    spec = spec_from_config(require_shared("reference", "configs", name, "config.yaml"))
    p = spec.params
    assert (p.family, p.instance_size, p.score_size) == EXPECTED[name][:3]
    assert (p.penalty_k, p.window_influence, p.lr) == pytest.approx(EXPECTED[name][3:])
    assert p.stride == 8 and p.exemplar_size == 127 and p.context_amount == 0.5


@pytest.mark.shared_data
@pytest.mark.parametrize("name", [n for n in EXPECTED if not n.endswith("_otb")])
def test_named_model_and_its_config_agree(name):
    spec = spec_from_config(require_shared("reference", "configs", name, "config.yaml"))
    assert MODELS[name.split("/")[1]].params == spec.params


@pytest.mark.shared_data
@pytest.mark.parametrize("version,score_size", [("v1", 16), ("v2", 16), ("v3", 15)])
def test_nanotrack_configs(version, score_size):
    spec = spec_from_config(require_shared("data", "weights", "nanotrack", version, f"config{version}.yaml"))
    assert spec.params.family == "ban" and spec.params.stride == 16 and spec.params.score_size == score_size
    assert spec.params == MODELS[f"nanotrack_{version}"].params
    model = build_network(spec)
    assert type(model).__name__ == f"NanoTrack{version.upper()}"


@pytest.mark.shared_data
def test_long_term_config_is_refused_clearly():
    with pytest.raises(SiamcliError, match="long-term tracker SiamRPNLTTracker"):
        spec_from_config(require_shared("reference", "configs", "pysot", "siamrpn_r50_l234_dwxcorr_lt", "config.yaml"))


@pytest.mark.parametrize("text,msg", [
    ("MASK:\n  MASK: true\nBACKBONE:\n  TYPE: resnet50\nTRACK:\n  TYPE: SiamMaskTracker\n", "SiamMask"),
    ("- just\n- a list\n", "not a tracker config"),
    ("TRACK:\n  TYPE: SiamFCTracker\n", "not supported"),
    ("foo: [unclosed\n", "not a valid YAML"),
    ("other: 1\n", "no BACKBONE or TRACK"),
])
def test_bad_configs_are_refused(tmp_path, text, msg):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(SiamcliError, match=msg):
        spec_from_config(path)


def test_unknown_backbone_in_a_config_is_a_user_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("BACKBONE:\n  TYPE: vgg16\nRPN:\n  TYPE: DepthwiseRPN\nTRACK:\n  TYPE: SiamRPNTracker\n")
    with pytest.raises(SiamcliError, match="vgg16"):
        build_network(spec_from_config(path))


def test_model_and_config_are_exclusive(tmp_path):
    with pytest.raises(SiamcliError, match="either --model or --config"):
        resolve_spec("siamrpn_alex_dwxcorr", tmp_path / "c.yaml")
