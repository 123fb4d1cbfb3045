"""``siamcli export``: a network's two ONNX graphs written to a folder, and their int8 form.

The graphs come from :func:`siamcli.engines.onnx_export.export_onnx_bytes`. ``--int8`` quantizes the
search graph (:mod:`siamcli.engines.quantize`), calibrated on crops of a video or image folder the
user gives: random boxes (8-40 % of the short side), their template crop and a search crop around
them with a random shift, cut as the tracker cuts them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .engines.onnx_engine import make_session
from .engines.onnx_export import export_onnx_bytes, label_graph
from .engines.onnx_files import read_pair
from .engines.quantize import calibration_feeds, quantize_search
from .errors import SiamcliError
from .io.files import write_file_atomically
from .io.sources import open_source
from .models.base import SiameseModel
from .tracking.crop import channel_mean, context_size, warp_patch

#: the files ``siamcli export`` writes into its folder
EXPORT_FILES = {"template": "template.onnx", "search": "search.onnx"}


def export_onnx(model: SiameseModel, out_dir: Union[str, Path], exemplar_size: int = 127,
                instance_size: int = 255, model_name: Optional[str] = None,
                architecture: Optional[str] = None) -> Dict[str, Path]:
    """Write ``template.onnx`` and ``search.onnx`` into ``out_dir`` (created if needed), each
    whole or not at all, labelled with ``model_name`` and ``architecture`` when given."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SiamcliError(f"export target {out} exists and is not a folder; give a folder with -o")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiamcliError(f"cannot create the export folder {out}: {exc.strerror}") from None
    graphs = dict(zip(EXPORT_FILES, export_onnx_bytes(model, exemplar_size, instance_size)))
    if model_name and architecture:
        graphs = {kind: label_graph(data, model_name, architecture) for kind, data in graphs.items()}
    paths = {}
    try:
        for kind, data in graphs.items():
            paths[kind] = write_file_atomically(out / EXPORT_FILES[kind], data)
    except SiamcliError:
        for path in paths.values():  # one file of a pair is of no use: none rather than half
            path.unlink(missing_ok=True)
        raise
    return paths


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


def read_frames(source: str, limit: int = 32, every: int = 5) -> List[np.ndarray]:
    """Every ``every``-th frame of a video file or image folder, at most ``limit`` (for calibration)."""
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
    pair = read_pair((template, search))  # read back as `--onnx` reads them: one pair, checked
    pairs = calibration_crops(read_frames(source), count, params.exemplar_size, params.instance_size,
                              params.context_amount, rgb=params.input_order == "rgb")
    feeds = calibration_feeds(make_session(pair.first.data, "cpu"), pairs)
    quantized = quantize_search(pair.second.data, feeds)
    import onnx

    labels = pair.second.metadata
    if labels:  # the exported model's name goes with its int8 form
        model = onnx.load_from_string(quantized)
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, **labels})
        quantized = model.SerializeToString()
    return write_file_atomically(Path(search).with_name("search_int8.onnx"), quantized)
