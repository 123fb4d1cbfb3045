"""Two ONNX files given to siamcli, read and checked as a pair before any session runs them.

siamcli runs two kinds of pair: the ``template.onnx`` and ``search.onnx`` of ``siamcli export``
(template features in, as graph inputs of the search graph), and NanoTrack's published
``backbone.onnx`` and ``head.onnx`` (the files OpenCV's ``cv2.TrackerNano`` loads).
:func:`read_pair` reads both files once (bounded in size, parsed and checked by ``onnx``),
tells each file's part from its inputs and outputs, and refuses before any frame what would
otherwise fail in the middle of a run or, worse, run: a file that is no ONNX model, the two
files of a pair in the wrong order, files of two different pairs, a pair whose score map or
patch sizes are not those of the model it is run as. ``track``, ``eval``, ``batch``, ``bench``
(``--onnx`` and ``--baseline-onnx``) and the onnx engine all come through here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

from ..errors import SiamcliError
from ..io.paths import read_input

PathLike = Union[str, Path]
Shape = Tuple[Union[int, str], ...]

#: the largest ONNX file read: protobuf serializes no model larger (external data aside)
MAX_ONNX_BYTES = 2 << 30
#: NanoTrack's published pairs, told apart by the channels of the features the head takes and by
#: how many pixel-wise correlations (one MatMul each) it holds: v1 one for both branches, v2 one
#: per branch, as their checkpoints' keys say (siamcli.models.nanotrack.detect_nanotrack_version)
_NANOTRACK_HEADS = {(48, 1): "nanotrack_v1", (48, 2): "nanotrack_v2", (96, 2): "nanotrack_v3"}

PARTS = {"template": "the template graph of a `siamcli export`", "search": "the search graph of a `siamcli export`",
         "backbone": "a NanoTrack backbone", "head": "a NanoTrack head"}
PAIR_HELP = ("give template.onnx and search.onnx of one `siamcli export`, or NanoTrack's backbone.onnx and "
             "head.onnx, in that order")


@dataclass(frozen=True)
class OnnxGraph:
    """One ONNX file: its bytes, declared inputs and outputs (initializers left out), metadata,
    operator counts, and its part in a pair (a key of :data:`PARTS`, or None)."""

    path: Path
    data: bytes = field(repr=False)
    inputs: Tuple[Tuple[str, Shape], ...]
    outputs: Tuple[Tuple[str, Shape], ...]
    metadata: Dict[str, str]
    ops: Dict[str, int]

    @property
    def part(self) -> Optional[str]:
        names = [name for name, _ in self.inputs]
        outs = [name for name, _ in self.outputs]
        if names == ["z"] and outs and all(n.startswith("zf") for n in outs):
            return "template"
        if names[:1] == ["x"] and outs == ["cls", "loc"]:
            return "search"
        four_d = all(len(shape) == 4 for _, shape in (*self.inputs, *self.outputs))
        if four_d and len(self.inputs) == 1 and len(self.outputs) == 1:
            return "backbone"
        if four_d and len(self.inputs) == 2 and len(self.outputs) == 2 and \
                [_dim(shape, 1) for _, shape in self.outputs] in ([2, 4], ["?", "?"]):
            return "head"  # scores of two classes, then four box offsets, per position (the points family)
        return None


@dataclass(frozen=True)
class OnnxPair:
    """Two ONNX files that belong together: ``kind`` ``"export"`` (template, search) or
    ``"nanotrack"`` (backbone, head)."""

    first: OnnxGraph
    second: OnnxGraph
    kind: str

    @property
    def paths(self) -> Tuple[Path, Path]:
        return self.first.path, self.second.path

    @property
    def names(self) -> str:
        return f"{self.first.path} and {self.second.path}"

    @property
    def metadata(self) -> Dict[str, str]:
        """What the search graph's (or head's) metadata say: ``siamcli export`` names the model there."""
        return self.second.metadata

    @property
    def nanotrack_model(self) -> Optional[str]:
        """The NanoTrack model a published pair belongs to (None: not recognised, or an export)."""
        if self.kind != "nanotrack":
            return None
        channels = _dim(self.second.inputs[0][1], 1)
        return _NANOTRACK_HEADS.get((channels, self.second.ops.get("MatMul", 0)))

    @property
    def score_size(self) -> Optional[int]:
        """The side of a published pair's score map (its head's outputs are fixed), else None."""
        if self.kind != "nanotrack":
            return None
        side = _dim(self.second.outputs[0][1], 3)
        return side if isinstance(side, int) and side > 0 else None

    def check_sizes(self, model: str, exemplar_size: int, instance_size: int, score_size: int) -> None:
        """Refuse the pair for ``model`` whose patches and score map have these sizes when the files
        declare others (the graphs would fail on the first frame, or answer for another geometry)."""
        side = _dim(self.first.inputs[0][1], 3)  # the template patch (export) or the search patch (NanoTrack)
        if not isinstance(side, int) or side <= 0:
            side = None
        if self.kind == "export":
            if side is not None and side != exemplar_size:
                raise SiamcliError(f"{self.first.path} takes {side}x{side} template patches, model {model} cuts "
                                   f"{exemplar_size}x{exemplar_size} ones: run them with the model (or --config) "
                                   "they were exported from")
            return
        belongs = self.nanotrack_model
        if self.score_size and self.score_size != score_size:
            hint = f": they belong to {belongs}, run them with -m {belongs}" if belongs else ""
            raise SiamcliError(f"{self.names} give a {self.score_size}x{self.score_size} score map, model {model} "
                               f"reads a {score_size}x{score_size} one{hint}")
        if side is not None and side != instance_size:
            raise SiamcliError(f"{self.first.path} takes {side}x{side} search patches, model {model} cuts "
                               f"{instance_size}x{instance_size} ones: NanoTrack's published head takes one search "
                               "size; for another, export the .pth with `siamcli export`")


def _dim(shape: Shape, index: int) -> Union[int, str, None]:
    return shape[index] if len(shape) > index else None


def _value_shape(value) -> Shape:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
                 for d in dims)


def read_graph(path: PathLike) -> OnnxGraph:
    """The ONNX file at ``path`` read (at most :data:`MAX_ONNX_BYTES`) and checked by ``onnx``'s
    checker; a file that is no valid ONNX model raises :class:`SiamcliError`."""
    import onnx

    path = Path(path)
    data = read_input(path, "ONNX file", MAX_ONNX_BYTES)
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError: the file is no model
        first = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        raise SiamcliError(f"{path} is not a valid ONNX model ({first})") from None
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    ops: Dict[str, int] = {}
    for node in graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return OnnxGraph(path, data,
                     tuple((i.name, _value_shape(i)) for i in graph.input if i.name not in constants),
                     tuple((o.name, _value_shape(o)) for o in graph.output),
                     {p.key: p.value for p in model.metadata_props}, ops)


def read_pair(files: Sequence[PathLike], option: str = "--onnx") -> OnnxPair:
    """The two files of ``files`` read and checked as one pair (see the module's description);
    ``option`` names where they were given in messages."""
    if len(files) != 2:
        raise SiamcliError(f"give two ONNX files: {PAIR_HELP}")
    first, second = (read_graph(f) for f in files)
    parts = (first.part, second.part)
    described = [f"{g.path} is {PARTS[g.part]}" if g.part else f"{g.path} is no graph siamcli runs "
                 f"(inputs {[n for n, _ in g.inputs]}, outputs {[n for n, _ in g.outputs]})" for g in (first, second)]
    if parts in (("search", "template"), ("head", "backbone")):
        raise SiamcliError(f"{described[0]} and {described[1]}: they are given in the wrong order; "
                           f"give {option} {second.path} {first.path}")
    if parts == ("template", "search"):
        _check_export(first, second)
        return OnnxPair(first, second, "export")
    if parts == ("backbone", "head"):
        _check_nanotrack(first, second)
        return OnnxPair(first, second, "nanotrack")
    raise SiamcliError(f"{described[0]} and {described[1]}: not a pair siamcli runs; {PAIR_HELP}")


def _check_export(template: OnnxGraph, search: OnnxGraph) -> None:
    made = dict(template.outputs)
    taken = dict(search.inputs[1:])
    if sorted(made) != sorted(taken) or any(not _shapes_fit(made[n], taken[n]) for n in made):
        raise SiamcliError(f"{template.path} and {search.path} come from different exports: the search graph takes "
                           f"{_listed(search.inputs[1:])}, the template graph gives {_listed(template.outputs)}; "
                           "give the template.onnx and search.onnx of one `siamcli export`")
    labels = [(g.metadata.get("siamcli.model"), g.metadata.get("siamcli.architecture")) for g in (template, search)]
    if all(label[0] for label in labels) and labels[0] != labels[1]:
        raise SiamcliError(f"{template.path} was exported from model {labels[0][0]} and {search.path} from "
                           f"{labels[1][0]}: give the template.onnx and search.onnx of one `siamcli export`")


def _check_nanotrack(backbone: OnnxGraph, head: OnnxGraph) -> None:
    colours = _dim(backbone.inputs[0][1], 1)
    if isinstance(colours, int) and colours not in (0, 3):
        raise SiamcliError(f"{backbone.path} takes {colours}-channel input, not an image: {PAIR_HELP}")
    features = _dim(backbone.outputs[0][1], 1)
    taken = [_dim(shape, 1) for _, shape in head.inputs]
    if isinstance(features, int) and any(isinstance(c, int) and c != features for c in taken):
        raise SiamcliError(f"{backbone.path} gives {features}-channel features and {head.path} takes "
                           f"{'/'.join(sorted({str(c) for c in taken}))}-channel ones: the backbone and head of two "
                           "different NanoTrack pairs")


def _shapes_fit(made: Shape, taken: Shape) -> bool:
    """Whether declared shapes agree where both are known, the batch aside (a symbolic dimension
    fits any size)."""
    return len(made) == len(taken) and all(
        a == b or not isinstance(a, int) or not isinstance(b, int) for a, b in list(zip(made, taken))[1:])


def _listed(values: Sequence[Tuple[str, Shape]]) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in values) or "nothing"

