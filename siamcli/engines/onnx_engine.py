"""onnxruntime engines: siamcli's own two-graph export, and NanoTrack's published ONNX pair.

Neither imports torch (the ``onnx`` package edits NanoTrack's backbone). Sessions run with ``session.intra_op.allow_spinning=0``:
spinning worker threads otherwise steal the CPU from video decoding between
frames.

Template features are kept as a list of float32 arrays (one per feature level).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import SiamcliError, quoted
from .choices import DEVICES

Source = Union[str, Path, bytes]
#: metadata keys of an exported graph (:mod:`.onnx_export`): the model's name and its architecture,
#: so that ``--onnx`` files run with their own model's tracker settings
MODEL_KEY = "siamcli.model"
ARCHITECTURE_KEY = "siamcli.architecture"



def _ort():
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        raise SiamcliError("the onnx engine needs onnxruntime: pip install onnxruntime (or onnxruntime-gpu)") from None
    return onnxruntime


def providers_for(device: Optional[str] = None) -> List[str]:
    """onnxruntime execution providers for ``device``.

    ``auto``/None: CUDA when onnxruntime-gpu sees a GPU, else CPU; ``cuda``;
    ``tensorrt`` (TensorRT, falling back to CUDA then CPU for unsupported nodes); ``cpu``.
    """
    available = _ort().get_available_providers()
    dev = (device or "auto").split(":")[0]
    if dev not in DEVICES:
        raise SiamcliError(f"unknown device {quoted(device)} for the onnx engine; use one of {', '.join(DEVICES)}")
    if dev == "auto":
        dev = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    wanted = {"cuda": ["CUDAExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}[dev]
    if wanted[0] not in available:
        raise SiamcliError(
            f"device {quoted(device)} needs onnxruntime's {wanted[0]}, which this onnxruntime lacks "
            f"(available: {', '.join(available)}); install onnxruntime-gpu or use --device cpu"
        )
    return wanted + ["CPUExecutionProvider"]


def make_session(source: Source, device: Optional[str] = None, threads: Optional[int] = None,
                 save_optimized: Optional[Path] = None, optimized: bool = False):
    """An ``InferenceSession`` for a file path or serialized model bytes.

    ``save_optimized``: also write the graph as onnxruntime optimized it (for this machine's
    CPU) there; ``optimized``: ``source`` is such a graph, loaded without optimizing again, which
    is most of the time a large graph takes to load.
    """
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL if optimized
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    partial = None
    if save_optimized is not None:
        partial = Path(f"{save_optimized}.{os.getpid()}.tmp")
        opts.optimized_model_filepath = str(partial)
        opts.log_severity_level = 3  # its warning that the file suits this machine only: it is kept per machine
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads is not None:
        if int(threads) < 1:
            raise SiamcliError(f"threads must be at least 1, got {threads}")
        opts.intra_op_num_threads = int(threads)
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise SiamcliError(f"ONNX file not found: {path}")
        source = path.read_bytes()
    try:
        session = ort.InferenceSession(source, sess_options=opts, providers=providers_for(device))
    except SiamcliError:
        raise
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        if partial is not None:  # e.g. the optimized copy could not be written (disk full): without it
            try:
                partial.unlink()
            except OSError:
                pass
            return make_session(source, device, threads)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SiamcliError(f"onnxruntime cannot load the model: {first}") from None
    if partial is not None:
        try:
            if partial.is_file():
                os.replace(partial, save_optimized)
        except OSError:  # an optimisation only
            pass
    return session


def _nchw(patch: np.ndarray) -> np.ndarray:
    arr = patch if patch.ndim == 4 else patch[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) patch or an (N, H, W, 3) batch, got shape {patch.shape}")
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32)


def _sample(zf: Sequence[np.ndarray], i: int) -> List[np.ndarray]:
    return [a[i:i + 1] if a.shape[0] > 1 else a for a in zf]


def _shapes_fit(made: Sequence, taken: Sequence) -> bool:
    """Whether declared shapes agree where both are known (a symbolic dimension fits any size:
    the exporter leaves some template-feature sizes symbolic, e.g. after a crop's Slice)."""
    return len(made) == len(taken) and all(
        a == b or not isinstance(a, int) or not isinstance(b, int) for a, b in zip(made, taken))


def free_spatial_input(model: bytes) -> Tuple[bytes, List[Union[int, str]]]:
    """A serialized ONNX model whose first input's height and width are free (named ``height`` and
    ``width``), and that input's shape as declared before. The recorded intermediate and output
    shapes, worked out for the old input size, are dropped: onnxruntime infers them again."""
    import onnx

    proto = onnx.load_model_from_string(model)
    graph = proto.graph
    if not graph.input:
        raise ValueError("the model has no input")
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError(f"input {graph.input[0].name!r} is not 4-D (NCHW)")
    declared: List[Union[int, str]] = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    del graph.value_info[:]
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")
    return proto.SerializeToString(), declared


def _batch_is_fixed(session, name: str) -> bool:
    shape = next(i.shape for i in session.get_inputs() if i.name == name)
    return isinstance(shape[0], int)


class OnnxEngine:
    """Runs ``template.onnx`` / ``search.onnx`` written by :func:`siamcli.export.export_onnx`.

    ``template`` and ``search`` are file paths or serialized models. A batch of
    N search patches is run sample by sample against template ``i`` (or the
    one template when the template batch is one). ``save_optimized`` / ``optimized``:
    see :func:`make_session`.
    """

    #: the tracker crops on the host
    crops_on_device = False

    def __init__(self, template: Source, search: Source, device: Optional[str] = None,
                 threads: Optional[int] = None, save_optimized: Optional[Tuple[Path, Path]] = None,
                 optimized: bool = False) -> None:
        search = search if isinstance(search, bytes) else _read(search)  # read once: session and precision
        saves = save_optimized or (None, None)
        self.template_session = make_session(template, device, threads, saves[0], optimized)
        self.search_session = make_session(search, device, threads, saves[1], optimized)
        self.zf_names = [o.name for o in self.template_session.get_outputs()]
        search_inputs = [i.name for i in self.search_session.get_inputs()]
        made = {o.name: o.shape[1:] for o in self.template_session.get_outputs()}
        taken = {i.name: i.shape[1:] for i in self.search_session.get_inputs()}
        if search_inputs[:1] != ["x"] or sorted(search_inputs[1:]) != sorted(self.zf_names) or any(
                not _shapes_fit(made[n], taken[n]) for n in self.zf_names):
            raise SiamcliError(
                f"the search graph's inputs {search_inputs} do not match the template graph's outputs "
                f"{self.zf_names}: give the template.onnx and search.onnx of one `siamcli export`"
            )
        self._template_batch_fixed = _batch_is_fixed(self.template_session, "z")
        #: the search graph's metadata (``siamcli export`` names the model there)
        self.metadata: Dict[str, str] = dict(self.search_session.get_modelmeta().custom_metadata_map)
        #: any search size: the exported search graph's height and width are free
        self.max_instance_size: Optional[int] = None
        self.providers = self.search_session.get_providers()
        # a search graph from `siamcli export --int8` holds QuantizeLinear nodes (op names are plain strings)
        self.precision = "int8" if b"QuantizeLinear" in search else "fp32"
        self.name = "onnx-" + self.providers[0].replace("ExecutionProvider", "").lower()

    def template(self, patch: np.ndarray) -> List[np.ndarray]:
        z = _nchw(patch)
        if len(z) == 1 or not self._template_batch_fixed:
            return self.template_session.run(None, {"z": z})
        parts = [self.template_session.run(None, {"z": z[i:i + 1]}) for i in range(len(z))]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self.zf_names))]

    def track_regions(self, frame: np.ndarray, regions: Sequence[Sequence[float]], model_size: int,
                      fills: Sequence[Sequence[float]], rgb: bool, features: Any) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("onnxruntime engines take host crops (crops_on_device is False)")

    def _search_one(self, x: np.ndarray, zf: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        feeds = {"x": x, **dict(zip(self.zf_names, zf))}
        cls, loc = self.search_session.run(["cls", "loc"], feeds)
        return cls, loc

    def track(self, patch: np.ndarray, zf: Any) -> Tuple[np.ndarray, np.ndarray]:
        x = _nchw(patch)
        zf = list(zf)
        if len(x) == 1 and zf[0].shape[0] == 1:
            return self._search_one(x, zf)
        n = max(len(x), zf[0].shape[0])
        if len(x) not in (1, n) or zf[0].shape[0] not in (1, n):
            raise ValueError(f"cannot correlate a batch of {len(x)} search patches with {zf[0].shape[0]} templates")
        outs = [self._search_one(x[i:i + 1] if len(x) > 1 else x, _sample(zf, i)) for i in range(n)]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    @staticmethod
    def join_templates(zfs: Sequence[Any]) -> List[np.ndarray]:
        """Template features of several targets as one batch."""
        return [np.concatenate([z[k] for z in zfs]) for k in range(len(zfs[0]))]


class OnnxPairEngine(OnnxEngine):
    """NanoTrack's published pair: ``backbone.onnx`` (input ``input``) and ``head.onnx``
    (``input1`` template features, ``input2`` search features -> ``output1`` cls,
    ``output2`` loc), the files OpenCV's ``cv2.TrackerNano`` loads.

    The published backbone declares a fixed 1x3x255x255 input; OpenCV's dnn
    re-infers shapes from whatever blob it gets and so runs the 127x127
    template through it. onnxruntime checks declared shapes, so the input's
    height and width are made free when the backbone is loaded
    (:func:`free_spatial_input`; no other change).
    The head's reshapes are fixed to a 16x16 search map, i.e. a 255x255 search
    patch: wider searches (re-detection) need a ``siamcli export`` of the .pth.
    """

    def __init__(self, backbone: Source, head: Source, device: Optional[str] = None,
                 threads: Optional[int] = None) -> None:
        data = backbone if isinstance(backbone, bytes) else _read(backbone)
        try:
            data, declared = free_spatial_input(data)
        except Exception as exc:  # onnx's DecodeError for a file that is no ONNX model at all
            raise SiamcliError(f"{backbone if not isinstance(backbone, bytes) else 'backbone'} "
                               f"is not a NanoTrack backbone ONNX model ({exc})") from None
        self.backbone_session = make_session(data, device, threads)
        self.head_session = make_session(head, device, threads)
        self._in = self.backbone_session.get_inputs()[0].name
        head_inputs = self.head_session.get_inputs()
        names = [i.name for i in head_inputs]
        if len(names) != 2:
            raise SiamcliError(f"the head model has inputs {names}; a NanoTrack head has two (template, search features)")
        self._zin, self._xin = names
        self.search_map = tuple(head_inputs[1].shape[2:])
        #: the search patch the head's fixed map belongs to (the backbone's declared input side);
        #: the re-detector widens its search no further
        self.max_instance_size = (declared[-1] if all(isinstance(d, int) for d in self.search_map)
                                  and declared and isinstance(declared[-1], int) else None)
        self.zf_names = [self._zin]
        self.metadata = dict(self.head_session.get_modelmeta().custom_metadata_map)
        self.providers = self.head_session.get_providers()
        self.precision = "fp32"
        self.name = "onnx-pair-" + self.providers[0].replace("ExecutionProvider", "").lower()

    def template(self, patch: np.ndarray) -> List[np.ndarray]:
        z = _nchw(patch)
        return [np.concatenate([self.backbone_session.run(None, {self._in: z[i:i + 1]})[0] for i in range(len(z))])]

    def _search_one(self, x: np.ndarray, zf: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        xf = self.backbone_session.run(None, {self._in: x})[0]
        if all(isinstance(d, int) for d in self.search_map) and tuple(xf.shape[2:]) != self.search_map:
            raise SiamcliError(
                f"the NanoTrack head.onnx takes a {self.search_map[0]}x{self.search_map[1]} search map "
                f"(a 255x255 search patch), got {xf.shape[2]}x{xf.shape[3]}: for other search sizes "
                "(re-detection) export the .pth with `siamcli export` and use the onnx engine"
            )
        cls, loc = self.head_session.run(None, {self._zin: zf[0], self._xin: xf})
        return cls, loc


def _read(path: Union[str, Path]) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise SiamcliError(f"ONNX file not found: {path}")
    return path.read_bytes()
