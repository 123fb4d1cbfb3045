"""Every registered model's network has exactly the keys and shapes of the official checkpoints."""
from __future__ import annotations

import json
import re

import pytest

from siamcli.catalog import MODELS, key_signature
from conftest import require_shared


def reference_keys(name: str):
    """(key, shape) pairs from checkpoint_keys.json (zoo) or nanotrackvN_keys.txt (NanoTrack);
    for siamcli's own architectures, from the bundled weights file (the bundled ensemble's first
    member for the single-head layout)."""
    if "_lite0" in name:
        import torch

        from siamcli.bundled import bundled_weights
        from siamcli.catalog import MODELS
        from siamcli.errors import SiamcliError

        model = name.split("_")[0]
        try:
            path = bundled_weights(model + ".pth")
        except SiamcliError as exc:
            pytest.skip(f"no bundled weights: {exc}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if MODELS[model].architecture == name:
            return [(k, tuple(v.shape)) for k, v in state.items()]
        # the single-head layout: the bundled ensemble's backbone and its first member
        return [(k.replace("members.0.", "", 1), tuple(v.shape)) for k, v in state.items()
                if k.startswith(("backbone.", "members.0."))]
    if name.startswith("nanotrack_"):
        version = name.split("_")[1]
        path = require_shared("data", "weights", "nanotrack", version, f"nanotrack{version}_keys.txt")
        pairs = []
        for line in path.read_text().splitlines():
            m = re.match(r"\s*state_dict\.(\S+) \(([\d, ]*)\)", line)
            if m:
                pairs.append((m.group(1), tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)))
        return pairs
    data = json.loads(require_shared("reference", "checkpoint_keys.json").read_text())
    return [(k, tuple(s)) for k, s in data[name]]


#: one registered model per network
NETWORKS = {spec.architecture: spec for spec in reversed(list(MODELS.values()))}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", list(NETWORKS))
def test_registered_architecture_matches_reference_keys_entry_by_entry(name):
    ref = reference_keys(name)
    ours = key_signature(NETWORKS[name])
    problems = [f"{k}: reference {list(s)}, ours {list(ours[k])}" for k, s in ref if k in ours and ours[k] != s]
    problems += [f"missing {k}" for k, _ in ref if k not in ours]
    if name != "nanotrack_v3":  # nanotrackv3_keys.txt is cut short (399 of 438 tensors); the rest is checked
        ref_names = {k for k, _ in ref}  # against the real checkpoint in test_nanotrack_models.py
        problems += [f"extra {k}" for k in ours if k not in ref_names]
    assert not problems, f"{name}: {len(problems)} differences: " + "; ".join(problems[:10])
    assert len(ref) > 50
