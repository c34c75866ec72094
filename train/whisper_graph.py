"""A Whisper encoder's first blocks as an ONNX graph, built from the float16 weights of a CTranslate2
``model.bin`` (the container faster-whisper and its relatives ship).

CTranslate2 stores every tensor by name (``encoder/conv1/weight``, ``encoder/layer_0/self_attention/linear_0/weight``
with the query, key and value projections stacked, ...). ``read_ctranslate2`` reads them into numpy;
``encoder_graph`` writes the encoder ser-live runs: input ``mel`` (batch, 80, frames) with any frame count, the two
convolutions with GELU, the first rows of the positional table (Whisper is trained with speech at the start of its
30 s window), pre-norm transformer blocks, and one output per chosen block (that block's residual stream, before the
final layer norm). Products by the weights are then quantised to int8 per utterance (dynamic quantisation, as
ONNX Runtime does it), which makes a block about three times faster on one core than in float. The convolutions
stay in float: with the second written as a product and quantised the same way, a 3 s utterance took about 14%
less time, but the model lost robustness (to a quieter input, to the stream's cuts); quantised per output frame
instead, the head trained on it lost about five points from CREMA-D to RAVDESS (models/README.md).
"""

from __future__ import annotations

import logging
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser_live.encoder import HOP, WINDOW_S
from ser_live.features import SAMPLE_RATE

#: CTranslate2's data type codes (``DataType`` in its sources) that an encoder's tensors use
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class GraphError(ValueError):
    """The file is not a CTranslate2 Whisper model this builder reads; the message is meant for the user."""


def read_ctranslate2(data: bytes) -> dict[str, np.ndarray]:
    """The encoder's tensors of a CTranslate2 ``model.bin`` (names without the ``encoder/`` prefix), float32."""
    at = 0

    def take(fmt: str):
        nonlocal at
        value = struct.unpack_from(fmt, data, at)[0]
        at += struct.calcsize(fmt)
        return value

    def text() -> str:
        nonlocal at
        n = take("<H")
        value = data[at : at + n].rstrip(b"\0").decode()
        at += n
        return value

    try:
        version = take("<I")
        if version < 5:
            raise GraphError(f"CTranslate2 model format {version} is older than this reader knows (5 or later)")
        spec, _revision, count = text(), take("<I"), take("<I")
        if spec != "WhisperSpec":
            raise GraphError(f"the model is a {spec}, not a Whisper model")
        out = {}
        for _ in range(count):
            name, rank = text(), take("<B")
            shape = [take("<I") for _ in range(rank)]
            code, size = take("<B"), take("<I")
            if code not in _DTYPES:
                raise GraphError(f"tensor {name} has a data type ({code}) this reader does not know")
            if name.startswith("encoder/"):
                a = np.frombuffer(data, _DTYPES[code], size // np.dtype(_DTYPES[code]).itemsize, at).reshape(shape)
                out[name[len("encoder/"):]] = a.astype(np.float32) if a.dtype == np.float16 else a.copy()
            at += size
    except struct.error:
        raise GraphError("the CTranslate2 file is truncated") from None
    return out


def layers(weights: dict[str, np.ndarray]) -> int:
    """How many transformer blocks the encoder has."""
    return len({k.split("/")[0] for k in weights if k.split("/")[0].removeprefix("layer_").isdigit()})


def encoder_graph(weights: dict[str, np.ndarray], blocks: Sequence[int], name: str) -> bytes:
    """The ONNX encoder (serialised) of ``blocks`` (1-based, each an output, in that order), int8 products."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    n_layers = layers(weights)
    if not blocks or len(set(blocks)) != len(blocks) or not all(1 <= b <= n_layers for b in blocks):
        raise GraphError(f"it has blocks 1-{n_layers}; cannot take {list(blocks)}")
    heads = int(weights["num_heads"])
    width = weights["conv1/weight"].shape[0]
    inits: list = []
    nodes: list = []

    def const(key: str, value) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), key))
        return key

    def op(kind: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or f"{kind.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], name=f"{kind}_{len(nodes)}", **attrs))
        return out

    half, one, root2 = (const(k, np.array(v, np.float32)) for k, v in (("half", 0.5), ("one", 1.0), ("sqrt2", 2**0.5)))

    def gelu(x: str) -> str:  # exact GELU, as Whisper's; ONNX Runtime fuses the pattern
        return op("Mul", [op("Mul", [x, op("Add", [op("Erf", [op("Div", [x, root2])]), one])]), half])

    def linear(x: str, prefix: str, rows: slice = slice(None)) -> str:
        w, b = weights[prefix + "/weight"][rows], weights[prefix + "/bias"][rows]
        key = f"{prefix}{'' if rows == slice(None) else f'_{rows.start}'}"
        return op("Add", [op("MatMul", [x, const(key + "/w", w.T)]), const(key + "/b", b)])

    def norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(prefix + "/g", weights[prefix + "/gamma"]),
                                         const(prefix + "/b", weights[prefix + "/beta"])], axis=-1, epsilon=1e-5)

    x = gelu(op("Conv", ["mel", const("conv1/w", weights["conv1/weight"]), const("conv1/b", weights["conv1/bias"])],
                kernel_shape=[3], pads=[1, 1]))
    x = gelu(op("Conv", [x, const("conv2/w", weights["conv2/weight"]), const("conv2/b", weights["conv2/bias"])],
                kernel_shape=[3], pads=[1, 1], strides=[2]))
    x = op("Transpose", [x], perm=[0, 2, 1])
    frames = op("Slice", [op("Shape", [x]), const("axis1", np.array([1])), const("axis2", np.array([2]))])
    zero = const("zero", np.array([0]))
    rows = int(WINDOW_S * SAMPLE_RATE) // HOP // 2  # the runtime encodes at most one window at a time
    positions = weights["position_encodings/encodings"][:rows]
    x = op("Add", [x, op("Slice", [const("positions", positions), zero, frames, zero])])
    split = const("split_heads", np.array([0, -1, heads, width // heads]))
    merge = const("merge_heads", np.array([0, -1, width]))
    scale = const("scale", np.array((width // heads) ** -0.5, np.float32))
    for i in range(max(blocks)):
        p = f"layer_{i}/"
        h = norm(x, p + "self_attention/layer_norm")
        q, k, v = (op("Reshape", [linear(h, p + "self_attention/linear_0", slice(j * width, (j + 1) * width)), split])
                   for j in range(3))
        scores = op("MatMul", [op("Transpose", [q], perm=[0, 2, 1, 3]), op("Transpose", [k], perm=[0, 2, 3, 1])])
        attn = op("Softmax", [op("Mul", [scores, scale])], axis=-1)
        mixed = op("Reshape", [op("Transpose", [op("MatMul", [attn, op("Transpose", [v], perm=[0, 2, 1, 3])])],
                                  perm=[0, 2, 1, 3]), merge])
        x = op("Add", [x, linear(mixed, p + "self_attention/linear_1")])
        h = gelu(linear(norm(x, p + "ffn/layer_norm"), p + "ffn/linear_0"))
        x = op("Add", [x, linear(h, p + "ffn/linear_1")], out=f"block{i + 1}" if i + 1 in blocks else None)
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 80, "frames"])],
        [helper.make_tensor_value_info(f"block{b}", TensorProto.FLOAT, ["batch", "out_frames", width]) for b in blocks],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    by_weights = [n.name for n in nodes if n.op_type == "MatMul" and n.input[1].endswith("/w")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "encoder.onnx"
        logging.disable(logging.WARNING)  # quiet the generic advice to pre-process the graph that it prints each call
        try:
            quantize_dynamic(model, out, nodes_to_quantize=by_weights, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return out.read_bytes()
