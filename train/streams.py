"""Real clips joined into one recording with pauses over a noise floor: how the evaluation's stream-vs-clip
check, the benchmarks and the tests replay a set of clips through the live pipeline as a microphone would
hear them (one definition, so a figure in one place is measured on the same kind of stream as in another)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ser_live.features import SAMPLE_RATE


def join_with_pauses(audios: Sequence[np.ndarray], rng: np.random.Generator, *, floor_dbfs: float = -60.0,
                     pause_s: tuple[float, float] = (0.8, 1.6),
                     seconds: float | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The clips (cycled until the stream holds ``seconds`` when given), each after a pause drawn uniformly
    from ``pause_s``, one second of pause at the end, all over white noise at ``floor_dbfs``; and each
    clip's (start, end) sample in the stream."""
    parts, spans, pos, i = [], [], 0, 0
    while (i < len(audios)) if seconds is None else (pos < seconds * SAMPLE_RATE):
        audio = audios[i % len(audios)]
        gap = np.zeros(int(rng.uniform(*pause_s) * SAMPLE_RATE), np.float32)
        parts += [gap, audio]
        pos += gap.size
        spans.append((pos, pos + audio.size))
        pos += audio.size
        i += 1
    parts.append(np.zeros(SAMPLE_RATE, np.float32))
    x = np.concatenate(parts)
    x += rng.normal(0.0, 10 ** (floor_dbfs / 20), x.size).astype(np.float32)
    return x, spans


def sample_clips(data: Path, n_ravdess: int = 6, n_crema: int = 6) -> list[Path]:
    """A fixed, varied handful of real clips: RAVDESS actors 1-4, then CREMA-D actors 1001-1029."""
    rav = sorted((data / "ravdess").glob("Actor_0[1-4]/*.flac"))[::17][:n_ravdess]
    cre = sorted((data / "crema-d").glob("10[0-2]*.flac"))[::23][:n_crema]
    return rav + cre
