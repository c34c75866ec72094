"""What every benchmark shares: the settings, the clips and streams, the ser-live command, statistics."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks import DATA
from ser_live.features import SAMPLE_RATE as SR

REPO = Path(__file__).resolve().parents[1]


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    clips_per_corpus: int = 100  # >= 200 real clips in all
    repeats: int = 5  # timed passes over the utterances (ours); librosa is timed once per utterance
    latency_clips: int = 60  # clips in the paced latency stream
    latency_speed: float = 1.0
    throughput_minutes: float = 21.0
    cpu_seconds: float = 60.0
    cpu_warmup: float = 3.0  # after the view is first drawn
    memory_hours: float = 8.0
    startup_runs: int = 5
    stop_runs: int = 10

    @staticmethod
    def quick() -> "Settings":
        return Settings(6, 1, 6, 4.0, 1.0, 4.0, 1.0, 2.0 / 60.0, 2, 2)


# -- corpora and streams ------------------------------------------------------------------------


def clip_paths(per_corpus: int) -> list[Path]:
    """A fixed spread of real clips over the speakers of both corpora."""
    if not (DATA / "ravdess").is_dir() or not (DATA / "crema-d").is_dir():
        sys.exit(f"benchmarks: corpora not found at {DATA} (set SER_DATA_DIR)")
    out = []
    for files in (sorted((DATA / "ravdess").glob("Actor_*/*.flac")), sorted((DATA / "crema-d").glob("*.flac"))):
        step = max(1, len(files) // per_corpus)
        out += files[::step][:per_corpus]
    return out


def load(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != SR:
        raise ValueError(f"{path}: expected {SR} Hz")
    return audio if audio.ndim == 1 else audio.mean(axis=1)


def utterances(clips: list[np.ndarray], spans: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    """One utterance of exactly ``seconds`` per clip: its speech span as the runtime cuts it,
    continued with the next clips' spans when too short (8 s utterances are ~3 clips of speech)."""
    need = int(seconds * SR)
    out = []
    for i in range(len(clips)):
        parts, total, j = [], 0, i
        while total < need:
            parts.append(spans[j % len(spans)])
            total += parts[-1].size
            j += 1
        x = np.concatenate(parts)
        off = (x.size - need) // 2 if len(parts) == 1 else 0
        out.append(np.ascontiguousarray(x[off : off + need]))
    return out


def noise_floor(seconds: float, rng: np.random.Generator, floor_dbfs: float = -60.0) -> np.ndarray:
    return rng.normal(0.0, 10 ** (floor_dbfs / 20), int(seconds * SR)).astype(np.float32)


def write(path: Path, x: np.ndarray) -> Path:
    sf.write(path, np.clip(x, -1.0, 1.0), SR, subtype="PCM_16")
    return path


# -- helpers -------------------------------------------------------------------------------------


def stats(ms: list[float] | np.ndarray) -> dict:
    a = np.asarray(ms, float)
    if not a.size:
        return {"n": 0, "median": math.nan, "p95": math.nan, "max": math.nan}
    return {"n": int(a.size), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def ser_live_cmd(model: Path) -> list[str]:
    """The installed ser-live command, running ``model``."""
    exe = Path(sys.executable).parent / "ser-live"
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-c", "from ser_live.cli import main; main()"]
    return cmd + ["--model", str(model)]


def one_core() -> list[str]:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def child_env() -> dict:
    """The environment of the ser-live processes measured: this one's (they run the installed ser_live)."""
    return dict(os.environ)


def steal_s() -> float:
    """CPU time the hypervisor gave to other guests while this machine's CPUs wanted to run, summed
    over CPUs (``steal`` in /proc/stat); NaN where the kernel does not report it."""
    try:
        with open("/proc/stat") as f:
            ticks = sum(int(line.split()[8]) for line in f if line.startswith("cpu") and not line.startswith("cpu "))
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
