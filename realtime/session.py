"""One ser-live session: wire a source, the pipeline, the view and the log, run until stopped.

The session's thread reads the pipeline's events (``ser_live.events``) and hands them to the statistics,
the log and the view; it polls the source (``pipeline.Source``) for its own end and the pipeline for its
status, and turns stop requests (end of files, --duration, Ctrl-C, SIGTERM) into a bounded shutdown.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ser_live.arguments import EXIT_OUTPUT_CLOSED
from ser_live.events import (End, Event, Observer, PipelineFailed, Result, SourceFailed, SourceTruncated, SpeechState,
                             StopReason)
from ser_live.model import EmotionModel
from ser_live.pipeline import Pipeline, Source
from ser_live.replay import FileReplay, SessionMode
from ser_live.segmenter import SegmenterConfig
from ser_live.speaker_norm import CentroidOffset
from ser_live.session_log import LogError, SessionLog
from ser_live.stats import SessionStats
from ser_live.view import JsonView, LineView, LiveView, summary_text


# After Ctrl-C/SIGTERM/--duration: time left to classify the utterance in progress and the jobs
# already queued (tens of ms, unless the machine is overloaded). With the rest of the shutdown the
# process exits within 1 s even on a saturated machine.
STOP_GRACE_SECONDS = 0.3
POLL_SECONDS = 0.05  # the session loop looks at stop requests, the source and the view this often


@dataclass
class Options:
    model: EmotionModel
    files: list[Path] | None  # None: microphone
    device: str | None = None
    speed: float = 1.0
    duration: float | None = None
    log: SessionLog | None = None
    view: str = "live"  # live | lines | json
    segmenter: SegmenterConfig | None = None
    observer: Observer | None = None  # sees every pipeline event as it is queued (Pipeline's observer)
    session: SessionMode = "per-file"  # which replayed files are one speaker (replay.speaker_of)


def _err(message: str) -> None:
    sys.stderr.write(f"ser-live: {message}\n")
    sys.stderr.flush()


class Session:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        norm = opts.model.speaker_norm
        self.stats = SessionStats(opts.model.labels, norm_memory=getattr(norm, "memory", None),
                                  norm_method="centroid offset" if isinstance(norm, CentroidOffset) else "running mean")
        batch = opts.files is not None and opts.speed == 0
        self.pipeline = Pipeline(opts.model, opts.segmenter, batch=batch, observer=opts.observer)
        self.files_failed = 0
        self.files_truncated = 0
        self.output_closed = False  # stdout's reader went away (``ser-live ... | head``)
        self.log_failed = False
        self.pipeline_failed = False
        self.stop_reason: StopReason | None = None  # set once: why the session stops (None while running)
        self._hurry = False  # a second Ctrl-C: stop at once
        if opts.view == "live":
            self.view = LiveView(self.stats)
        elif opts.view == "json":
            self.view = JsonView(self.stats)
        else:
            self.view = LineView(self.stats)
        self.source: Source
        if opts.files is not None:
            self.source = FileReplay(self.pipeline, opts.files, opts.speed, opts.session)
        else:
            from ser_live.capture import MicrophoneCapture

            self.source = MicrophoneCapture(self.pipeline, opts.device)

    def request_stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def _handle(self, item: Event) -> None:
        if isinstance(item, SpeechState):
            self.view.speech(item.speaking)
        elif isinstance(item, PipelineFailed):
            self.pipeline_failed = True
            _err(f"internal error in the audio pipeline ({item.message}); stopping")
            self.request_stop(StopReason.PIPELINE_FAILED)
        elif isinstance(item, SourceFailed):
            self.files_failed += 1
            _err(f"{item.source}: {item.message} (skipped)")
        elif isinstance(item, SourceTruncated):
            self.files_truncated += 1
            _err(f"{item.source}: {item.message}; used as far as it goes")
        elif isinstance(item, Result):
            if item.job.final:
                self.stats.add(item)
                if item.probs is None:
                    _err(f"{item.job.source} {item.job.start_s:.2f}-{item.job.end_s:.2f} s: classification failed ({item.error})")
                elif self.opts.log is not None and not self.log_failed:
                    try:
                        self.opts.log.write(item)
                    except LogError as e:
                        self.log_failed = True
                        _err(f"{e}; logging stopped, the session goes on")
            try:
                self.view.result(item)
            except BrokenPipeError:  # nobody reads the output any more: stop at once, quietly
                self.output_closed = True
                self._hurry = True
                self.request_stop(StopReason.INTERRUPTED)

    def _on_signal(self, signum, frame) -> None:
        """Only set flags, which the loop reads within POLL_SECONDS: no lock (the main thread may
        hold it) and no exception (it may land in a weakref callback or a finally block)."""
        if signum == signal.SIGINT and self.stop_reason is not None:
            self._hurry = True
        self.request_stop(StopReason.INTERRUPTED if signum == signal.SIGINT else StopReason.TERMINATED)

    def _check_stop(self, t0: float) -> None:
        if self.opts.duration is not None and time.monotonic() - t0 >= self.opts.duration:
            self.request_stop(StopReason.DURATION)
        if (ended := self.source.ended()) is not None:
            self.request_stop(ended)

    def run(self, restore_signals: bool = True) -> int:
        """Run to the end of the files, --duration, Ctrl-C or SIGTERM; return the exit code.
        ``restore_signals`` False leaves SIGINT and SIGTERM ignored afterwards, for a process that
        exits next (a late Ctrl-C must not raise KeyboardInterrupt into its last steps)."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        t0 = time.monotonic()
        deadline = None  # once a stop is requested: classify what is in progress, but not forever
        wait = POLL_SECONDS
        self.pipeline.start()
        self.view.start()
        try:
            self.source.start()
            if self.opts.view != "live":
                _err(self.source.describe())
            while True:
                try:
                    item: Event | None = self.pipeline.results.get(timeout=wait)
                except queue.Empty:
                    item = None
                if isinstance(item, End) or (item is None and not self.pipeline.alive):
                    break  # the pipeline has finished everything after close(), or has died
                if item is not None:
                    self._handle(item)
                if self._hurry:
                    if deadline is None:
                        self._close_source(drop_unread=True)
                    self._stop_early()
                    break
                if deadline is None:
                    self._check_stop(t0)
                    if self.stop_reason is not None:
                        natural = self.stop_reason is StopReason.END_OF_FILES
                        self._close_source(drop_unread=not natural)
                        deadline = float("inf") if natural else time.monotonic() + STOP_GRACE_SECONDS
                elif time.monotonic() > deadline:
                    self._stop_early()
                    break
                wait = min(POLL_SECONDS, self.view.tick(self.pipeline.status()))
        finally:
            for sig in handlers:  # what is computed gets logged and summed up, whatever is pressed now
                signal.signal(sig, signal.SIG_IGN)
            self.view.stop()
            if self.opts.log is not None:
                self.opts.log.close()
        if not self.output_closed:
            out = sys.stdout if self.opts.view == "live" else sys.stderr  # piped, stdout carries only data
            out.write(summary_text(self.stats, self.pipeline.status(), self.files_failed, time.monotonic() - t0,
                                   self.files_truncated) + "\n")
            out.flush()
        if restore_signals:
            for sig, previous in handlers.items():
                signal.signal(sig, previous)
        if self.output_closed:
            return EXIT_OUTPUT_CLOSED
        if self.stop_reason is StopReason.DEVICE_STOPPED:
            _err("the input device stopped delivering audio; the log is complete up to that point")
            return 1
        return 1 if (self.files_failed or self.log_failed or self.pipeline_failed) else 0

    def _stop_early(self) -> None:
        """Stop without waiting for the utterances still queued; keep the results already computed."""
        self._handle_ready()
        if self.stats.utterances + self.stats.failed < self.pipeline.status().accepted_final and not self.output_closed:
            _err("stopped before every queued utterance was classified")

    def _handle_ready(self) -> None:
        """Handle (log and show) the results already computed, without waiting for more."""
        while True:
            try:
                item = self.pipeline.results.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, End):
                return
            self._handle(item)

    def _close_source(self, drop_unread: bool) -> None:
        self.source.stop()  # its end-of-source marker must come before close()
        self.pipeline.close(drop_unread)
