"""Causal per-speaker normalisation of feature vectors, shared by the runtime and the trainer.

Each source (a microphone session, a replayed file; a speaker in training) keeps the count ``n`` and
the sum of the raw feature vectors of its earlier final utterances. An utterance ``x`` is fed to the
model as

    x' = x - (prior * mean + sum + x) / (prior + n + 1) + mean

i.e. minus the running mean of the source's utterances so far including this one, shrunk towards the
training mean ``mean`` with the weight of ``prior`` utterances, plus ``mean`` back. Only audio already
heard is used. With ``memory`` set, ``n`` and ``sum`` decay by ``1 - 1/memory`` before each update, so
the mean weights recent utterances most and its weight saturates at ``memory`` utterances: a source
that changes speaker (a microphone handed on, a call) is re-learned within tens of utterances instead
of as many as came before. A model card carries the parameters as
``"speaker_norm": {"method": "causal_running_mean", "prior_clips": 3, "memory_clips": 30, "mean": [...]}``
(no ``memory_clips``: the mean never forgets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METHOD = "causal_running_mean"


class SpeakerNormError(ValueError):
    """A ``speaker_norm`` card field this runtime cannot use; the message is meant for the user."""


@dataclass(frozen=True)
class SpeakerNorm:
    """The normaliser's parameters: the training mean and the prior weight in utterances."""

    mean: np.ndarray  # float64, one value per feature
    prior: float
    memory: float | None = None  # utterances the running mean remembers (decay 1 - 1/memory); None: all

    @classmethod
    def from_card(cls, field: object, size: int) -> SpeakerNorm:
        """Parse and check a card's ``speaker_norm`` field (``size`` features expected)."""
        if not isinstance(field, dict):
            raise SpeakerNormError("'speaker_norm' is not an object")
        method = field.get("method")
        if method != METHOD:
            raise SpeakerNormError(f"speaker normalisation method {method!r} is not implemented here (only {METHOD!r})")
        prior = _finite(field.get("prior_clips"))
        if prior is None or prior < 0:
            raise SpeakerNormError(f"speaker_norm prior_clips must be a finite number >= 0, got {field.get('prior_clips')!r}")
        memory = field.get("memory_clips")
        if memory is not None and ((memory := _finite(memory)) is None or memory < 1):
            raise SpeakerNormError(f"speaker_norm memory_clips must be a finite number >= 1, got {field.get('memory_clips')!r}")
        mean = field.get("mean")
        if not isinstance(mean, list) or len(mean) != size:
            got = len(mean) if isinstance(mean, list) else type(mean).__name__
            raise SpeakerNormError(f"speaker_norm mean must be a list of {size} numbers, got {got}")
        values = [_finite(v) for v in mean]
        if any(v is None for v in values):
            raise SpeakerNormError("speaker_norm mean holds values that are not finite numbers")
        return cls(np.array(values, dtype=np.float64), prior, memory)

    def to_card(self) -> dict:
        card: dict = {"method": METHOD, "prior_clips": _number(self.prior)}
        if self.memory is not None:
            card["memory_clips"] = _number(self.memory)
        return card | {"mean": [float(v) for v in self.mean]}

    def state(self) -> SourceState:
        """A fresh state for a new source."""
        return SourceState(self)

    def sequence(self, rows: np.ndarray) -> np.ndarray:
        """Normalise the rows of one source in arrival order, each row then added to the state
        (what the runtime does with consecutive final utterances); float32 out."""
        st = self.state()
        out = np.empty(rows.shape, np.float32)
        for i, x in enumerate(rows):
            out[i] = st.apply(x)
            st.update(x)
        return out


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def _finite(value: object) -> float | None:
    """``value`` as a finite float, None if it is not a finite JSON number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        v = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return v if math.isfinite(v) else None


class SourceState:
    """Running (or, with ``memory``, decaying) count and sum of one source's final utterances
    (O(features) memory and time)."""

    def __init__(self, norm: SpeakerNorm) -> None:
        self.norm = norm
        self.n = 0  # final utterances added
        self.weight = 0.0  # their weight in the mean: n, or less when older ones are forgotten
        self.total = np.zeros_like(norm.mean)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x`` normalised with the state plus ``x`` itself; the state is not changed."""
        x = np.asarray(x, np.float64)
        mu, prior = self.norm.mean, self.norm.prior
        return (x - (prior * mu + self.total + x) / (prior + self.weight + 1) + mu).astype(np.float32)

    def update(self, x: np.ndarray) -> None:
        """Add a final utterance's raw vector (non-finite vectors are ignored, they would poison the mean)."""
        x = np.asarray(x, np.float64)
        if np.all(np.isfinite(x)):
            if self.norm.memory is not None:
                keep = 1.0 - 1.0 / self.norm.memory
                self.total *= keep
                self.weight *= keep
            self.total += x
            self.weight += 1.0
            self.n += 1
