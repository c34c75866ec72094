"""What the pipeline tells the session: typed events on one results queue, the pipeline's state as one
snapshot, and why a session stops.

Three threads write events (the segmenter thread, the worker, the file replay) through
``Pipeline.emit``; the session's thread reads them. The view, the log and the statistics depend on this
module only, not on the threads that produce the events.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np


@dataclass(frozen=True)
class Job:
    """One piece of speech to classify. ``final`` is False for provisional (mid-utterance) jobs."""

    source: str
    start_s: float
    end_s: float
    audio: np.ndarray = field(repr=False)
    final: bool
    detected: float  # time.monotonic() when the segmenter emitted it
    source_id: int = 0  # a new number for every speaker the pipeline begins (a source, or a session of them): the speaker normaliser restarts
    ahead: bool = False  # the audio of a pause: extract its features now, for the final job of the same span
    reason: str = ""  # final jobs: why the segmenter ended the utterance ("silence", "max_length", "flush")
    voiced_in: float = math.nan  # final jobs: time.monotonic() when its last voiced frame reached the segmenter

    @property
    def span(self) -> tuple[int, float, float]:
        return self.source_id, self.start_s, self.end_s


@dataclass(frozen=True)
class Result:
    """The emotion probabilities of one job (an utterance result)."""

    job: Job
    probs: np.ndarray | None  # None when classification failed
    error: str = ""
    feature_ms: float = 0.0
    inference_ms: float = 0.0
    ready: float = 0.0  # time.monotonic() when the result was ready
    wall_time: float = 0.0  # time.time() at the same moment
    cpu_ms: float = 0.0  # CPU time of the worker thread for features + inference
    adapted: int | None = None  # earlier final utterances of this source the normaliser had; None: model without one
    ahead: bool = False  # features were extracted during the hangover (feature_ms and cpu_ms include that work)

    @property
    def latency_ms(self) -> float:
        """Speech end detected -> result ready."""
        return (self.ready - self.job.detected) * 1000.0


@dataclass(frozen=True)
class SpeechState:
    """Speech started (``speaking``), or a started span ended or was discarded."""

    source: str
    speaking: bool
    start_s: float


@dataclass(frozen=True)
class SourceFailed:
    """One source (a file) could not be used; the session goes on with the next."""

    source: str
    message: str


@dataclass(frozen=True)
class SourceTruncated:
    """A file ended early (cut off, or its data stopped decoding): what it held was used, the rest is missing."""

    source: str
    message: str


@dataclass(frozen=True)
class PipelineFailed:
    """The segmenter thread hit an unexpected error; the pipeline ends after it."""

    message: str


@dataclass(frozen=True)
class End:
    """The last event: the pipeline has finished everything after ``close()``."""


Event = Union[Result, SpeechState, SourceFailed, SourceTruncated, PipelineFailed, End]
Observer = Callable[[Event], None]  # called on the emitting thread with every event, as it is queued


class StopReason(enum.Enum):
    """Why a session stops; the value is what the user reads."""

    END_OF_FILES = "end of files"
    DURATION = "duration reached"
    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"
    PIPELINE_FAILED = "pipeline failed"
    DEVICE_STOPPED = "input device stopped"


@dataclass(frozen=True)
class Status:
    """The pipeline's state at one moment: what the view shows and the summary counts."""

    source: str
    source_seconds: float
    level_db: float
    speaking: bool
    overflows: int
    dropped_blocks: int
    dropped_final: int
    dropped_provisional: int
    pending: int
    accepted_final: int  # final jobs queued for the worker so far
