"""Golden values: for each shipped model, the same audio gives the same input vector and probabilities,
whatever the versions of numpy and onnxruntime installed. A change that moves them must be deliberate:
regenerate with ``python tests/golden/make_golden.py`` (and bump FEATURE_VERSION if the features changed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import data_dir
from ser_live import features
from ser_live.model import EmotionModel
from ser_live.models import MODELS

GOLDEN = {name: json.loads((Path(__file__).with_name("golden") / f"{name}.json").read_text()) for name in MODELS}
# the encoder runs int8 kernels whose rounding may differ a little between onnxruntime builds
TOLERANCE = {"handcrafted": 1e-4, "encoder": 2e-3}


@pytest.fixture(scope="module", params=sorted(MODELS))
def shipped(request) -> tuple[str, EmotionModel, dict]:
    name = request.param
    golden = GOLDEN[name]
    if hashlib.sha256(MODELS[name].read_bytes()).hexdigest() != golden["model_sha256"]:
        pytest.fail(f"the shipped model {name!r} changed: regenerate the golden file (python tests/golden/make_golden.py)")
    return name, EmotionModel(MODELS[name]), golden


def test_golden_covers_the_current_feature_version() -> None:
    for name, golden in GOLDEN.items():
        assert golden["feature_version"] == features.FEATURE_VERSION, f"{name}: features changed version: regenerate"


def test_input_vectors_match_golden(shipped) -> None:
    name, model, golden = shipped
    assert model.extractor.kind == golden["input"]
    tol = TOLERANCE[golden["input"].split("+")[0]]
    for rel, row in golden["clips"].items():
        audio, _ = sf.read(data_dir() / rel, dtype="float32")
        got = model.extract(audio)
        want = np.array(row["features"], np.float32)
        bad = ~np.isclose(got, want, rtol=tol, atol=tol)
        assert not bad.any(), (name, rel, {int(i): (float(got[i]), float(want[i])) for i in np.flatnonzero(bad)[:10]})


def test_model_probabilities_match_golden(shipped) -> None:
    name, model, golden = shipped
    for rel, row in golden["clips"].items():
        got = model.predict(np.array(row["features"], np.float32))
        np.testing.assert_allclose(got, np.array(row["probs"], np.float32), rtol=1e-4, atol=1e-5, err_msg=f"{name} {rel}")
