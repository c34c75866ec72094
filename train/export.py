"""ONNX export (skl2onnx) with a parity check against scikit-learn, and writing a model's files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

INPUT_NAME = "features"
PROBA_NAME = "probabilities"
LABEL_NAME = "label"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PARITY_TOL = 1e-4


class ParityError(RuntimeError):
    """ONNX Runtime does not reproduce scikit-learn's probabilities."""


def to_onnx_bytes(model: Pipeline, feature_size: int) -> bytes:
    """Serialise the whole pipeline (scaler inside the graph); outputs ``label`` and a 2-D float
    ``probabilities`` tensor whose columns follow ``model.classes_``."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        name="ser-live",
        initial_types=[(INPUT_NAME, FloatTensorType([None, feature_size]))],
        final_types=None,
        options={id(model.named_steps["mlp"]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    outputs = [o.name for o in onx.graph.output]
    if outputs != [LABEL_NAME, PROBA_NAME]:
        raise ParityError(f"unexpected ONNX outputs {outputs}")
    return onx.SerializeToString()


def parity(model: Pipeline, onnx_bytes: bytes, X: np.ndarray) -> float:
    """Max abs difference between sklearn predict_proba and ONNX Runtime; also checks labels agree."""
    import onnxruntime as ort

    X = np.ascontiguousarray(X, dtype=np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    label, proba = sess.run([LABEL_NAME, PROBA_NAME], {INPUT_NAME: X})
    ref = model.predict_proba(X)
    if proba.shape != ref.shape:
        raise ParityError(f"ONNX probabilities have shape {proba.shape}, sklearn {ref.shape}")
    diff = float(np.max(np.abs(proba.astype(np.float64) - ref))) if len(X) else 0.0
    # the label output must be classes_[argmax(probabilities)]: that fixes the column order
    classes = model.classes_
    if len(X) and not np.array_equal(np.asarray(label).astype(str), classes[np.argmax(proba, axis=1)].astype(str)):
        raise ParityError("ONNX label output disagrees with argmax of its probabilities")
    return diff


def sidecar(model_path: Path, suffix: str) -> Path:
    """``models/ser-default.onnx`` -> ``models/ser-default<suffix>``."""
    return model_path.with_name(model_path.stem + suffix)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def dumps(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n").encode()


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
