"""A Siamese network as two ONNX graphs that serve any target (what the onnx engine runs).

* ``template.onnx``: ``z`` (N x 3 x 127 x 127, float32 0-255, the model's channel
  order) -> ``zf0`` .. ``zf{K-1}`` (the template features; K = 1, or 3 for the
  multi-level SiamRPN++/SiamBAN models). The batch is free.
* ``search.onnx``: ``x`` (1 x 3 x H x W, H and W free) plus ``zf0`` ..
  ``zf{K-1}`` as graph inputs -> ``cls``, ``loc`` (the layouts of
  :mod:`siamcli.models.base`). The template features being inputs, not
  constants, one exported file tracks any target; the correlation becomes a
  ``Conv`` (or ``MatMul``) whose weights are a graph input. The search batch
  is fixed at one because the depthwise correlation folds the batch into the
  group count of a ``Conv``; :class:`.onnx_engine.OnnxEngine` runs a batch
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
from typing import Any, List, Tuple

import torch
from torch import nn

from ..models.base import SiameseModel
from .onnx_engine import ARCHITECTURE_KEY, MODEL_KEY

OPSET = 17


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
