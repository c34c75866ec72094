"""Does the default model's memory keep growing, or rise to a plateau?

    python -m experiments.encoder_memory [--utterances 4000] [--model default]

Runs the model (encoder + head, one thread, as the worker does) on utterances of random length, 0.3 to 8 s
(noise: memory depends on the shapes, not the content), and prints the process's RSS every 500 utterances
and the time per utterance. ONNX Runtime's CPU arena keeps the largest buffers each shape has needed, so RSS
rises while new lengths arrive and then stays flat; the benchmark's 8 h session sees the same rise.
"""

from __future__ import annotations

import argparse
import time

from ser_live import process

process.pin_blas_threads()

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from ser_live.model import EmotionModel  # noqa: E402
from ser_live.models import resolve  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--utterances", type=int, default=4000)
    ap.add_argument("--model", default="default")
    args = ap.parse_args(argv)
    model = EmotionModel(resolve(args.model))
    rng = np.random.default_rng(0)
    me = psutil.Process()
    times, rss = [], []
    for i in range(args.utterances):
        x = (rng.standard_normal(int(rng.uniform(0.3, 8.0) * 16000)) * 0.05).astype(np.float32)
        t = time.perf_counter()
        model.predict(model.extract(x))
        times.append(time.perf_counter() - t)
        if i % 500 == 0 or i == args.utterances - 1:
            rss.append(me.memory_info().rss / 2**20)
    print("RSS (MB) every 500 utterances:", " ".join(f"{r:.1f}" for r in rss))
    print(f"per utterance: median {np.median(times) * 1e3:.1f} ms, p95 {np.percentile(times, 95) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
