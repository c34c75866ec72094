"""Causal per-speaker adaptation of feature vectors, shared by the runtime and the trainer. Two methods:
the running mean (:class:`SpeakerNorm`) and the centroid offset (:class:`CentroidOffset`).

**Running mean.** Each source (a microphone session, a replayed file; a speaker in training) keeps the count ``n`` and
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

**Centroid offset.** The running mean assumes a source holds every emotion in similar measure; where one
emotion dominates, its mean holds that emotion. The centroid offset estimates only the speaker's part: an
unadapted head predicts the class of each utterance, and the source's offset is the mean of (utterance -
the training centroid of that class) over its final utterances so far and the current one, shrunk towards
zero for short sources:

    offset = (r_1 + ... + r_n) / (n + shrink),   r_i = x_i - centroid[argmax unadapted(x_i)]

The adapted head (trained on rows with each training speaker's offset removed) classifies ``x - offset``,
and the two heads' outputs combine into the result: ``mean_logits`` (the softmax of the mean of their
logits, i.e. the normalised geometric mean of their probabilities) or ``adapted`` (the adapted head alone).
A card carries it as ``"speaker_norm": {"method": "centroid_offset", "shrink_clips": 10, "combine":
"mean_logits", "unadapted_model": {"file": ..., "sha256": ...}, "centroids": [[...], ...]}``, one centroid
per label in the card's label order; the unadapted head is an ONNX file beside the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

METHOD = "causal_running_mean"
CENTROID_METHOD = "centroid_offset"
COMBINES = ("mean_logits", "adapted")

Head = Callable[[np.ndarray], np.ndarray]  # one feature vector -> class probabilities


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
            raise SpeakerNormError(f"speaker normalisation method {method!r} is not implemented here "
                                   f"(only {METHOD!r} and {CENTROID_METHOD!r})")
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

    def sequence_proba(self, rows: np.ndarray, adapted: Callable[[np.ndarray], np.ndarray],
                       unadapted: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Probabilities of the rows of one source in arrival order (``adapted``: rows -> probabilities)."""
        return adapted(self.sequence(rows))

    def alone_proba(self, rows: np.ndarray, adapted: Callable[[np.ndarray], np.ndarray],
                    unadapted: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Probabilities of each row heard as the first utterance of its own source."""
        return adapted(np.stack([self.state().apply(x) for x in rows]))

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


def from_card(field: object, size: int, labels: int) -> SpeakerNorm | CentroidOffset:
    """The adaptation a card's ``speaker_norm`` field describes (``size`` features, ``labels`` classes)."""
    if isinstance(field, dict) and field.get("method") == CENTROID_METHOD:
        return CentroidOffset.from_card(field, size, labels)
    return SpeakerNorm.from_card(field, size)


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

    def predict(self, x: np.ndarray, adapted: Head, unadapted: Head | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities of ``x`` and what :meth:`update` takes to add it (its raw vector)."""
        return adapted(self.apply(x)), np.asarray(x, np.float64)

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


@dataclass(frozen=True)
class CentroidOffset:
    """The centroid offset's parameters: the training centroid of each class (rows in label order), the
    shrink constant in utterances, how the heads combine, and the unadapted head's file (card only)."""

    centroids: np.ndarray  # float64 [classes, features]
    shrink: float
    combine: str = "mean_logits"
    unadapted_file: str | None = None
    unadapted_sha256: str | None = None

    @classmethod
    def from_card(cls, field: dict, size: int, labels: int) -> CentroidOffset:
        """Parse and check a card's ``speaker_norm`` field of this method."""
        shrink = _finite(field.get("shrink_clips"))
        if shrink is None or shrink < 0:
            raise SpeakerNormError(f"speaker_norm shrink_clips must be a finite number >= 0, got {field.get('shrink_clips')!r}")
        combine = field.get("combine")
        if combine not in COMBINES:
            raise SpeakerNormError(f"speaker_norm combine must be one of {', '.join(COMBINES)}, got {combine!r}")
        head = field.get("unadapted_model")
        if not (isinstance(head, dict) and isinstance(head.get("file"), str) and isinstance(head.get("sha256"), str)
                and head["file"] and "/" not in head["file"] and "\\" not in head["file"]):
            raise SpeakerNormError("speaker_norm unadapted_model must name a file beside the model and its sha256")
        cents = field.get("centroids")
        if not (isinstance(cents, list) and len(cents) == labels
                and all(isinstance(c, list) and len(c) == size for c in cents)):
            raise SpeakerNormError(f"speaker_norm centroids must be {labels} lists (one per label) of {size} numbers")
        values = [[_finite(v) for v in c] for c in cents]
        if any(v is None for c in values for v in c):
            raise SpeakerNormError("speaker_norm centroids hold values that are not finite numbers")
        return cls(np.array(values, dtype=np.float64), shrink, combine, head["file"], head["sha256"])

    def to_card(self) -> dict:
        card: dict = {"method": CENTROID_METHOD, "shrink_clips": _number(self.shrink), "combine": self.combine}
        if self.unadapted_file is not None:
            card["unadapted_model"] = {"file": self.unadapted_file, "sha256": self.unadapted_sha256}
        return card | {"centroids": [[float(v) for v in c] for c in self.centroids]}

    def with_unadapted(self, file: str, sha256: str) -> CentroidOffset:
        return replace(self, unadapted_file=file, unadapted_sha256=sha256)

    def state(self) -> CentroidState:
        """A fresh state for a new source."""
        return CentroidState(self)

    def residuals(self, rows: np.ndarray, unadapted_proba: np.ndarray) -> np.ndarray:
        """Each row minus the centroid of the class the unadapted head gives it the highest probability."""
        return np.asarray(rows, np.float64) - self.centroids[np.asarray(unadapted_proba).argmax(axis=1)]

    def combined(self, adapted_proba: np.ndarray, unadapted_proba: np.ndarray) -> np.ndarray:
        """The result from the two heads' probabilities (rows of the same utterances), float32."""
        if self.combine == "adapted":
            return np.asarray(adapted_proba, np.float32)
        z = 0.5 * (np.log(np.clip(adapted_proba, 1e-30, None)) + np.log(np.clip(unadapted_proba, 1e-30, None)))
        z -= z.max(axis=-1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)

    def sequence(self, rows: np.ndarray, unadapted_proba: np.ndarray) -> np.ndarray:
        """The adapted head's inputs for the rows of one source in arrival order, each offset by the
        residuals of the rows up to and including itself (what the runtime does with consecutive final
        utterances); float32 out."""
        r = self.residuals(rows, unadapted_proba)
        n = np.arange(1, len(r) + 1, dtype=np.float64)[:, None]
        return (np.asarray(rows, np.float64) - np.cumsum(r, axis=0) / (n + self.shrink)).astype(np.float32)

    def sequence_proba(self, rows: np.ndarray, adapted: Callable[[np.ndarray], np.ndarray],
                       unadapted: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Probabilities of the rows of one source in arrival order (both heads: rows -> probabilities)."""
        p0 = unadapted(rows)
        return self.combined(adapted(self.sequence(rows, p0)), p0)

    def alone_proba(self, rows: np.ndarray, adapted: Callable[[np.ndarray], np.ndarray],
                    unadapted: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Probabilities of each row heard as the first utterance of its own source."""
        p0 = unadapted(rows)
        x = np.asarray(rows, np.float64) - self.residuals(rows, p0) / (1.0 + self.shrink)
        return self.combined(adapted(x.astype(np.float32)), p0)


class CentroidState:
    """One source's count and sum of residuals of its final utterances (O(features) memory and time)."""

    def __init__(self, offset: CentroidOffset) -> None:
        self.offset = offset
        self.n = 0
        self.total = np.zeros(offset.centroids.shape[1])

    def predict(self, x: np.ndarray, adapted: Head, unadapted: Head | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities of ``x`` (the state plus ``x`` itself; the state is not changed) and what
        :meth:`update` takes to add it (its residual)."""
        if unadapted is None:
            raise SpeakerNormError("the centroid offset needs the unadapted head")
        x = np.asarray(x, np.float64)
        p0 = np.asarray(unadapted(x.astype(np.float32)), np.float64)
        r = self.offset.residuals(x[None], p0[None])[0]
        xa = x - (self.total + r) / (self.n + 1 + self.offset.shrink)
        return self.offset.combined(adapted(xa.astype(np.float32))[None], p0[None])[0], r

    def update(self, residual: np.ndarray) -> None:
        """Add a final utterance's residual (non-finite ones are ignored, they would poison the sum)."""
        if np.all(np.isfinite(residual)):
            self.total += residual
            self.n += 1
