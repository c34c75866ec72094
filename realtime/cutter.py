"""Cut a stream of sources into jobs: each source resampled to 16 kHz, segmented, its utterances turned
into :class:`~ser_live.events.Job` and its speech states into :class:`~ser_live.events.SpeechState`.

The one per-chunk path of the live pipeline's segmenter thread and of :class:`ser_live.api.Detector`,
which runs it synchronously on the caller's thread.
"""

from __future__ import annotations

import collections
import math
import time

import numpy as np

from ser_live.events import Job, SpeechState
from ser_live.features import SAMPLE_RATE
from ser_live.segmenter import SegmentEvent, Segmenter, SegmenterConfig

LEVEL_FALL_DB_PER_S = 30.0
ENTRIES_KEPT = 64  # chunks whose arrival time is remembered, to stamp a final job with its last voiced frame's


class Resampler:
    """Mono float32 from ``rate`` to 16 kHz in chunks of any size (soxr's stream resampler; at 16 kHz
    the chunks pass as they are)."""

    def __init__(self, rate: int) -> None:
        self._stream = None
        if rate != SAMPLE_RATE:
            import soxr

            self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    def __call__(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        """The 16 kHz samples ``chunk`` completes; ``last``: the end of the source, the filter's tail too."""
        if self._stream is None:
            return chunk
        return self._stream.resample_chunk(chunk, last=last)


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """A whole mono clip at 16 kHz, resampled as the live path resamples a source."""
    resample = Resampler(rate)
    return np.concatenate([resample(audio), resample(np.zeros(0, np.float32), last=True)])


Cut = Job | SpeechState


class Cutter:
    """One source at a time (:meth:`begin`, :meth:`push` chunks at its rate, :meth:`end`), cut into
    jobs and speech states in the order the pipeline hands them on.

    ``speaker_id`` numbers speakers: a source begun with ``same_speaker`` keeps the previous source's
    number (the worker's speaker normaliser goes on), the VAD gain the segmenter learned from it and the
    VAD's noise model, as if it followed on in one stream; otherwise all start afresh. Times restart at
    every source.
    """

    def __init__(self, config: SegmenterConfig, interim: bool) -> None:
        self.segmenter = Segmenter(config, interim)
        self.source = ""  # name of the current source
        self.speaker_id = 0  # counts speakers begun
        self.level_db = -120.0  # input level of the latest chunk, dBFS (a meter's ballistics)
        self.source_seconds = 0.0  # 16 kHz audio consumed from the current source
        self.speaking = False  # the latest speech state cut
        self._resample = Resampler(SAMPLE_RATE)
        self._entered: collections.deque[tuple[int, int, float]] = collections.deque(maxlen=ENTRIES_KEPT)

    def begin(self, name: str, rate: int = SAMPLE_RATE, same_speaker: bool = False) -> None:
        """Start a source of ``rate`` Hz; ``same_speaker``: the previous source's speaker goes on."""
        self.source = name
        self.source_seconds = 0.0
        self._entered.clear()
        if same_speaker:
            self.segmenter.reset(self.segmenter.memory, keep_vad=True)
        else:
            self.speaker_id += 1
            self.segmenter.reset()
        self._resample = Resampler(rate)

    def push(self, chunk: np.ndarray) -> list[Cut]:
        """A mono float32 chunk of the current source at its rate: what it completes."""
        chunk = self._resample(chunk)
        if not chunk.size:
            return []
        db = 10.0 * math.log10(float(np.dot(chunk, chunk)) / chunk.size + 1e-12)
        # a meter's ballistics: instant rise, fall of LEVEL_FALL_DB_PER_S
        self.level_db = max(db, self.level_db - LEVEL_FALL_DB_PER_S * chunk.size / SAMPLE_RATE)
        self.source_seconds += chunk.size / SAMPLE_RATE
        return self._segment(chunk)

    def end(self) -> list[Cut]:
        """End of the current source: the resampler's tail, then the utterance in progress ends."""
        tail = self._resample(np.zeros(0, np.float32), last=True)
        self._resample = Resampler(SAMPLE_RATE)
        cuts = self._segment(tail) if tail.size else []
        return cuts + self._cuts(self.segmenter.flush())

    def _segment(self, chunk: np.ndarray) -> list[Cut]:
        """Hand a chunk to the segmenter, remembering when it arrived and which samples it held."""
        entered, before = time.monotonic(), self.segmenter.position
        events = self.segmenter.process(chunk)
        self._entered.append((before, self.segmenter.position, entered))
        return self._cuts(events)

    def _arrival(self, sample: int) -> float:
        """time.monotonic() when the chunk holding ``sample`` of the current source reached the segmenter."""
        return next((t for before, after, t in reversed(self._entered) if before <= sample < after), math.nan)

    def _cuts(self, events: list[SegmentEvent]) -> list[Cut]:
        now = time.monotonic()
        cuts: list[Cut] = []
        for e in events:
            if e.kind in ("start", "discard"):
                self.speaking = e.kind == "start"
                cuts.append(SpeechState(self.source, self.speaking, e.start / SAMPLE_RATE))
                continue
            final = e.kind == "end"
            cuts.append(Job(self.source, e.start / SAMPLE_RATE, e.end / SAMPLE_RATE, e.audio, final, now, self.speaker_id,
                            ahead=e.kind == "pause", reason=e.reason if final else "",
                            voiced_in=self._arrival(e.voiced_end - 1) if final else math.nan))
            if final:
                self.speaking = False
                cuts.append(SpeechState(self.source, False, e.end / SAMPLE_RATE))
        return cuts
