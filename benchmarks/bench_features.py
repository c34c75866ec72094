"""Time ser_live.features.extract on real 1, 3 and 8 s utterances.

Run single-threaded for comparable numbers:
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_features.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for benchmarks/
from benchmarks import DATA as DATA_DIR  # noqa: E402
from ser_live.features import FEATURE_SIZE, SAMPLE_RATE, extract  # noqa: E402


def _utterance(seconds: float) -> np.ndarray:
    """Real speech of the requested length, concatenating RAVDESS clips as needed."""
    clips = sorted((DATA_DIR / "ravdess" / "Actor_01").glob("*.flac"))
    if not clips:
        sys.exit(f"no RAVDESS clips under {DATA_DIR} (set SER_DATA_DIR)")
    need = int(seconds * SAMPLE_RATE)
    parts, total = [], 0
    for path in clips:
        audio, sr = sf.read(path, dtype="float32")
        assert sr == SAMPLE_RATE
        parts.append(audio)
        total += audio.size
        if total >= need:
            break
    return np.concatenate(parts)[:need]


def main(repeats: int = 200) -> None:
    print(f"FEATURE_SIZE={FEATURE_SIZE}  load={os.getloadavg()[0]:.2f}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for seconds in (1.0, 3.0, 8.0):
        audio = _utterance(seconds)
        for _ in range(10):
            extract(audio)
        wall = np.empty(repeats)
        cpu = np.empty(repeats)
        for i in range(repeats):
            w0, c0 = time.perf_counter(), time.thread_time()
            extract(audio)
            wall[i], cpu[i] = time.perf_counter() - w0, time.thread_time() - c0
        wall_ms, cpu_ms = wall * 1e3, cpu * 1e3
        print(
            f"{seconds:4.1f} s: wall median {np.median(wall_ms):.2f} ms  p95 {np.percentile(wall_ms, 95):.2f} ms"
            f" | cpu median {np.median(cpu_ms):.2f} ms  p95 {np.percentile(cpu_ms, 95):.2f} ms"
        )


if __name__ == "__main__":
    main()
