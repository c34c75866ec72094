"""Session statistics: latency percentiles, time per emotion, a smoothed current mood."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

from ser_live.events import Result


def percentiles(values: collections.deque | list) -> tuple[float, float, float]:
    """(p50, p95, max) of the values, or NaNs when there are none."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    a = np.fromiter(values, float)
    p50, p95 = np.percentile(a, [50, 95])
    return float(p50), float(p95), float(a.max())


@dataclass
class SessionStats:
    labels: list[str]
    mood_decay: float = 0.6  # weight of the previous mood when a new utterance arrives
    window: int = 2000  # recent results kept for percentiles (memory stays bounded)
    utterances: int = 0
    failed: int = 0
    seconds_per_emotion: dict[str, float] = field(default_factory=dict)
    latency_ms: collections.deque = field(init=False)
    feature_ms: collections.deque = field(init=False)
    inference_ms: collections.deque = field(init=False)
    max_latency_ms: float = 0.0
    mood: np.ndarray | None = None
    adapted: int | None = None  # final utterances the current source's speaker normaliser holds (None: no normaliser)
    adapted_sources: int = 0  # sources the normaliser restarted for
    adapted_max: int = 0  # most final utterances one source's normaliser held
    norm_memory: float | None = None  # utterances the normaliser's running mean remembers (None: all)
    norm_method: str = "running mean"  # the speaker adaptation in words

    def __post_init__(self) -> None:
        self.latency_ms = collections.deque(maxlen=self.window)
        self.feature_ms = collections.deque(maxlen=self.window)
        self.inference_ms = collections.deque(maxlen=self.window)
        self.seconds_per_emotion = {label: 0.0 for label in self.labels}

    def add(self, result: Result) -> None:
        """Count a final result (failed ones only add to ``failed``)."""
        if result.probs is None:
            self.failed += 1
            return
        self.utterances += 1
        label = self.labels[int(result.probs.argmax())]
        self.seconds_per_emotion[label] += result.job.end_s - result.job.start_s
        self.latency_ms.append(result.latency_ms)
        self.max_latency_ms = max(self.max_latency_ms, result.latency_ms)
        self.feature_ms.append(result.feature_ms)
        self.inference_ms.append(result.inference_ms)
        if result.adapted is not None:
            self.adapted = result.adapted + 1
            self.adapted_sources += result.adapted == 0
            self.adapted_max = max(self.adapted_max, self.adapted)
        d = self.mood_decay
        self.mood = result.probs.copy() if self.mood is None else d * self.mood + (1 - d) * result.probs

    @property
    def mood_label(self) -> str | None:
        return None if self.mood is None else self.labels[int(self.mood.argmax())]
