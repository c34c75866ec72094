"""ser-live as a library: :class:`Detector` turns audio chunks into speech and emotion events on the
caller's thread, :func:`score_file` gives the utterances of a recording.

The Detector runs the live path itself, synchronously: the pipeline's :class:`~ser_live.cutter.Cutter`
(resampling, segmenter) and the worker's :meth:`~ser_live.worker.Worker.run` (features, speaker
normalisation, model), so its results are the ``ser-live`` command's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ser_live.cutter import Cut, Cutter, to_16k
from ser_live.events import Job, Result, SpeechState
from ser_live.features import SAMPLE_RATE
from ser_live.model import EmotionModel, ModelError
from ser_live.replay import MAX_RATE, MIN_RATE, READ_FRAMES, InputError, Truncated, mono_blocks, open_audio, to_mono
from ser_live.segmenter import SegmenterConfig, span_of, utterances
from ser_live.worker import Worker

_DEFAULTS = SegmenterConfig()


@dataclass(frozen=True)
class Prediction:
    """The model's answer for a piece of speech: the top ``label``, every label's probability, and the
    top probability (``confidence``, calibrated)."""

    label: str
    probabilities: dict[str, float]
    confidence: float


@dataclass(frozen=True)
class SpeechStart:
    """Speech began at ``start_s`` (seconds from the stream's start, the padding before it included)."""

    start_s: float


@dataclass(frozen=True)
class SpeechEnd:
    """The speech that began ended at ``at_s`` seconds: after its :class:`Utterance`, or without one when
    it was too short or too quiet to classify."""

    at_s: float


@dataclass(frozen=True)
class Provisional(Prediction):
    """While speaking (every ``provisional_every_s``, 1 s): the emotion of the last 3 s of speech so far,
    ``start_s`` to ``end_s`` (seconds from the stream's start)."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class Utterance(Prediction):
    """A finished utterance, ``start_s`` to ``end_s`` (seconds from the stream's start), classified
    ``latency_ms`` milliseconds after the segmenter detected its end (a hangover after the voice stopped)."""

    start_s: float
    end_s: float
    latency_ms: float


Event = Union[SpeechStart, Provisional, Utterance, SpeechEnd]
ModelSpec = Union[str, Path, EmotionModel]


def load_model(model: ModelSpec) -> EmotionModel:
    """``"default"``, ``"fast"`` (the shipped models), a model file with its JSON card beside it, or a
    loaded model (shared as it is). ModelError when it cannot be used."""
    if isinstance(model, EmotionModel):
        return model
    from ser_live.models import MODELS, resolve

    path = resolve(str(model))
    if isinstance(model, str) and model not in MODELS and not path.suffix:
        raise ModelError(f"unknown model {model!r}: give {', '.join(map(repr, MODELS))} or the path of a model file")
    return EmotionModel(path)


class Detector:
    """Speech emotion recognition on a stream fed chunk by chunk, like ``ser-live`` on a microphone.

    ``model``: ``"default"``, ``"fast"``, a model file or a loaded :class:`EmotionModel`. The segmenter
    settings are ``ser-live``'s: ``hangover_ms`` of silence (300) ends an utterance, voiced spans shorter
    than ``min_utterance_ms`` (250) are ignored, an utterance longer than ``max_utterance_s`` (8.0) is
    classified in pieces, ``vad_aggressiveness`` is WebRTC VAD's mode 0 (lenient) to 3 (strict) (2).
    ``provisional``: emit :class:`Provisional` results while speech goes on (True).

    One stream is one speaker: the VAD gain and the model's speaker normalisation follow it; call
    :meth:`reset` for another.
    """

    def __init__(self, model: ModelSpec = "default", hangover_ms: int = _DEFAULTS.hangover_ms,
                 min_utterance_ms: int = _DEFAULTS.min_utterance_ms, max_utterance_s: float = _DEFAULTS.max_utterance_s,
                 vad_aggressiveness: int = _DEFAULTS.aggressiveness, provisional: bool = True) -> None:
        self.config = SegmenterConfig(aggressiveness=vad_aggressiveness, hangover_ms=hangover_ms,
                                      min_utterance_ms=min_utterance_ms, max_utterance_s=max_utterance_s)
        self.model = load_model(model)
        self.labels = list(self.model.labels)
        self._worker = Worker(self.model, lambda event: None)  # its thread is never started: run() is called here
        self._worker.warm_up()
        self._cutter = Cutter(self.config, interim=provisional)
        self._rate: int | None = None  # the current stream's sample rate; None until its first chunk
        self.reset()

    def feed(self, chunk: np.ndarray, sample_rate: int) -> list[Event]:
        """Audio of any length: (frames,) or (frames, channels), float in [-1, 1] or int16 (any signed
        integers, at their full scale), at ``sample_rate`` Hz (fixed for a stream). Returns the events it
        completes, in order."""
        rate = _check_rate(sample_rate)
        mono = to_mono(chunk)
        if self._rate is None:
            self._cutter.begin("", rate, same_speaker=True)
            self._rate = rate
        elif rate != self._rate:
            raise ValueError(f"sample_rate changed from {self._rate} to {rate} Hz within a stream; call flush() or reset() first")
        return self._events(self._cutter.push(mono))

    def flush(self) -> list[Event]:
        """End of the stream: the utterance in progress ends here. The next :meth:`feed` starts a new
        stream (times from 0) of the same speaker."""
        if self._rate is None:
            return []
        self._rate = None
        return self._events(self._cutter.end())

    def reset(self) -> None:
        """A new speaker: the next :meth:`feed` starts a new stream (times from 0) with a fresh segmenter,
        VAD gain and speaker normalisation; an utterance in progress is dropped (:meth:`flush` first to keep it)."""
        self._cutter.begin("")
        self._rate = None

    def classify(self, audio: np.ndarray, sample_rate: int) -> Prediction:
        """The emotion of a whole clip (input as for :meth:`feed`), scored as the trainer scores a clip:
        from the first utterance's start to the last one's end as the segmenter finds them in the clip
        alone (the whole clip when it finds none). The clip counts as an utterance of the current speaker."""
        audio16 = to_16k(to_mono(audio), _check_rate(sample_rate))
        span = span_of(audio16, utterances(audio16, self.config))
        speech = span if span is not None and span.size else audio16
        job = Job("", 0.0, audio16.size / SAMPLE_RATE, speech, True, time.monotonic(), self._cutter.speaker_id)
        return Prediction(**self._prediction(self._worker.run(job)))

    def _prediction(self, result: Result) -> dict:
        """The fields of a :class:`Prediction` of a result; RuntimeError when the classification failed."""
        if result.probs is None:
            raise RuntimeError(f"classification failed: {result.error}")
        best = int(result.probs.argmax())
        return {"label": self.labels[best], "probabilities": {k: float(p) for k, p in zip(self.labels, result.probs)},
                "confidence": float(result.probs[best])}

    def _events(self, cuts: list[Cut]) -> list[Event]:
        events: list[Event] = []
        for cut in cuts:
            if isinstance(cut, SpeechState):
                events.append(SpeechStart(cut.start_s) if cut.speaking else SpeechEnd(cut.start_s))
            elif (result := self._worker.run(cut)) is not None:  # None: an ahead job, its features kept
                p = self._prediction(result)
                if cut.final:
                    events.append(Utterance(**p, start_s=cut.start_s, end_s=cut.end_s, latency_ms=result.latency_ms))
                else:
                    events.append(Provisional(**p, start_s=cut.start_s, end_s=cut.end_s))
        return events


def _check_rate(sample_rate: int) -> int:
    whole = isinstance(sample_rate, (int, float, np.integer)) and not isinstance(sample_rate, bool) \
        and float(sample_rate).is_integer()
    if not (whole and MIN_RATE <= sample_rate <= MAX_RATE):
        raise ValueError(f"sample_rate must be a whole number of Hz from {MIN_RATE} to {MAX_RATE}, got {sample_rate!r}")
    return int(sample_rate)


def score_file(path: str | Path, model: ModelSpec = "default") -> Iterator[Utterance]:
    """The final utterances of a recording (any format ser-live reads, any rate and channels), as
    ``ser-live --file PATH --speed 0`` logs them; ValueError when it cannot be read."""
    detector = Detector(model, provisional=False)
    try:
        f = open_audio(Path(path))
    except InputError as e:
        raise ValueError(f"{path}: {e}") from None
    with f:
        try:
            for block in mono_blocks(f, READ_FRAMES):
                yield from _finals(detector.feed(block, f.samplerate))
        except Truncated:  # what could be decoded has been scored, as ser-live does
            pass
        yield from _finals(detector.flush())


def _finals(events: list[Event]) -> Iterator[Utterance]:
    return (e for e in events if isinstance(e, Utterance))
