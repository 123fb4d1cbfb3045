"""PyTorch engine: CPU or CUDA, fp32 / bf16 / fp16, optional CUDA graphs.

Precision:

* ``fp32`` -- plain inference.
* ``bf16`` -- ``torch.autocast`` with bfloat16 (CPU or CUDA). On a CPU it is fast only
  where oneDNN has AMX, and can be slower than fp32 elsewhere, so
  :func:`.factory.choose_engine` picks it only after measuring.
* ``fp16`` -- CUDA only: a half copy of the network, BatchNorms folded, channels-last.

int8 runs on onnxruntime, from the graphs of ``siamcli export --int8`` (:mod:`.quantize`).

Batches: ``template`` and ``track`` take one (H, W, 3) patch or an (N, H, W, 3)
batch; ``track`` correlates sample ``i`` with template ``i`` (a template batch
of one is shared by every search patch). :meth:`TorchEngine.join_templates`
stacks the features of several single-target templates into one batch.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import SiamcliError, quoted
from ..models.base import SiameseModel
from .device_crop import fill_colours, region_params, sample_squares
from .fusion import fold_batch_norms

PRECISIONS = ("fp32", "bf16", "fp16")
#: CUDA graphs (and pinned frame buffers) kept at once: one per input shape, and with the crop on
#: the device the frame's size is part of the shape, so an eval over many sources would
#: otherwise keep a graph, and its memory pool, per frame size
KEPT_GRAPHS = 4


class RecentCache(OrderedDict):
    """A dict that keeps its ``limit`` most recently used entries (``get`` counts as a use)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def pick_device(device: Optional[str] = None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SiamcliError(f"unknown device {quoted(device)}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SiamcliError(f"device {quoted(device)} asked for, but torch finds no CUDA GPU here; use --device cpu")
    return dev


def _flatten(zf: Any) -> List[torch.Tensor]:
    return list(zf) if isinstance(zf, (list, tuple)) else [zf]


def _rebuild(like: Any, tensors: Sequence[torch.Tensor]) -> Any:
    if isinstance(like, (list, tuple)):
        return type(like)(tensors)
    return tensors[0]


class _SearchBranch(torch.nn.Module):
    """The per-frame part of a model as one module, for ``torch.compile``."""

    def __init__(self, model: SiameseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, zf: Any, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.model.search(x, zf)


class TorchEngine:
    """Runs a :class:`SiameseModel` under ``torch.inference_mode``.

    ``threads`` sets torch's intra-op thread count (a process-wide setting in
    torch; left alone when None). ``cuda_graphs`` records the search branch
    once per input shape as a CUDA graph and replays it (CUDA only).
    ``channels_last`` (default: on a CPU in bf16, on CUDA in fp16) runs a copy of
    the network in channels-last memory, the only layout in which oneDNN uses AMX for bf16
    convolutions and cuDNN runs fp16 convs without transposing.
    ``fold_bn`` (default: on CUDA in fp16) folds the BatchNorms into the convs of a copy
    (see :mod:`.fusion`; faster, but not bit-identical). fp16 runs
    a half copy of the network (no autocast). Plain fp32 (the default) computes exactly what the published
    trackers compute, which is what `tests/test_parity.py` checks. ``compile``
    runs the search branch through ``torch.compile`` (inductor, weights frozen and
    packed): the first frames take seconds to tens of seconds to compile, then
    each frame is faster. Needs a C++ compiler. docs/performance.md has the measured figures.

    ``device_crop`` (default: on for CUDA) sets :attr:`crops_on_device`: the tracker hands
    over the whole frame and the squares to cut (:meth:`track_regions`), and the crops are
    sampled on the device (:mod:`.device_crop`), inside the CUDA graph when there is one.
    """

    #: any search size: the network is fully convolutional
    max_instance_size: Optional[int] = None

    def __init__(
        self,
        model: SiameseModel,
        device: Optional[str] = None,
        precision: str = "fp32",
        threads: Optional[int] = None,
        cuda_graphs: bool = False,
        channels_last: Optional[bool] = None,
        fold_bn: Optional[bool] = None,
        compile: bool = False,
        device_crop: Optional[bool] = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise SiamcliError(f"unknown precision {quoted(precision)}; use one of {', '.join(PRECISIONS)}")
        self.device = pick_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise SiamcliError("precision fp16 needs a CUDA GPU (on a CPU use bf16 or fp32)")
        if cuda_graphs and self.device.type != "cuda":
            raise SiamcliError("CUDA graphs need a CUDA GPU; drop --cuda-graphs or use --device cuda")
        if compile and cuda_graphs:
            raise SiamcliError("--compile and --cuda-graphs do not go together; pick one")
        if threads is not None:
            if int(threads) < 1:
                raise SiamcliError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(int(threads))
        self.precision = precision
        self.threads = threads
        self.cuda_graphs = cuda_graphs
        half = precision == "fp16"
        if channels_last is None:
            # oneDNN's AMX kernels want channels-last, and so do cuDNN's fp16 tensor-core ones
            # (in NCHW it transposes around every conv)
            channels_last = precision == "bf16" if self.device.type == "cpu" else half
        if fold_bn is None:
            # fp16 on CUDA: one kernel less per conv (BN), measured within the accuracy tolerance
            fold_bn = half
        if fold_bn or channels_last or half:
            # a copy: folding, memory-format and dtype changes are made in place, and the
            # caller's network (possibly shared with other engines) must stay as it is
            model = fold_batch_norms(model) if fold_bn else copy.deepcopy(model)
        self.model = model.eval().to(self.device)
        # fp16 runs a half copy of the network, not autocast: autocast casts every weight
        # again on each call
        self._dtype = torch.float16 if half else torch.float32
        if half:
            self.model = self.model.half()
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._graphs: Dict[Tuple, Any] = RecentCache(KEPT_GRAPHS)
        self._pinned: Dict[Tuple, torch.Tensor] = RecentCache(2 * KEPT_GRAPHS)
        self.crops_on_device = self.device.type == "cuda" if device_crop is None else bool(device_crop)
        self._compiled = None
        if compile:
            import torch._inductor.config as inductor_config

            # inductor with weight freezing: BNs folded and conv weights packed once for oneDNN,
            # instead of being reordered on every call (the bulk of eager bf16's overhead)
            self._inductor_config = inductor_config
            self._compiled = torch.compile(_SearchBranch(self.model))
        self.name = (f"torch-{self.device.type}-{precision}" + ("-graphs" if cuda_graphs else "")
                     + ("-compiled" if compile else ""))

    # -- helpers ---------------------------------------------------------------
    def _autocast(self):
        if self.precision != "bf16":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _to_tensor(self, patch: np.ndarray) -> torch.Tensor:
        arr = patch if patch.ndim == 4 else patch[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) patch or an (N, H, W, 3) batch, got shape {patch.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return self._layout(tensor.permute(0, 3, 1, 2).to(self._dtype))

    def _run_search(self, x: torch.Tensor, zf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            return self.model.search(x, zf)

    def _run_compiled(self, x: torch.Tensor, zf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        try:
            # freezing is read when a graph compiles (first call, or a new input shape); patched
            # for the call only, so nothing else in the process sees it
            with self._inductor_config.patch(freezing=True), self._autocast():
                return self._compiled(zf, x)
        except Exception as exc:  # inductor needs a C++ compiler, and may reject a model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SiamcliError(f"torch.compile failed ({first[:200]}); run without --compile") from None

    # -- Engine interface --------------------------------------------------------
    def template(self, patch: np.ndarray) -> Any:
        with torch.inference_mode(), self._autocast():
            return self.model.template_kernels(self._to_tensor(patch))

    def track(self, patch: np.ndarray, zf: Any) -> Tuple[np.ndarray, np.ndarray]:
        with self._grad_mode():
            x = self._to_tensor(patch)
            if self.cuda_graphs:
                return self._replay(("patch",), [x], zf, lambda ins, z: self._run_search(ins[0], z))
            cls, loc = self._search(x, zf)
            return cls.float().cpu().numpy(), loc.float().cpu().numpy()

    def track_regions(self, frame: np.ndarray, regions: Sequence[Sequence[float]], model_size: int,
                      fills: Sequence[Sequence[float]], rgb: bool, zf: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``track`` with the crops cut on the device: ``frame`` is the whole (H, W, 3) uint8
        BGR frame, ``regions`` one ``(size, xmin, ymin)`` square per sample
        (:func:`siamcli.tracking.crop.square`), each resized to ``model_size``, ``fills`` each
        sample's fill colour (B, G, R), ``rgb`` whether the network takes RGB."""
        if not self.crops_on_device:
            raise SiamcliError("this engine crops on the host; call track() with the patches")
        params = region_params(regions, model_size)
        colours = fill_colours(fills, rgb)
        with self._grad_mode():
            # with a graph, the pinned host copies go straight into its static buffers
            inputs = [self._host(frame), self._host(np.concatenate([params, colours], 1))]

            def run(ins: List[torch.Tensor], z: Any, search: Callable) -> Tuple[torch.Tensor, ...]:
                x = sample_squares(ins[0], ins[1][:, :3], ins[1][:, 3:], model_size, rgb).to(self._dtype)
                return search(x, z)

            if self.cuda_graphs:
                kind = ("regions", model_size, rgb)
                cls, loc = self._replay(kind, inputs, zf,
                                        lambda ins, z: run(ins, z, lambda x, zz: self._run_search(self._layout(x), zz)))
                return cls, loc
            inputs = [t.to(self.device, non_blocking=True) for t in inputs]
            cls, loc = run(inputs, zf, self._search)
            return cls.float().cpu().numpy(), loc.float().cpu().numpy()

    def _grad_mode(self):
        # inductor freezes (folds and packs) weights only under no_grad, not inference_mode
        return torch.no_grad() if self._compiled is not None else torch.inference_mode()

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _search(self, x: torch.Tensor, zf: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self._layout(x)
        if self._compiled is not None:
            return self._run_compiled(x, zf)
        return self._run_search(x, zf)

    def _host(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor to copy to the device from; on CUDA a copy in a reused
        pinned buffer, so the copy to the device is asynchronous (the caller synchronises
        when it reads the outputs back, before the buffer is written again)."""
        if self.device.type != "cuda":
            return torch.from_numpy(np.ascontiguousarray(array))
        key = (array.shape, array.dtype.str)
        buffer = self._pinned.get(key)
        if buffer is None:
            buffer = self._pinned[key] = torch.from_numpy(np.empty_like(array)).pin_memory()
        np.copyto(buffer.numpy(), array)
        return buffer

    @staticmethod
    def join_templates(zfs: Sequence[Any]) -> Any:
        """Template features of several targets (each a batch of one) as one batch."""
        parts = [_flatten(z) for z in zfs]
        joined = [torch.cat([p[i] for p in parts], 0) for i in range(len(parts[0]))]
        return _rebuild(zfs[0], joined)

    # -- CUDA graphs ---------------------------------------------------------------
    def _replay(self, kind: Tuple, inputs: Sequence[torch.Tensor], zf: Any,
                run: Callable[[List[torch.Tensor], Any], Tuple[torch.Tensor, ...]]
                ) -> Tuple[np.ndarray, ...]:
        """``run(inputs, zf)`` through a CUDA graph recorded for these input shapes -> its
        outputs (e.g. cls, loc) as float32 numpy arrays.

        The graph reads from static buffers: the inputs (host or device tensors) are copied in
        every call, the template features only when a different ``zf`` object comes in. The
        outputs leave the graph as one float32 buffer, read back with one copy and one wait.
        """
        flat = _flatten(zf)
        key = kind + tuple((tuple(t.shape), t.dtype) for t in (*inputs, *flat))
        entry = self._graphs.get(key)
        if entry is None:
            static_in = [torch.empty_like(t, device=self.device).copy_(t) for t in inputs]
            static_z = [t.clone() for t in flat]
            static_zf = _rebuild(zf, static_z)

            def step() -> Tuple[torch.Tensor, Tuple[torch.Size, ...]]:
                outs = run(static_in, static_zf)
                joined = torch.cat([t.float().reshape(-1) for t in outs])
                return joined, tuple(t.shape for t in outs)

            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside the capture (cuDNN autotuning, allocations)
                    step()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                joined, shapes = step()
            host = torch.empty(joined.shape, dtype=joined.dtype, pin_memory=True)
            entry = self._graphs[key] = {"graph": graph, "in": static_in, "z": static_z, "out": joined,
                                         "host": host, "shapes": shapes, "zf": zf}
        for dst, src in zip(entry["in"], inputs):
            dst.copy_(src, non_blocking=True)
        if entry["zf"] is not zf:  # a reference, not an id: ids of freed objects are reused
            for dst, src in zip(entry["z"], flat):
                dst.copy_(src)
            entry["zf"] = zf
        entry["graph"].replay()
        entry["host"].copy_(entry["out"], non_blocking=True)
        torch.cuda.current_stream().synchronize()
        values = entry["host"].numpy()
        out, start = [], 0
        for shape in entry["shapes"]:
            size = int(np.prod(shape))
            # copies: the pinned buffer is written again by the next call
            out.append(values[start:start + size].reshape(shape).copy())
            start += size
        return tuple(out)

    def graph_replay_ms(self, runs: int = 50) -> Dict[str, float]:
        """GPU time of one replay of each recorded graph (CUDA events, median of ``runs``): the
        floor of a frame's network time, without the host's work around it."""
        out = {}
        for key, entry in self._graphs.items():
            times = []
            for _ in range(runs):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                entry["graph"].replay()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            out[f"{key[0]}-{len(out)}"] = round(float(np.median(times)), 4)
        return out
