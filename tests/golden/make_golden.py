"""Write tests/golden/NAME.json for each shipped model: its input vectors and probabilities of a few real clips.

    python tests/golden/make_golden.py

Run it only when a change is meant to alter them (a new feature version, a retrained model), and
say so in the commit: tests/test_golden.py fails whenever a code or dependency change moves them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for the corpora folder

from benchmarks import DATA  # noqa: E402
from ser_live import features  # noqa: E402
from ser_live.model import EmotionModel  # noqa: E402
from ser_live.models import MODELS  # noqa: E402

CLIPS = (
    "ravdess/Actor_01/03-01-01-01-01-01-01.flac",
    "ravdess/Actor_08/03-01-05-02-01-01-08.flac",
    "ravdess/Actor_15/03-01-06-01-02-02-15.flac",
    "crema-d/1001_DFA_ANG_XX.flac",
    "crema-d/1031_IEO_SAD_HI.flac",
    "crema-d/1075_TSI_HAP_XX.flac",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    for name, path in MODELS.items():
        model = EmotionModel(path)
        rows = {}
        for rel in CLIPS:
            audio, rate = sf.read(DATA / rel, dtype="float32")
            assert rate == features.SAMPLE_RATE, rel
            vector = model.extract(audio)
            rows[rel] = {"features": [float(v) for v in vector], "probs": [float(p) for p in model.predict(vector)]}
        doc = {
            "feature_version": features.FEATURE_VERSION,
            "input": model.extractor.kind,
            "model_sha256": sha256(path),
            "labels": model.labels,
            "made_with": {"numpy": np.__version__, "onnxruntime": __import__("onnxruntime").__version__},
            "clips": rows,
        }
        out = Path(__file__).with_name(f"{name}.json")
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
