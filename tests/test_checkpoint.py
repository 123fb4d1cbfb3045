"""Checkpoint reading and strict loading: the three accepted forms, safety, readable mismatch reports."""
from __future__ import annotations

import pickle

import pytest
import torch

from siamcli.errors import SiamcliError
from siamcli.models.checkpoint import load_weights, read_state_dict
from siamcli.catalog import build_model


@pytest.fixture(scope="module")
def alex_state():
    torch.manual_seed(3)
    return build_model("siamrpn_alex_dwxcorr").state_dict()


def _outputs(model):
    torch.manual_seed(0)
    z = torch.rand(1, 3, 127, 127) * 255
    x = torch.rand(1, 3, 287, 287) * 255
    with torch.no_grad():
        return model(z, x)


@pytest.mark.parametrize("form", ["plain", "snapshot", "module_prefix"])
def test_the_three_checkpoint_forms_load_to_the_same_network(tmp_path, alex_state, form):
    if form == "plain":
        obj = alex_state
    elif form == "snapshot":
        obj = {"epoch": 19, "state_dict": alex_state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}
    else:
        obj = {f"module.{k}": v for k, v in alex_state.items()}
    path = tmp_path / "model.pth"
    torch.save(obj, path)
    model = load_weights(build_model("siamrpn_alex_dwxcorr"), path, "siamrpn_alex_dwxcorr")
    reference = build_model("siamrpn_alex_dwxcorr")
    reference.load_state_dict(alex_state)
    for got, want in zip(_outputs(model), _outputs(reference)):
        torch.testing.assert_close(got, want)


def test_missing_batchnorm_counters_are_tolerated(tmp_path, alex_state):
    state = {k: v for k, v in alex_state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "m.pth")
    load_weights(build_model("siamrpn_alex_dwxcorr"), tmp_path / "m.pth", "siamrpn_alex_dwxcorr")


def test_a_checkpoint_of_another_architecture_names_the_one_it_looks_like(tmp_path):
    torch.save(build_model("siamrpn_mobilev2_l234_dwxcorr").state_dict(), tmp_path / "mbv2.pth")
    from siamcli.catalog import get_spec, load_network

    with pytest.raises(SiamcliError) as info:
        load_network(get_spec("siamrpn_alex_dwxcorr"), tmp_path / "mbv2.pth")
    msg = str(info.value)
    assert "do not fit model siamrpn_alex_dwxcorr" in msg
    assert "missing" in msg and "unexpected" in msg
    assert "siamrpn_mobilev2_l234_dwxcorr" in msg
    assert "\n" not in msg
    assert msg.count("backbone.") <= 12  # a handful of keys, not hundreds


def test_wrong_shapes_are_listed(tmp_path, alex_state):
    state = dict(alex_state)
    state["rpn_head.cls.head.3.weight"] = torch.zeros(6, 256, 1, 1)
    torch.save(state, tmp_path / "m.pth")
    with pytest.raises(SiamcliError, match=r"1 of the wrong shape \(rpn_head.cls.head.3.weight \[6, 256, 1, 1\] vs \[10, 256, 1, 1\]\)"):
        load_weights(build_model("siamrpn_alex_dwxcorr"), tmp_path / "m.pth", "siamrpn_alex_dwxcorr")


def test_the_r50_rpn_and_siamban_layouts_are_told_apart():
    torch.manual_seed(0)
    with torch.device("meta"):
        ban = build_model("siamban_r50_l234").state_dict()
    from siamcli.catalog import get_spec, guess_model

    assert guess_model(ban, exclude=get_spec("siamrpn_r50_l234_dwxcorr")) == "siamban_r50_l234"


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_arbitrary_pickled_objects_are_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(SiamcliError, match="Python objects besides tensors"):
        read_state_dict(path)
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", b"", b"PK\x03\x04garbage"])
def test_non_checkpoint_files_are_refused(tmp_path, content):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(SiamcliError, match="is not a PyTorch checkpoint"):
        read_state_dict(path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(SiamcliError, match="weights file not found"):
        read_state_dict(tmp_path / "nope.pth")


def test_a_checkpoint_without_tensors(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "m.pth")
    with pytest.raises(SiamcliError, match="no weight tensors"):
        read_state_dict(tmp_path / "m.pth")
