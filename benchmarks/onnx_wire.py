"""A minimal reader of the ONNX protobuf wire format, for machines without the `onnx`
package (the lent GPU's PyTorch environment has torch and torchvision only).

It reads what benchmarks/torch_compare.py needs to map pretrained weights onto a
torchvision model: the graph's nodes (op type, inputs, float/int attributes) and its
initializers as numpy arrays (float32/int64, raw_data or the typed repeated fields).

Protobuf wire format: each field is a varint key (field_number << 3 | wire_type)
followed by a varint (type 0), 8 bytes (type 1), a length-delimited blob (type 2) or 4
bytes (type 5). Field numbers from onnx.proto: ModelProto.graph = 7; GraphProto.node
= 1, initializer = 5; NodeProto.input = 1, output = 2, op_type = 4, attribute = 5;
AttributeProto.name = 1, f = 2, i = 3, t = 5, ints = 8; GraphProto.input = 11,
output = 12 (ValueInfoProto.name = 1); TensorProto.dims = 1, data_type = 2,
float_data = 4, int64_data = 7, name = 8, raw_data = 9.
"""
import struct

import numpy as np

_DTYPES = {1: np.float32, 7: np.int64, 11: np.float64, 6: np.int32}


def _varint(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yields (field_number, wire_type, value) of one message; value is an int or bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"ONNX: unsupported protobuf wire type {wire} at byte {pos}")
        yield number, wire, value


def _packed_varints(blob):
    values, pos = [], 0
    while pos < len(blob):
        v, pos = _varint(blob, pos)
        values.append(v - (1 << 64) if v >= 1 << 63 else v)
    return values


def _tensor(blob):
    dims, dtype, name, raw, floats, ints = [], 1, "", None, [], []
    for number, wire, value in _fields(blob):
        if number == 1:
            dims += _packed_varints(value) if wire == 2 else [value]
        elif number == 2:
            dtype = value
        elif number == 4:
            floats += list(struct.unpack(f"<{len(value) // 4}f", value)) if wire == 2 else [struct.unpack("<f", value)[0]]
        elif number == 7:
            ints += _packed_varints(value) if wire == 2 else [value]
        elif number == 8:
            name = value.decode()
        elif number == 9:
            raw = value
    if dtype not in _DTYPES:
        raise ValueError(f"ONNX: initializer {name!r} has data type {dtype}, not supported here")
    if raw is not None:
        array = np.frombuffer(raw, dtype=_DTYPES[dtype]).copy()
    else:
        array = np.array(floats if dtype in (1, 11) else ints, dtype=_DTYPES[dtype])
    return name, array.reshape(dims)


def _attribute(blob):
    """(name, value): a float, an int, a list of ints or a numpy array (a tensor attribute)."""
    name, value, ints = "", None, []
    for number, wire, v in _fields(blob):
        if number == 1:
            name = v.decode()
        elif number == 2:
            value = struct.unpack("<f", v)[0]
        elif number == 3:
            value = v - (1 << 64) if v >= 1 << 63 else v
        elif number == 5:
            value = _tensor(v)[1]
        elif number == 8:
            ints += _packed_varints(v) if wire == 2 else [v - (1 << 64) if v >= 1 << 63 else v]
    return name, (ints if ints else value)


def _node(blob):
    node = {"inputs": [], "outputs": [], "op_type": "", "attributes": {}}
    for number, _, value in _fields(blob):
        if number == 1:
            node["inputs"].append(value.decode())
        elif number == 2:
            node["outputs"].append(value.decode())
        elif number == 4:
            node["op_type"] = value.decode()
        elif number == 5:
            name, v = _attribute(value)
            node["attributes"][name] = v
    return node


def _value_info_name(blob):
    return next((v.decode() for n, w, v in _fields(blob) if n == 1 and w == 2), "")


def read_onnx_graph(path):
    """The graph as a dict: nodes (in order, as dicts), initializers ({name: numpy array}),
    inputs and outputs (names)."""
    with open(path, "rb") as f:
        model = f.read()
    graph = next((v for n, w, v in _fields(model) if n == 7 and w == 2), None)
    if graph is None:
        raise ValueError(f"{path}: no graph (not an ONNX model?)")
    result = {"nodes": [], "initializers": {}, "inputs": [], "outputs": []}
    for number, wire, value in _fields(graph):
        if wire != 2:
            continue
        if number == 1:
            result["nodes"].append(_node(value))
        elif number == 5:
            name, array = _tensor(value)
            result["initializers"][name] = array
        elif number == 11:
            result["inputs"].append(_value_info_name(value))
        elif number == 12:
            result["outputs"].append(_value_info_name(value))
    return result


def read_onnx(path):
    """(nodes, initializers) of read_onnx_graph."""
    graph = read_onnx_graph(path)
    return graph["nodes"], graph["initializers"]
