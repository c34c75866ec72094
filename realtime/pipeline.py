"""The one path every source goes through: ring buffer -> segmenter thread -> worker.

A source (the microphone callback or the file replay thread) calls :meth:`Pipeline.begin_source`,
then :meth:`Pipeline.feed_audio` with blocks at the source's own rate, then
:meth:`Pipeline.end_source`. Source boundaries travel as markers at absolute sample positions, so
the segmenter thread applies them exactly where the audio of one source ends.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from ser_live.features import SAMPLE_RATE
from ser_live.model import EmotionModel
from ser_live.ringbuffer import RingBuffer
from ser_live.segmenter import Segmenter, SegmenterConfig
from ser_live.worker import Job, Worker


LEVEL_FALL_DB_PER_S = 30.0


@dataclass(frozen=True)
class Marker:
    position: int  # ring sample index where it applies
    kind: str  # "begin", "end" or "close"
    source: str = ""
    rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class PipelineFailed:
    """Put on the results queue if the segmenter thread hits an unexpected error."""

    message: str


@dataclass(frozen=True)
class SpeechState:
    """Put on the results queue when speech starts or a started span is discarded."""

    source: str
    speaking: bool
    start_s: float


class Pipeline:
    """Owns the ring buffer, the segmenter thread and the worker; results arrive on ``results``.

    ``batch=True`` (replay at ``--speed 0``) makes every stage wait instead of dropping.
    """

    def __init__(
        self,
        model: EmotionModel,
        config: SegmenterConfig | None = None,
        batch: bool = False,
        ring_seconds: float = 10.0,
        max_rate: int = 48000,
        max_pending: int | None = None,
    ) -> None:
        self.batch = batch
        self.config = config or SegmenterConfig()
        self.ring = RingBuffer(int(ring_seconds * max_rate))
        self.results: queue.Queue = queue.Queue()
        # live: the queue absorbs bursts instead of dropping; batch: the worker is the bottleneck,
        # so a deeper queue only adds work left to finish when the run is stopped
        self.worker = Worker(model, self.results, max_pending or (2 if batch else 8))
        self.segmenter = Segmenter(self.config, interim=not batch)  # batch scoring uses only the ends
        self._markers: collections.deque[Marker] = collections.deque()
        self._source = ""
        self._source_id = 0  # counts begun sources
        self._resampler = None
        self.level_db = -120.0  # input level of the latest block, dBFS
        self.source_seconds = 0.0  # audio consumed from the current source
        self._drop_unread = False
        self._thread = threading.Thread(target=self._run, name="ser-segmenter", daemon=True)

    # -- producer side -------------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()
        self._thread.start()

    def begin_source(self, name: str, rate: int = SAMPLE_RATE) -> None:
        self._markers.append(Marker(self.ring.total_written, "begin", name, rate))

    def feed_audio(self, block: np.ndarray, until: threading.Event | None = None) -> bool:
        """Write a mono block at the current source's rate. Never blocks, unless ``until`` is
        given (batch replay): then it waits for room, but gives the block up once ``until`` is set."""
        if until is not None:
            while self.ring.free < len(block):
                if until.wait(0.002):
                    return False
        return self.ring.write(block)

    def end_source(self) -> None:
        self._markers.append(Marker(self.ring.total_written, "end"))

    def close(self, drop_unread: bool = False) -> None:
        """No more sources: finish what is queued; ``results`` ends with ``None``.

        ``drop_unread`` (a stop request): audio not yet read is discarded instead of segmented,
        so what is left to do is the utterance in progress and the jobs already queued (at
        ``--speed 0`` the ring can hold many seconds of audio ahead of the segmenter).
        """
        if drop_unread:
            self._drop_unread = True
        self._markers.append(Marker(self.ring.total_written, "close"))

    # -- segmenter thread ------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """Name of the source the segmenter thread is reading."""
        return self._source

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self.worker.alive

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # report it; the session ends cleanly instead of hanging
            self.results.put(PipelineFailed(f"{type(e).__name__}: {e}"))
        finally:
            self.worker.close()

    def _loop(self) -> None:
        ring, markers = self.ring, self._markers
        block = SAMPLE_RATE // 10
        read_pos = 0
        while True:
            # Snapshot what is written BEFORE looking at the markers: a marker is appended after
            # the audio before it, so any audio in the snapshot past a marker implies the marker
            # is already visible, and no chunk ever straddles a source boundary.
            written = ring.total_written
            if markers and markers[0].position <= read_pos:
                if not self._apply(markers.popleft()):
                    break
                continue
            limit = (markers[0].position if markers else written) - read_pos
            if limit <= 0:
                ring.wait(0.02)
                continue
            if self._drop_unread:
                read_pos += ring.skip(limit)
                continue
            chunk = ring.read(min(limit, 8 * block))
            read_pos += chunk.size
            self._consume(chunk)

    def _apply(self, marker: Marker) -> bool:
        if marker.kind == "begin":
            self._source = marker.source
            self._source_id += 1
            self.source_seconds = 0.0
            self.segmenter.reset()
            self._resampler = None
            if marker.rate != SAMPLE_RATE:
                import soxr

                self._resampler = soxr.ResampleStream(marker.rate, SAMPLE_RATE, 1, dtype="float32")
            return True
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._resampler = None
            self._handle(self.segmenter.process(tail))
        self._handle(self.segmenter.flush())
        return marker.kind != "close"

    def _consume(self, chunk: np.ndarray) -> None:
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        if chunk.size:
            db = 10.0 * math.log10(float(np.dot(chunk, chunk)) / chunk.size + 1e-12)
            # a meter's ballistics: instant rise, fall of LEVEL_FALL_DB_PER_S
            self.level_db = max(db, self.level_db - LEVEL_FALL_DB_PER_S * chunk.size / SAMPLE_RATE)
            self.source_seconds += chunk.size / SAMPLE_RATE
            self._handle(self.segmenter.process(chunk))

    def _handle(self, events: list) -> None:
        now = time.monotonic()
        for e in events:
            if e.kind in ("start", "discard"):
                self.results.put(SpeechState(self._source, e.kind == "start", e.start / SAMPLE_RATE))
                continue
            final = e.kind == "end"
            job = Job(self._source, e.start / SAMPLE_RATE, e.end / SAMPLE_RATE, e.audio, final, now, self._source_id,
                      ahead=e.kind == "pause")
            self.worker.submit(job, wait=self.batch and final)
            if final:
                self.results.put(SpeechState(self._source, False, e.end / SAMPLE_RATE))
