"""Make the spatial size of an ONNX graph's input free, without the ``onnx`` package.

The NanoTrack backbone OpenCV users have (``nanotrack_backbone_sim.onnx``)
declares its input as 1x3x255x255, yet the same backbone must also run on the
127x127 template (OpenCV's dnn module simply re-infers every shape from the
blob it is given). onnxruntime checks inputs against the declared shape, so
here the declared height and width of the input become named free dimensions
and the recorded intermediate and output shapes (``graph.value_info``,
``graph.output`` shapes) are dropped so that onnxruntime infers them again.

Only the few fields involved are touched, by walking the protobuf wire
format of ``ModelProto`` directly (field numbers from onnx.proto3):

    ModelProto.graph = 7; GraphProto.input = 11, output = 12, value_info = 13;
    ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
    TypeProto.Tensor.shape = 2; TensorShapeProto.dim = 1;
    Dimension.dim_value = 1, dim_param = 2.

Every other byte is copied unchanged.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

Field = Tuple[int, int, Union[int, bytes]]

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def parse(buf: bytes) -> List[Field]:
    """The fields of one message, in order: (field number, wire type, value)."""
    fields: List[Field] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == _I64:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == _I32:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((num, wire, value))
    if pos != end:
        raise ValueError("truncated protobuf message")
    return fields


def encode(fields: Sequence[Field]) -> bytes:
    out = bytearray()
    for num, wire, value in fields:
        out += _varint((num << 3) | wire)
        if wire == _VARINT:
            out += _varint(int(value))
        elif wire == _LEN:
            out += _varint(len(value)) + bytes(value)
        else:
            out += bytes(value)
    return bytes(out)


def _get(fields: Sequence[Field], num: int) -> Optional[bytes]:
    for n, w, v in fields:
        if n == num and w == _LEN:
            return v  # type: ignore[return-value]
    return None


def _replace(fields: Sequence[Field], num: int, value: bytes) -> List[Field]:
    return [(n, w, value if n == num and w == _LEN else v) for n, w, v in fields]


def _value_info_name(info: bytes) -> str:
    name = _get(parse(info), 1)
    return name.decode() if name is not None else ""


def _dims(info: bytes) -> List[List[Field]]:
    tensor = parse(_get(parse(_get(parse(info), 2) or b""), 1) or b"")
    shape = parse(_get(tensor, 2) or b"")
    return [parse(v) for n, w, v in shape if n == 1 and w == _LEN]


def _with_dims(info: bytes, dims: Optional[List[bytes]]) -> bytes:
    """``info`` with its tensor shape replaced by ``dims`` (encoded Dimensions), or removed (None)."""
    vi = parse(info)
    type_proto = parse(_get(vi, 2) or b"")
    tensor = parse(_get(type_proto, 1) or b"")
    if dims is None:
        tensor = [f for f in tensor if f[0] != 2]
    else:
        shape = encode([(1, _LEN, d) for d in dims])
        tensor = [f for f in tensor if f[0] != 2] + [(2, _LEN, shape)]
    type_proto = _replace(type_proto, 1, encode(tensor))
    return encode(_replace(vi, 2, encode(type_proto)))


def input_shapes(model: bytes) -> Dict[str, List[Union[int, str]]]:
    """Declared shapes of the graph inputs: ints, or names for free dimensions."""
    graph = parse(_get(parse(model), 7) or b"")
    shapes: Dict[str, List[Union[int, str]]] = {}
    for n, w, v in graph:
        if n == 11 and w == _LEN:
            dims: List[Union[int, str]] = []
            for dim in _dims(v):  # type: ignore[arg-type]
                value = [x for k, wt, x in dim if k in (1, 2)]
                dims.append(value[0].decode() if value and isinstance(value[0], bytes) else (value[0] if value else "?"))
            shapes[_value_info_name(v)] = dims  # type: ignore[arg-type]
    return shapes


def free_spatial_input(model: bytes, input_name: Optional[str] = None,
                       names: Tuple[str, str] = ("height", "width")) -> bytes:
    """Serialized ONNX model whose input (default: the first) has free height and width.

    Also drops the recorded intermediate shapes and the output shapes, which
    were computed for the old input size.
    """
    top = parse(model)
    graph_bytes = _get(top, 7)
    if graph_bytes is None:
        raise ValueError("not an ONNX model (no graph)")
    graph = parse(graph_bytes)
    new_graph: List[Field] = []
    done = False
    for n, w, v in graph:
        if n == 13 and w == _LEN:
            continue  # value_info: shapes for the old input size
        if n == 12 and w == _LEN:
            v = _with_dims(v, None)  # type: ignore[arg-type]
        elif n == 11 and w == _LEN and not done and (input_name is None or _value_info_name(v) == input_name):
            dims = [encode(d) for d in _dims(v)]  # type: ignore[arg-type]
            if len(dims) != 4:
                raise ValueError(f"input {_value_info_name(v)!r} is not 4-D (NCHW)")
            dims[2] = encode([(2, _LEN, names[0].encode())])
            dims[3] = encode([(2, _LEN, names[1].encode())])
            v = _with_dims(v, dims)  # type: ignore[arg-type]
            done = True
        new_graph.append((n, w, v))
    if not done:
        raise ValueError(f"the model has no input named {input_name!r}")
    return encode(_replace(top, 7, encode(new_graph)))
