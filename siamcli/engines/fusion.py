"""Inference-only rewrites of a network for the torch engine on a CPU.

* :func:`fold_batch_norms` folds every BatchNorm2d that directly follows a
  Conv2d into that conv's weight and bias (``torch.nn.utils.fusion``), leaving
  an ``Identity`` in its place: one pass over memory less per layer.
* channels-last memory (``TorchEngine(channels_last=...)``): the only layout in
  which oneDNN runs bf16 convolutions on AMX (docs/performance.md has the figures).

Pairs are found in ``nn.Sequential`` containers (a Conv2d then a BatchNorm2d)
and in modules that declare them in a ``CONV_BN_PAIRS`` class attribute of
``(conv attribute, bn attribute)`` names, for blocks whose ``forward`` applies
the BN straight to the conv's output (ResNet's and EfficientNet's blocks).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
            and bn.running_mean is not None and conv.out_channels == bn.num_features)


def fold_batch_norms(model: nn.Module, inplace: bool = False) -> nn.Module:
    """``model`` (a copy unless ``inplace``) in eval mode with its conv+BN pairs folded.

    The folded network computes the same function as the eval-mode original
    up to float rounding; it can no longer be trained.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    with torch.no_grad():
        for module in list(model.modules()):
            if isinstance(module, nn.Sequential):
                children = list(module._modules.items())
                for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
                    if _foldable(conv, bn):
                        module._modules[conv_name] = fuse_conv_bn_eval(conv, bn)
                        module._modules[bn_name] = nn.Identity()
            for conv_name, bn_name in getattr(type(module), "CONV_BN_PAIRS", ()):
                conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
                if conv is not None and _foldable(conv, bn):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
    return model


def count_batch_norms(model: nn.Module) -> int:
    """BatchNorm2d layers left in ``model``."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
