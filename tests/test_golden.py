"""Golden values: the same audio gives the same features and probabilities, whatever the versions
of numpy and onnxruntime installed. A change that moves them must be deliberate: regenerate with
``python tests/golden/make_golden.py`` (and bump FEATURE_VERSION if the features changed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import data_dir
from ser_live import features
from ser_live.models import DEFAULT_MODEL

GOLDEN_FILE = Path(__file__).with_name("golden") / "golden.json"
GOLDEN = json.loads(GOLDEN_FILE.read_text())
CLIPS = tuple(GOLDEN["clips"])


def test_golden_covers_the_current_feature_version() -> None:
    assert GOLDEN["feature_version"] == features.FEATURE_VERSION, "features changed version: regenerate the golden file"


@pytest.mark.parametrize("rel", CLIPS)
def test_features_match_golden(rel: str) -> None:
    audio, _ = sf.read(data_dir() / rel, dtype="float32")
    got = features.extract(audio)
    want = np.array(GOLDEN["clips"][rel]["features"], np.float32)
    bad = ~np.isclose(got, want, rtol=1e-4, atol=1e-4)
    assert not bad.any(), {features.FEATURE_NAMES[i]: (float(got[i]), float(want[i])) for i in np.flatnonzero(bad)}


def test_model_probabilities_match_golden(default_model) -> None:
    if hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest() != GOLDEN["model_sha256"]:
        pytest.fail("the shipped model changed: regenerate the golden file (python tests/golden/make_golden.py)")
    for rel in CLIPS:
        want = np.array(GOLDEN["clips"][rel]["probs"], np.float32)
        got = default_model.predict(np.array(GOLDEN["clips"][rel]["features"], np.float32))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=rel)
