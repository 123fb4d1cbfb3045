"""int8 search graphs: static quantization of ``siamcli export``'s search.onnx.

onnxruntime's quantizer rewrites every convolution whose weights are constants
as int8 (QDQ format: int8 weights per output channel, uint8 activations with
ranges calibrated on real crops); the correlation convolutions, whose kernels
are the template-features *input*, stay fp32, so one quantized graph still
serves any target. The template graph runs once per target and is left fp32.

The calibration crops come from :func:`siamcli.export.write_int8_search`. Whether int8 keeps a
model's accuracy must be measured (``siamcli eval --onnx``): siamcli never picks int8 on its own.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from ..errors import SiamcliError

Feeds = Dict[str, np.ndarray]


def dynamic_kernel_convs(model) -> List[str]:
    """Names of the ``Conv`` nodes of an ONNX ``model`` whose weights are not constants
    (the template-feature correlations)."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in constants]


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
