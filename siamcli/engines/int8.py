"""int8 convolutions for the torch engine on a CPU (oneDNN; AMX where the CPU has it).

:func:`quantize_convs` replaces the ``nn.Conv2d`` layers of a network (after its
BatchNorms are folded) by an :class:`Int8Conv2d`: weights int8 per output
channel, packed once for oneDNN; the input quantized to uint8 with a range
calibrated on real crops; output in float. Convolutions whose kernels are
computed per target (the template-feature correlations, ``F.conv2d`` calls)
are not modules and stay in float, so one quantized network serves any target.
Depthwise and other grouped convolutions also stay in float: on this CPU they
ran slower in int8 than in fp32 (MobileNetV2, EfficientNet-Lite).

Calibration records each conv input's min and max over the crops given
(:func:`calibrate`): a frame region never seen in calibration that runs past
those ranges is clipped, so calibrate on crops of the footage to be tracked.
Whether int8 keeps a model's accuracy must be measured (``siamcli eval``):
siamcli never picks int8 on its own.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import nn

from .fusion import fold_batch_norms

Range = Tuple[float, float]


def onednn_int8_available() -> bool:
    """Whether this torch build has oneDNN's quantized convolution ops."""
    ops = getattr(torch.ops, "onednn", None)
    try:
        return bool(torch.backends.mkldnn.is_available() and ops is not None
                    and hasattr(ops, "qconv_prepack") and hasattr(ops, "qconv2d_pointwise"))
    except RuntimeError:  # pragma: no cover - an op namespace that cannot be resolved
        return False


def _uint8_params(lo: float, hi: float) -> Tuple[float, int]:
    """Scale and zero point mapping [lo, hi] (widened to contain 0) onto 0..255."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    if scale <= 0.0:
        return 1.0, 0
    return float(scale), int(min(max(round(-lo / scale), 0), 255))


class Int8Conv2d(nn.Module):
    """A frozen ``nn.Conv2d`` computed in int8 by oneDNN: per-channel symmetric int8
    weights, uint8 input with a fixed calibrated scale and zero point, float output
    (``out_dtype``)."""

    def __init__(self, conv: nn.Conv2d, input_range: Range, out_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("only zero-padded convolutions with explicit padding can be quantized")
        if conv.groups > 1:
            # depthwise/grouped convs are cheap: quantizing around them costs more than int8 saves,
            # which made the depthwise-heavy networks slower
            raise ValueError("grouped convolutions stay in float")
        weight = conv.weight.detach().float()
        w_scales = weight.abs().amax(dim=(1, 2, 3)).clamp(min=1e-12) / 127.0
        q_weight = torch.round(weight / w_scales[:, None, None, None]).clamp(-127, 127).to(torch.int8)
        self.x_scale, self.x_zero_point = _uint8_params(*input_range)
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.out_dtype = out_dtype
        self.relu = False  # fused ReLU on the output
        self.out_quant: Optional[Tuple[float, int]] = None  # uint8 output for the next int8 conv
        self.register_buffer("w_scales", w_scales.contiguous())
        self.register_buffer("w_zero_points", torch.zeros(len(w_scales), dtype=torch.int64))
        bias = conv.bias.detach().float() if conv.bias is not None else None
        self.register_buffer("bias", bias)
        self.packed = torch.ops.onednn.qconv_prepack(q_weight, self.w_scales, self.x_scale, self.x_zero_point,
                                                     self.stride, self.padding, self.dilation, self.groups, None)

    def __deepcopy__(self, memo):
        # oneDNN's packed weight is opaque (no storage to copy) and never changes: share it
        clone = copy.copy(self)
        clone.__dict__ = {k: (v if k == "packed" else copy.deepcopy(v, memo)) for k, v in self.__dict__.items()}
        return clone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # uint8 comes already quantized with this conv's input parameters (see chain_int8)
        q = x if x.dtype == torch.uint8 else quantize_uint8(x, self.x_scale, self.x_zero_point)
        if self.out_quant is not None:
            out_scale, out_zp, out_dtype = self.out_quant[0], self.out_quant[1], torch.uint8
        else:
            out_scale, out_zp, out_dtype = 1.0, 0, self.out_dtype
        return torch.ops.onednn.qconv2d_pointwise(
            q, self.x_scale, self.x_zero_point, self.packed, self.w_scales, self.w_zero_points, self.bias,
            self.stride, self.padding, self.dilation, self.groups, out_scale, out_zp, out_dtype,
            "relu" if self.relu else "none", [None] if self.relu else [], "")


def quantize_uint8(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``x`` (float) as uint8: round(x / scale) + zero_point, clipped to 0..255."""
    return x.float().mul(1.0 / scale).add_(zero_point).round_().clamp_(0, 255).to(torch.uint8)


class MaxPool2dUint8(nn.Module):
    """``nn.MaxPool2d`` (no padding, no dilation, floor mode) that also takes uint8
    tensors (torch's max_pool2d does not): the max of strided views, one axis at a
    time. On quantized activations it equals pooling the float values, since
    quantization is monotonic."""

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.pool = pool
        pair = nn.modules.utils._pair
        self.kernel, self.step = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size)

    @staticmethod
    def supports(pool: nn.Module) -> bool:
        pair = nn.modules.utils._pair
        return (type(pool) is nn.MaxPool2d and pair(pool.padding) == (0, 0) and pair(pool.dilation) == (1, 1)
                and not pool.ceil_mode and not pool.return_indices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return self.pool(x)
        for axis, k, s in ((3, self.kernel[1], self.step[1]), (2, self.kernel[0], self.step[0])):
            out = (x.shape[axis] - k) // s + 1
            views = [x.narrow(axis, i, (out - 1) * s + 1)[(slice(None),) * axis + (slice(None, None, s),)]
                     for i in range(k)]
            y = views[0]
            for v in views[1:]:
                y = torch.maximum(y, v)
            x = y
        return x


def calibrate(model: nn.Module, run: Callable[[nn.Module], None]) -> Dict[str, Range]:
    """Min and max of every ``nn.Conv2d`` input while ``run(model)`` feeds it crops."""
    ranges: Dict[str, Range] = {}
    hooks = []

    def hook_for(name: str):
        def hook(_module, inputs):
            x = inputs[0].detach()
            lo, hi = float(x.min()), float(x.max())
            old = ranges.get(name)
            ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        return hook

    for name, module in model.named_modules():
        if type(module) is nn.Conv2d:
            hooks.append(module.register_forward_pre_hook(hook_for(name)))
    try:
        with torch.inference_mode():
            run(model)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def _set_child(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def quantize_convs(model: nn.Module, run: Callable[[nn.Module], None]) -> nn.Module:
    """A copy of ``model`` with BatchNorms folded and every conv that saw input during
    ``run(model)`` (the calibration) replaced by an :class:`Int8Conv2d`."""
    folded = fold_batch_norms(model)
    ranges = calibrate(folded, run)
    quantized = copy.deepcopy(folded)
    for name, (lo, hi) in ranges.items():
        conv = quantized.get_submodule(name)
        try:
            _set_child(quantized, name, Int8Conv2d(conv, (lo, hi)))
        except ValueError:
            continue  # left in float
    return chain_int8(quantized).eval()


def chain_int8(model: nn.Module) -> nn.Module:
    """Keep activations in uint8 between int8 convs of the same ``nn.Sequential``.

    Where a conv's output reaches the next int8 conv only through ReLUs,
    max-poolings and Identities (folded BNs), the first conv emits uint8 with the
    next conv's input scale: no float tensor in between, the pooling runs on
    uint8, and a ReLU is the clip at zero point 0 (inputs calibrated after a
    ReLU have their range start at 0). A ReLU right after a conv whose output
    stays float is fused into the conv. Works in place; returns ``model``.
    """
    for block in model.modules():
        for first, second in getattr(type(block), "INT8_CHAINS", ()):
            conv, nxt = getattr(block, first, None), getattr(block, second, None)
            if isinstance(conv, Int8Conv2d) and isinstance(nxt, Int8Conv2d) and nxt.x_zero_point == 0:
                conv.out_quant = (nxt.x_scale, nxt.x_zero_point)
    passthrough = (nn.Identity, nn.ReLU, nn.MaxPool2d, MaxPool2dUint8)
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for i, name in enumerate(names):
            conv = seq._modules[name]
            if not isinstance(conv, Int8Conv2d) or conv.out_quant is not None or conv.relu:
                continue
            between = []
            nxt = None
            for later in names[i + 1:]:
                module = seq._modules[later]
                if isinstance(module, Int8Conv2d):
                    nxt = module
                    break
                if not isinstance(module, passthrough):
                    break
                between.append(later)
            kinds = [seq._modules[b] for b in between]
            pools_ok = all(MaxPool2dUint8.supports(m) or isinstance(m, MaxPool2dUint8)
                           for m in kinds if isinstance(m, (nn.MaxPool2d, MaxPool2dUint8)))
            relu = any(isinstance(m, nn.ReLU) for m in kinds)
            if nxt is not None and pools_ok and not (relu and nxt.x_zero_point != 0):
                conv.out_quant = (nxt.x_scale, nxt.x_zero_point)
                for b in between:
                    module = seq._modules[b]
                    if isinstance(module, nn.ReLU):
                        seq._modules[b] = nn.Identity()
                    elif type(module) is nn.MaxPool2d:
                        seq._modules[b] = MaxPool2dUint8(module)
            elif between and isinstance(seq._modules[between[0]], nn.ReLU) or (
                    len(between) > 1 and isinstance(seq._modules[between[0]], nn.Identity)
                    and isinstance(seq._modules[between[1]], nn.ReLU)):
                # conv (+ folded BN) + ReLU with a float output: fuse the ReLU
                relu_name = between[0] if isinstance(seq._modules[between[0]], nn.ReLU) else between[1]
                conv.relu = True
                seq._modules[relu_name] = nn.Identity()
    return model


def count_int8_convs(model: nn.Module) -> int:
    """How many convolutions of ``model`` run in int8."""
    return sum(isinstance(m, Int8Conv2d) for m in model.modules())


def crops_runner(pairs: Iterable[tuple], to_tensor: Callable) -> Callable[[nn.Module], None]:
    """A calibration ``run`` that puts each (template, search) crop pair through a
    Siamese network: template features, search features and the head."""
    pairs = list(pairs)

    def run(model: nn.Module) -> None:
        for z, x in pairs:
            model.search(to_tensor(x), model.template_kernels(to_tensor(z)))
    return run
