"""The one path every source goes through: ring buffer -> segmenter thread -> worker.

A source (the microphone callback or the file replay thread, see :class:`Source`) calls
:meth:`Pipeline.begin_source`, then :meth:`Pipeline.feed_audio` with blocks at the source's own rate,
then :meth:`Pipeline.end_source`. Source boundaries travel as markers at absolute sample positions, so
the segmenter thread applies them exactly where the audio of one source ends.

Everything the pipeline has to say goes through :meth:`Pipeline.emit` onto ``results`` as typed events
(``ser_live.events``), the last one :class:`~ser_live.events.End`; an optional observer sees each event
as it is queued (the benchmark times latency with it). :meth:`Pipeline.status` is the counters and
levels at one moment.
"""

from __future__ import annotations

import collections
import queue
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ser_live.cutter import Cut, Cutter
from ser_live.events import Event, Observer, PipelineFailed, SpeechState, Status, StopReason
from ser_live.features import SAMPLE_RATE
from ser_live.model import EmotionModel
from ser_live.ringbuffer import RingBuffer
from ser_live.segmenter import SegmenterConfig
from ser_live.worker import Worker


class Source(Protocol):
    """What the session needs of an audio source (microphone capture, file replay), which feeds a
    pipeline from ``start()`` on."""

    def start(self) -> None:
        """Begin feeding (on the source's own thread or callback)."""

    def stop(self) -> None:
        """Stop feeding; returns once the source's end marker is in the pipeline (within about a second)."""

    def ended(self) -> StopReason | None:
        """Why the source has ended by itself (the files are done, the device is gone); None while it delivers."""

    def describe(self) -> str:
        """One line for the user: what is being listened to."""


@dataclass(frozen=True)
class Marker:
    position: int  # ring sample index where it applies
    kind: str  # "begin", "end" or "close"
    source: str = ""
    rate: int = SAMPLE_RATE
    same_speaker: bool = False  # "begin": the previous source's speaker goes on


class Pipeline:
    """Owns the ring buffer, the segmenter thread and the worker; results arrive on ``results``.

    ``batch=True`` (replay at ``--speed 0``) makes every stage wait instead of dropping. ``observer``
    is called with every event on the thread that emits it, before the session sees it: keep it cheap.
    """

    def __init__(
        self,
        model: EmotionModel,
        config: SegmenterConfig | None = None,
        batch: bool = False,
        ring_seconds: float = 10.0,
        max_rate: int = 48000,
        max_pending: int | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.batch = batch
        self.config = config or SegmenterConfig()
        self.ring = RingBuffer(int(ring_seconds * max_rate))
        self.results: queue.Queue[Event] = queue.Queue()
        self._observer = observer
        # live: the queue absorbs bursts instead of dropping; batch: the worker is the bottleneck,
        # so a deeper queue only adds work left to finish when the run is stopped
        self.worker = Worker(model, self.emit, max_pending or (2 if batch else 8))
        self.cutter = Cutter(self.config, interim=not batch)  # batch scoring uses only the ends
        self._markers: collections.deque[Marker] = collections.deque()
        self.overflows = 0  # input overflows the source reported (count_overflow)
        self._drop_unread = False
        self._thread = threading.Thread(target=self._run, name="ser-segmenter", daemon=True)

    # -- producer side -------------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()
        self._thread.start()

    def begin_source(self, name: str, rate: int = SAMPLE_RATE, same_speaker: bool = False) -> None:
        """The audio written from now on is source ``name`` at ``rate`` Hz; ``same_speaker``: the speaker
        of the previous source goes on (its VAD gain and speaker normalisation carry over)."""
        self._markers.append(Marker(self.ring.total_written, "begin", name, rate, same_speaker))

    def feed_audio(self, block: np.ndarray, until: threading.Event | None = None) -> bool:
        """Write a mono block at the current source's rate. Never blocks, unless ``until`` is
        given (batch replay): then it waits for room, but gives the block up once ``until`` is set."""
        if until is not None:
            while self.ring.free < len(block):
                if until.wait(0.002):
                    return False
        return self.ring.write(block)

    def count_overflow(self) -> None:
        """The source lost input before it reached the pipeline (a device overflow)."""
        self.overflows += 1

    def end_source(self) -> None:
        self._markers.append(Marker(self.ring.total_written, "end"))

    def close(self, drop_unread: bool = False) -> None:
        """No more sources: finish what is queued; ``results`` ends with :class:`End`.

        ``drop_unread`` (a stop request): audio not yet read is discarded instead of segmented,
        so what is left to do is the utterance in progress and the jobs already queued (at
        ``--speed 0`` the ring can hold many seconds of audio ahead of the segmenter).
        """
        if drop_unread:
            self._drop_unread = True
        self._markers.append(Marker(self.ring.total_written, "close"))

    # -- the session's side ----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Queue an event for the session (from any of the pipeline's threads), shown to the observer first."""
        if self._observer is not None:
            self._observer(event)
        self.results.put(event)

    def status(self) -> Status:
        """The pipeline's counters and levels now."""
        worker, cutter = self.worker, self.cutter
        return Status(cutter.source, cutter.source_seconds, cutter.level_db, cutter.speaking, self.overflows,
                      self.ring.dropped_blocks, worker.dropped_final, worker.dropped_provisional, worker.pending,
                      worker.accepted_final)

    # -- segmenter thread ------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """Name of the source the segmenter thread is reading."""
        return self.cutter.source

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self.worker.alive

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # report it; the session ends cleanly instead of hanging
            self.emit(PipelineFailed(f"{type(e).__name__}: {e}"))
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
            self._handle(self.cutter.push(chunk))

    def _apply(self, marker: Marker) -> bool:
        if marker.kind == "begin":
            self.cutter.begin(marker.source, marker.rate, marker.same_speaker)
            return True
        self._handle(self.cutter.end())
        return marker.kind != "close"

    def _handle(self, cuts: list[Cut]) -> None:
        for cut in cuts:
            if isinstance(cut, SpeechState):
                self.emit(cut)
            else:
                self.worker.submit(cut, wait=self.batch and cut.final)
