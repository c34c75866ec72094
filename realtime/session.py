"""One ser-live session: wire a source, the pipeline, the view and the log, run until stopped."""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ser_live.model import EmotionModel
from ser_live.pipeline import Pipeline, PipelineFailed, SpeechState
from ser_live.replay import FileFailed, FileReplay
from ser_live.segmenter import SegmenterConfig
from ser_live.session_log import LogError, SessionLog
from ser_live.stats import SessionStats
from ser_live.view import JsonView, LineView, LiveView, Status, summary_text
from ser_live.worker import Result


# After Ctrl-C/SIGTERM/--duration: time left to classify the utterance in progress and the jobs
# already queued (tens of ms, unless the machine is overloaded). With the rest of the shutdown the
# process exits within 1 s even on a saturated machine.
STOP_GRACE_SECONDS = 0.3
STALL_SECONDS = 3.0  # a microphone that delivers nothing this long has gone away
POLL_SECONDS = 0.05  # the session loop looks at stop requests, the stall watchdog and the view this often


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


def _err(message: str) -> None:
    sys.stderr.write(f"ser-live: {message}\n")
    sys.stderr.flush()


class Session:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        norm = opts.model.speaker_norm
        self.stats = SessionStats(opts.model.labels, norm_memory=norm.memory if norm is not None else None)
        batch = opts.files is not None and opts.speed == 0
        self.pipeline = Pipeline(opts.model, opts.segmenter, batch=batch)
        self.files_failed = 0
        self.log_failed = False
        self.pipeline_failed = False
        self._stop_reason = ""  # set once: why the session stops ("" while running)
        self._hurry = False  # a second Ctrl-C: stop at once
        self._last_written = 0
        self._last_audio = 0.0
        self.speaking = False
        if opts.view == "live":
            self.view = LiveView(self.stats)
        elif opts.view == "json":
            self.view = JsonView(self.stats)
        else:
            self.view = LineView(self.stats)
        if opts.files is not None:
            self.source = FileReplay(self.pipeline, opts.files, opts.speed)
        else:
            from ser_live.capture import MicrophoneCapture

            self.source = MicrophoneCapture(self.pipeline, opts.device)

    def request_stop(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason

    def _status(self) -> Status:
        p, src = self.pipeline, self.source
        return Status(
            source=p.source,
            source_seconds=p.source_seconds,
            level_db=p.level_db,
            speaking=self.speaking,
            overflows=getattr(src, "overflows", 0),
            dropped_blocks=p.ring.dropped_blocks,
            dropped_final=p.worker.dropped_final,
            dropped_provisional=p.worker.dropped_provisional,
            pending=p.worker.pending,
        )

    def _handle(self, item) -> None:
        if isinstance(item, SpeechState):
            self.speaking = item.speaking
            self.view.speech(item.speaking)
        elif isinstance(item, PipelineFailed):
            self.pipeline_failed = True
            _err(f"internal error in the audio pipeline ({item.message}); stopping")
            self.request_stop("pipeline failed")
        elif isinstance(item, FileFailed):
            self.files_failed += 1
            _err(f"{item.path}: {item.message} (skipped)")
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
            self.view.result(item)

    def _on_signal(self, signum, frame) -> None:
        """Only set flags, which the loop reads within POLL_SECONDS: no lock (the main thread may
        hold it) and no exception (it may land in a weakref callback or a finally block)."""
        if signum == signal.SIGINT and self._stop_reason:
            self._hurry = True
        self.request_stop("interrupted" if signum == signal.SIGINT else "terminated")

    def _check_stop(self, t0: float) -> None:
        now = time.monotonic()
        if self.opts.duration is not None and now - t0 >= self.opts.duration:
            self.request_stop("duration reached")
        if isinstance(self.source, FileReplay):
            if self.source.done.is_set():
                self.request_stop("end of files")
            return
        written = self.pipeline.ring.total_written
        if written != self._last_written:
            self._last_written, self._last_audio = written, now
        if self.source.failed.is_set() or now - self._last_audio > STALL_SECONDS:
            self.request_stop("input device stopped")

    def run(self, restore_signals: bool = True) -> int:
        """Run to the end of the files, --duration, Ctrl-C or SIGTERM; return the exit code.
        ``restore_signals`` False leaves SIGINT and SIGTERM ignored afterwards, for a process that
        exits next (a late Ctrl-C must not raise KeyboardInterrupt into its last steps)."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        t0 = self._last_audio = time.monotonic()
        deadline = None  # once a stop is requested: classify what is in progress, but not forever
        wait = POLL_SECONDS
        self.pipeline.start()
        self.view.start()
        try:
            self.source.start()
            if self.opts.view != "live":
                _err(self._describe_source())
            while True:
                try:
                    item = self.pipeline.results.get(timeout=wait)
                except queue.Empty:
                    item = ...
                if item is None or (item is ... and not self.pipeline.alive):
                    break  # the pipeline has finished everything after close(), or has died
                if item is not ...:
                    self._handle(item)
                if self._hurry:
                    if deadline is None:
                        self._close_source(drop_unread=True)
                    self._stop_early()
                    break
                if deadline is None:
                    self._check_stop(t0)
                    if self._stop_reason:
                        natural = self._stop_reason == "end of files"
                        self._close_source(drop_unread=not natural)
                        deadline = float("inf") if natural else time.monotonic() + STOP_GRACE_SECONDS
                elif time.monotonic() > deadline:
                    self._stop_early()
                    break
                wait = min(POLL_SECONDS, self.view.tick(self._status()))
        finally:
            for sig in handlers:  # what is computed gets logged and summed up, whatever is pressed now
                signal.signal(sig, signal.SIG_IGN)
            self.view.stop()
            if self.opts.log is not None:
                self.opts.log.close()
        out = sys.stderr if self.opts.view == "json" else sys.stdout
        out.write(summary_text(self.stats, self._status(), self.files_failed, time.monotonic() - t0) + "\n")
        out.flush()
        if restore_signals:
            for sig, previous in handlers.items():
                signal.signal(sig, previous)
        if self._stop_reason == "input device stopped":
            _err("the input device stopped delivering audio; the log is complete up to that point")
            return 1
        return 1 if (self.files_failed or self.log_failed or self.pipeline_failed) else 0

    def _describe_source(self) -> str:
        if isinstance(self.source, FileReplay):
            pace = "as fast as possible" if self.opts.speed == 0 else f"at {self.opts.speed:g}x real time"
            return f"replaying {len(self.source.files)} file(s) {pace}"
        return f"listening on {self.source.name!r} at {self.source.rate} Hz"

    def _stop_early(self) -> None:
        """Stop without waiting for the utterances still queued; keep the results already computed."""
        self._handle_ready()
        if self.stats.utterances + self.stats.failed < self.pipeline.worker.accepted_final:
            _err("stopped before every queued utterance was classified")

    def _handle_ready(self) -> None:
        """Handle (log and show) the results already computed, without waiting for more."""
        while True:
            try:
                item = self.pipeline.results.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            self._handle(item)

    def _close_source(self, drop_unread: bool) -> None:
        self.source.stop()
        if isinstance(self.source, FileReplay):
            self.source.join(1.0)  # its end-of-source marker must come before close(); it stops within ms
        self.pipeline.close(drop_unread)
