"""int8 search graphs: static quantization of ``siamcli export``'s search.onnx.

onnxruntime's quantizer rewrites every convolution whose weights are constants
as int8 (QDQ format: int8 weights per output channel, uint8 activations with
ranges calibrated on real crops); the correlation convolutions, whose kernels
are the template-features *input*, stay fp32, so one quantized graph still
serves any target. The template graph runs once per target and is left fp32.

Calibration crops come from frames of a video or image folder the user gives:
random boxes (8-40 % of the short side), their template crop and a search crop
around them with a random shift, taken as the tracker takes them. Whether
int8 keeps a model's accuracy must be measured (``siamcli eval --onnx``):
siamcli never picks int8 on its own.
"""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from ..errors import SiamcliError
from ..tracking.crop import channel_mean, context_size, warp_patch

Feeds = Dict[str, np.ndarray]


def dynamic_kernel_convs(model) -> List[str]:
    """Names of the ``Conv`` nodes of an ONNX ``model`` whose weights are not constants
    (the template-feature correlations)."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in constants]


def calibration_crops(frames: Sequence[np.ndarray], count: int, exemplar_size: int = 127,
                      instance_size: int = 255, context_amount: float = 0.5, rgb: bool = False,
                      seed: int = 0) -> List[tuple]:
    """``count`` (template, search) uint8 HWC crop pairs around random boxes on ``frames``."""
    if not frames:
        raise SiamcliError("no frames to calibrate on")
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(count):
        frame = frames[k % len(frames)]
        height, width = frame.shape[:2]
        short = min(height, width)
        side = math.exp(rng.uniform(math.log(0.08), math.log(0.4))) * short
        aspect = math.exp(rng.uniform(-0.7, 0.7))
        w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        cx = rng.uniform(w / 2, max(w / 2 + 1, width - w / 2))
        cy = rng.uniform(h / 2, max(h / 2 + 1, height - h / 2))
        mean = channel_mean(frame)
        s_z = context_size(w, h, context_amount)
        s_x = s_z * instance_size / exemplar_size
        shift = rng.uniform(-0.25, 0.25, size=2) * s_x
        z = warp_patch(frame, (cx, cy), exemplar_size, round(s_z), mean)
        x = warp_patch(frame, (cx + shift[0], cy + shift[1]), instance_size, round(s_x), mean)
        if rgb:
            z, x = z[..., ::-1], x[..., ::-1]
        pairs.append((np.ascontiguousarray(z), np.ascontiguousarray(x)))
    return pairs


def calibration_feeds(template_session, crops: Iterable[tuple]) -> List[Feeds]:
    """Search-graph inputs (``x`` and the template features) for each (template, search) crop pair."""
    names = [o.name for o in template_session.get_outputs()]
    z_name = template_session.get_inputs()[0].name
    feeds = []
    for z, x in crops:
        zf = template_session.run(None, {z_name: z.transpose(2, 0, 1)[None].astype(np.float32)})
        feeds.append({"x": x.transpose(2, 0, 1)[None].astype(np.float32), **dict(zip(names, zf))})
    return feeds


def quantize_search(search: bytes, feeds: Sequence[Feeds]) -> bytes:
    """The search graph with its constant-weight convolutions in int8, calibrated on ``feeds``."""
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quant_pre_process, quantize_static)
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise SiamcliError(f"int8 export needs onnx and onnxruntime's quantization tools ({exc})") from None
    if not feeds:
        raise SiamcliError("no calibration crops")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    excluded = dynamic_kernel_convs(onnx.load_from_string(search))
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantizer logs advice (e.g. about folded biases) on the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="siamcli-int8-") as tmp:
            raw, prepared, out = (Path(tmp) / n for n in ("search.onnx", "prepared.onnx", "int8.onnx"))
            raw.write_bytes(search)
            quant_pre_process(str(raw), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(out), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], nodes_to_exclude=excluded,
                            calibrate_method=CalibrationMethod.MinMax)
            return out.read_bytes()
    finally:
        logging.disable(quiet)


def read_frames(source: str, limit: int = 32, every: int = 5) -> List[np.ndarray]:
    """Every ``every``-th frame of a video file or image folder, at most ``limit`` (for calibration)."""
    from ..io.sources import open_source

    frames = []
    with open_source(source) as stream:
        for i, frame in enumerate(stream):
            if i % every == 0:
                frames.append(np.ascontiguousarray(frame))
                if len(frames) >= limit:
                    break
    if not frames:
        raise SiamcliError(f"no frame could be read from {source} to calibrate on")
    return frames


def write_int8_search(template: Path, search: Path, params, source: str, count: int = 64) -> Path:
    """Quantize ``search`` (an exported search graph), calibrated on ``count`` crops of ``source``
    taken with the tracker ``params``' geometry and channel order; writes and returns
    ``search_int8.onnx`` beside it."""
    from .onnx_engine import make_session

    pairs = calibration_crops(read_frames(source), count, params.exemplar_size, params.instance_size,
                              params.context_amount, rgb=params.input_order == "rgb")
    feeds = calibration_feeds(make_session(template, "cpu"), pairs)
    import onnx

    from ..io.files import write_file_atomically

    source_graph = Path(search).read_bytes()
    quantized = quantize_search(source_graph, feeds)
    labels = {p.key: p.value for p in onnx.load_from_string(source_graph).metadata_props}
    if labels:  # the exported model's name goes with its int8 form
        model = onnx.load_from_string(quantized)
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **labels})
        quantized = model.SerializeToString()
    return write_file_atomically(Path(search).with_name("search_int8.onnx"), quantized)
