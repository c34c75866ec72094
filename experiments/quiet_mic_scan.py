"""Quiet-microphone streams cut by segmenters with different VAD-gain limits (reports/ablation.md).

Twelve real clips joined by pauses (RAVDESS, CREMA-D, mixed), speech peaks scaled to P dBFS over
white or pink hiss at H dBFS. For each segmenter: utterances found, how many span two clips, and
how many reach beyond their clip's padding and hangover (0.25 s before, 0.45 s after).

    python -m experiments.quiet_mic_scan
"""

from __future__ import annotations

import sys

import numpy as np

from experiments import DATA
from ser_live.features import SAMPLE_RATE as SR
from ser_live.segmenter import Segmenter, SegmenterConfig, speech_levels
from ser_live.train.augment import pink
from ser_live.train.dataset import load_audio
from ser_live.train.streams import join_with_pauses, sample_clips

CONFIGS = {
    "shipped -60/10": SegmenterConfig(),
    "-60/6": SegmenterConfig(vad_max_raise_db=6.0),
    "-50/10": SegmenterConfig(vad_floor_dbfs=-50.0),
    "-50/6": SegmenterConfig(vad_floor_dbfs=-50.0, vad_max_raise_db=6.0),
}
STREAMS = [(-42, -82, "white"), (-42, -72, "white"), (-40, -68, "white"), (-38, -62, "white"),
           (-42, -72, "pink"), (-35, -60, "pink"), (-30, -55, "white")]


def cut(x: np.ndarray, spans: list[tuple[float, float]], config: SegmenterConfig) -> tuple[int, int, int]:
    seg, events = Segmenter(config, interim=False), []
    for i in range(0, x.size, 480):
        events += seg.process(x[i : i + 480])
    n = merged = spilled = 0
    for e in events + seg.flush():
        if e.kind == "end":
            n += 1
            hits = [(s, t) for s, t in spans if e.start / SR < t and e.end / SR > s]
            merged += len(hits) > 1
            spilled += not hits or any(e.start / SR < s - 0.25 or e.end / SR > t + 0.45 for s, t in hits)
    return n, merged, spilled


def main() -> None:
    if not (DATA / "ravdess").is_dir() or not (DATA / "crema-d").is_dir():
        sys.exit(f"quiet_mic_scan: corpora not found at {DATA} (set SER_DATA_DIR)")
    bad = dict.fromkeys(CONFIGS, 0)
    for (n_rav, n_crema), seed in (((12, 0), 1), ((0, 12), 2), ((6, 6), 3)):
        audios = [load_audio(p) for p in sample_clips(DATA, n_rav, n_crema)]
        x0, samples = join_with_pauses(audios, np.random.default_rng(seed), floor_dbfs=-120.0)
        spans = [(s / SR, t / SR) for s, t in samples]
        peak = np.median([speech_levels(x0[int(s * SR) : int(t * SR)])[0] for s, t in spans])
        for p, h, colour in STREAMS:
            rng = np.random.default_rng(seed)
            hiss = rng.standard_normal(x0.size) if colour == "white" else pink(rng, x0.size)
            x = (x0 * 10 ** ((p - peak) / 20) + 10 ** (h / 20) * hiss).astype(np.float32)
            cells = []
            for name, config in CONFIGS.items():
                n, merged, spilled = cut(x, spans, config)
                bad[name] += bool(merged or spilled)
                cells.append(f"{name}: {n} utt, {merged} merged, {spilled} spilled")
            print(f"RAVDESS {n_rav} + CREMA-D {n_crema}, peaks {p} dBFS over {colour} {h} dBFS | " + " | ".join(cells), flush=True)
    n_streams = 3 * len(STREAMS)
    print("streams with a merged or spilled utterance, of", n_streams, ":", ", ".join(f"{k} {v}" for k, v in bad.items()))


if __name__ == "__main__":
    main()
