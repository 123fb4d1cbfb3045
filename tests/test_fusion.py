"""BatchNorm folding and channels-last memory in the torch engine (siamcli.engines.fusion)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from siamcli.engines.fusion import count_batch_norms, fold_batch_norms
from siamcli.engines.torch_engine import TorchEngine
from siamcli.catalog import build_model


def with_random_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running statistics and affine parameters, so folding them
    changes the conv weights (with fresh BNs it would be nearly the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
    return model.eval()


def outputs(model, z, x):
    with torch.inference_mode():
        return model.correlate(model.extract_template(z), model.extract_search(x))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


@pytest.mark.parametrize("arch,instance", [
    ("siamrpn_alex_dwxcorr", 287), ("siamrpn", 255), ("siamban", 255),
    ("siamrpn_mobilev2_l234_dwxcorr", 255), ("nanotrack_v2", 255), ("siamrpn_r50_l234_dwxcorr", 255),
])
def test_folded_network_computes_the_same_outputs_with_no_batch_norm_left(arch, instance):
    torch.manual_seed(0)
    model = with_random_statistics(build_model(arch))
    before = count_batch_norms(model)
    folded = fold_batch_norms(model)
    assert before > 0
    assert count_batch_norms(model) == before  # the original is untouched
    assert count_batch_norms(folded) == 0
    gen = torch.Generator().manual_seed(1)
    z = torch.rand(1, 3, 127, 127, generator=gen) * 255
    x = torch.rand(1, 3, instance, instance, generator=gen) * 255
    for got, ref in zip(outputs(folded, z, x), outputs(model, z, x)):
        assert rel(got, ref) < 1e-4


def test_a_batch_norm_that_does_not_follow_a_conv_is_kept():
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    with_random_statistics(model)
    folded = fold_batch_norms(model)
    assert isinstance(folded[1], nn.BatchNorm2d)  # after a ReLU: not foldable
    assert isinstance(folded[3], nn.Identity)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert rel(folded(x), model(x)) < 1e-5


def test_the_folded_channels_last_engine_matches_the_plain_one():
    torch.manual_seed(0)
    model = with_random_statistics(build_model("siamrpn_alex_dwxcorr"))
    plain = TorchEngine(model, device="cpu")
    fast = TorchEngine(model, device="cpu", fold_bn=True, channels_last=True)
    assert fast.channels_last and not plain.channels_last  # plain fp32 keeps the reference numerics
    assert plain.model is model  # nothing to change: no copy
    assert count_batch_norms(fast.model) == 0 and count_batch_norms(model) > 0
    bf16 = TorchEngine(model, device="cpu", precision="bf16")
    assert bf16.channels_last and count_batch_norms(bf16.model) > 0  # bf16 on a CPU: channels-last, unfolded
    # the engines work on copies: the caller's network keeps its layout (the plain engine runs it)
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    z = rng.integers(0, 256, (127, 127, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (2, 287, 287, 3), dtype=np.uint8)  # two targets, one template each
    zp = plain.join_templates([plain.template(z), plain.template(z[::-1].copy())])
    zf = fast.join_templates([fast.template(z), fast.template(z[::-1].copy())])
    for got, ref in zip(fast.track(x, zf), plain.track(x, zp)):
        assert float(np.abs(got - ref).max() / np.abs(ref).max()) < 1e-4
