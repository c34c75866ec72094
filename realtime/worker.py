"""The classifier worker: one thread that turns utterance audio into emotion probabilities."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ser_live import features
from ser_live.events import End, Job, Observer, Result
from ser_live.model import EmotionModel
from ser_live.speaker_norm import CentroidState, SourceState


class Worker:
    """Consumes jobs from a bounded queue on its own thread and hands each result to ``emit``.

    ``submit(job, wait=False)`` never blocks: when the queue is full the job is dropped and
    counted (live sources must not stall). ``wait=True`` is for batch replay, which must not drop.

    An ``ahead`` job (speech paused for the padding, but the hangover has not yet ended the utterance)
    produces no result: its feature vector is kept, and the final job of the same span, arriving a
    hangover later, only normalises and classifies it. Speech that resumes makes it wasted work.

    With a model that adapts to the speaker the worker keeps one state for the current speaker (``source_id``):
    every job, provisional or final, is classified with it (plus the job's own vector); only a classified final
    utterance updates it.
    """

    def __init__(self, model: EmotionModel, emit: Observer, max_pending: int = 8) -> None:
        self.model = model
        self.emit = emit
        self._jobs: queue.Queue[Job | None] = queue.Queue(max_pending)
        self.dropped_final = 0
        self.dropped_provisional = 0
        self.accepted_final = 0  # final jobs queued (written by the submitting thread only)
        self._norm_state: SourceState | CentroidState | None = None
        self._norm_source = -1
        self._ahead: tuple[tuple, np.ndarray, float, float] | None = None  # span, vector, ms, CPU ms
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="ser-worker", daemon=True)

    def start(self) -> None:
        self.warm_up()
        self._thread.start()

    def warm_up(self) -> None:
        """Classify a short synthetic vowel once, before the first utterance: some numpy paths
        import modules on first use (np.percentile pulls in numpy.ma, 10-40 ms), which would
        otherwise land on the first result's latency. Failures show on the first real utterance."""
        t = np.arange(features.SAMPLE_RATE // 2) / features.SAMPLE_RATE
        x = 0.1 * np.sin(2 * np.pi * 140.0 * t) * (1.0 + 0.5 * np.sin(2 * np.pi * 3.0 * t))
        x += np.random.default_rng(0).normal(0.0, 1e-3, t.size)
        try:
            self.model.predict(self.model.extract(x.astype(np.float32)))
        except Exception:
            pass

    def submit(self, job: Job, wait: bool = False) -> bool:
        try:
            self._jobs.put(job, block=wait)
            self.accepted_final += job.final
            return True
        except queue.Full:
            if job.final:
                self.dropped_final += 1
            elif not job.ahead:  # a lost ahead job only means the final job extracts itself
                self.dropped_provisional += 1
            return False

    def close(self) -> None:
        """Finish the queued final jobs (provisional ones are skipped now), then stop (the
        thread emits :class:`End`)."""
        self._closing = True
        self._jobs.put(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if (job.final or not self._closing) and (result := self.run(job)) is not None:
                self.emit(result)
        self.emit(End())

    def run(self, job: Job) -> Result | None:
        """Do one job on the calling thread: an ``ahead`` job's features are kept (None), any other job
        is classified."""
        if job.ahead:
            self.extract_ahead(job)
            return None
        return self.classify(job)

    def _state(self, job: Job) -> SourceState | CentroidState | None:
        """The adaptation state of ``job``'s source (fresh at a new source), None without adaptation."""
        if self.model.speaker_norm is None:
            return None
        if self._norm_state is None or self._norm_source != job.source_id:
            self._norm_state, self._norm_source = self.model.speaker_norm.state(), job.source_id
        return self._norm_state

    def extract_ahead(self, job: Job) -> None:
        """Extract the features of an ``ahead`` job and keep them for the final job of its span."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            vector = self.model.extract(job.audio)
        except Exception:  # the final job extracts again and reports the error
            self._ahead = None
            return
        self._ahead = (job.span, vector, (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3)

    def classify(self, job: Job) -> Result:
        t0, c0 = time.perf_counter(), time.thread_time()
        state = self._state(job)
        adapted = None if state is None else state.n
        vector, ahead_ms, ahead_cpu = None, 0.0, 0.0
        if job.final:
            kept, self._ahead = self._ahead, None
            if kept is not None and kept[0] == job.span:
                _, vector, ahead_ms, ahead_cpu = kept
        early = vector is not None
        try:
            if vector is None:
                vector = self.model.extract(job.audio)
            t1 = time.perf_counter()
            if state is None:
                probs = self.model.predict(vector)
            else:
                probs, added = state.predict(vector, self.model.predict, self.model.unadapted)
            t2 = time.perf_counter()
        except Exception as e:  # one bad utterance must not end the session
            return Result(job, None, f"{type(e).__name__}: {e}", ready=time.monotonic(), wall_time=time.time(),
                          adapted=adapted)
        if state is not None and job.final:
            state.update(added)
        cpu = (time.thread_time() - c0) * 1e3 + ahead_cpu
        return Result(job, probs, "", (t1 - t0) * 1e3 + ahead_ms, (t2 - t1) * 1e3, time.monotonic(), time.time(), cpu,
                      adapted, early)
