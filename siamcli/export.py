"""Export a Siamese network to ONNX as two graphs that serve any target.

* ``template.onnx``: ``z`` (N x 3 x 127 x 127, float32 0-255, the model's channel
  order) -> ``zf0`` .. ``zf{K-1}`` (the template features; K = 1, or 3 for the
  multi-level SiamRPN++/SiamBAN models). The batch is free.
* ``search.onnx``: ``x`` (1 x 3 x H x W, H and W free) plus ``zf0`` ..
  ``zf{K-1}`` as graph inputs -> ``cls``, ``loc`` (the layouts of
  :mod:`siamcli.models.base`). The template features being inputs, not
  constants, one exported file tracks any target; the correlation becomes a
  ``Conv`` (or ``MatMul``) whose weights are a graph input. The search batch
  is fixed at one because the depthwise correlation folds the batch into the
  group count of a ``Conv``; :class:`siamcli.engines.OnnxEngine` runs a batch
  sample by sample.

Uses torch's TorchScript-based exporter (``dynamo=False``), which needs the
``onnx`` package (a dependency of siamcli); ``onnxscript`` is not needed.

Both files name the model they were exported from in their metadata
(``metadata_props``: :data:`MODEL_KEY`, :data:`ARCHITECTURE_KEY`): the graphs
of one architecture run with the tracker settings of another would give boxes
that look plausible and are wrong, so ``--onnx`` checks the name against
``-m`` (or takes the model from it).
"""
from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .errors import SiamcliError
from .models.base import SiameseModel

OPSET = 17
#: the files ``siamcli export`` writes into its folder
EXPORT_FILES = {"template": "template.onnx", "search": "search.onnx"}
#: metadata keys of an exported graph: the catalog name (or config name) and the architecture
MODEL_KEY = "siamcli.model"
ARCHITECTURE_KEY = "siamcli.architecture"


def _flatten(zf: Any) -> List[torch.Tensor]:
    return list(zf) if isinstance(zf, (list, tuple)) else [zf]


class _TemplateGraph(nn.Module):
    def __init__(self, model: SiameseModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor):
        return tuple(_flatten(self.model.template_kernels(z)))


class _SearchGraph(nn.Module):
    def __init__(self, model: SiameseModel, multi: bool) -> None:
        super().__init__()
        self.model = model
        self.multi = multi

    def forward(self, x: torch.Tensor, *zf: torch.Tensor):
        kernels = list(zf) if self.multi else zf[0]
        return self.model.search(x, kernels)


def export_graph(module: nn.Module, args: Tuple, input_names, output_names, dynamic_axes) -> bytes:
    """``module`` traced with ``args`` as serialized ONNX (quietly)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python ints; deprecation notice
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)
    return buf.getvalue()


def export_onnx_bytes(model: SiameseModel, exemplar_size: int = 127, instance_size: int = 255
                      ) -> Tuple[bytes, bytes]:
    """The two serialized graphs ``(template, search)``, without touching the disk."""
    # the wrappers are put in eval mode too: the exporter restores each module's
    # mode afterwards, and a fresh wrapper's default (training) would spread to the model
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        model = copy.deepcopy(model).float().to("cpu")  # leave the caller's (GPU / half) model alone
    model = model.eval()
    z = torch.full((1, 3, exemplar_size, exemplar_size), 114.0)
    x = torch.full((1, 3, instance_size, instance_size), 114.0)
    with torch.no_grad():
        kernels = model.template_kernels(z)
        zf = _flatten(kernels)
        multi = isinstance(kernels, (list, tuple))
        names = [f"zf{i}" for i in range(len(zf))]
        template = export_graph(_TemplateGraph(model).eval(), (z,), ["z"], names,
                           {"z": {0: "n"}, **{n: {0: "n"} for n in names}})
        search = export_graph(_SearchGraph(model, multi).eval(), (x, *zf), ["x", *names], ["cls", "loc"],
                         {"x": {2: "height", 3: "width"},
                          "cls": {2: "score_h", 3: "score_w"}, "loc": {2: "score_h", 3: "score_w"}})
    return template, search


def label_graph(data: bytes, model_name: str, architecture: str) -> bytes:
    """Serialized ONNX ``data`` with the model's name and architecture in its metadata."""
    import onnx

    graph = onnx.load_model_from_string(data)
    props = {p.key: p.value for p in graph.metadata_props}
    props.update({MODEL_KEY: model_name, ARCHITECTURE_KEY: architecture})
    onnx.helper.set_model_props(graph, props)
    return graph.SerializeToString()


def export_onnx(model: SiameseModel, out_dir: Union[str, Path], exemplar_size: int = 127,
                instance_size: int = 255, model_name: Optional[str] = None,
                architecture: Optional[str] = None) -> Dict[str, Path]:
    """Write ``template.onnx`` and ``search.onnx`` into ``out_dir`` (created if needed), each
    whole or not at all, labelled with ``model_name`` and ``architecture`` when given."""
    from .io.files import write_file_atomically

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
