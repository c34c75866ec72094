"""Interleaved A/B timing of two or more versions of the feature extractor on the same real clips.

On a shared machine absolute timings drift by tens of percent between minutes; running the versions
in turn on each clip (random order each round) and taking each clip's best of 10 cancels most of it.
The first file is the reference; each ratio is the median over clips of best(version) / best(reference).

    git show HEAD~1:realtime/features.py > /tmp/features_before.py
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 \\
        python -m experiments.ab_features /tmp/features_before.py realtime/features.py
"""

from __future__ import annotations

import importlib.util
import sys
import time
from types import ModuleType

import numpy as np
import soundfile as sf

from experiments import DATA as DATA_DIR
from ser_live.features import SAMPLE_RATE

ROUNDS = 10


def _load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clips(seconds: float, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n real RAVDESS clips, each repeated to exactly ``seconds``."""
    files = sorted((DATA_DIR / "ravdess").glob("Actor_0*/*.flac"))
    if not files:
        sys.exit(f"no RAVDESS clips under {DATA_DIR} (set SER_DATA_DIR)")
    need = int(seconds * SAMPLE_RATE)
    out = []
    for f in rng.choice(files, n, replace=False):
        audio, _ = sf.read(f, dtype="float32")
        out.append(np.tile(audio, -(-need // audio.size))[:need])
    return out


def main(paths: list[str], n_clips: int = 50) -> None:
    versions = [_load(p, f"features_{i}") for i, p in enumerate(paths)]
    rng = np.random.default_rng(0)
    print("reference:", paths[0])
    for seconds in (1.0, 3.0, 8.0):
        clips = _clips(seconds, n_clips, rng)
        for v in versions:
            for c in clips[:5]:
                v.extract(c)
        t = np.zeros((len(versions), ROUNDS, len(clips)))
        for r in range(ROUNDS):
            for k, c in enumerate(clips):
                for i in rng.permutation(len(versions)):
                    t0 = time.perf_counter()
                    versions[i].extract(c)
                    t[i, r, k] = time.perf_counter() - t0
        best = t.min(axis=1)
        for i, p in enumerate(paths):
            print(f"{seconds:3.0f} s  {p}: best-of-{ROUNDS} p50 {np.median(best[i]) * 1e3:.2f} ms, all p50 "
                  f"{np.median(t[i]) * 1e3:.2f} ms, ratio {np.median(best[i] / best[0]):.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
