"""What the user sees: a rich live view on a terminal, plain lines or JSON lines otherwise."""

from __future__ import annotations

import collections
import json
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from ser_live.events import Result, Status
from ser_live.stats import SessionStats, percentiles

COLOURS = {
    "neutral": "grey70",
    "calm": "cyan",
    "happy": "yellow",
    "sad": "blue",
    "angry": "red",
    "fearful": "magenta",
    "disgust": "green",
    "surprised": "bright_cyan",
}


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _clock(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0.0)), 60)
    return f"{m:02d}:{s:02d}"


def _latency_line(stats: SessionStats) -> str:
    p50, p95, _ = percentiles(stats.latency_ms)
    return (
        f"latency end of speech detected→result p50 {_ms(p50)} ms, p95 {_ms(p95)} ms, max {_ms(stats.max_latency_ms if stats.utterances else math.nan)} ms"
        f" | features {_ms(percentiles(stats.feature_ms)[0])} ms, inference {_ms(percentiles(stats.inference_ms)[0])} ms"
    )


def summary_text(stats: SessionStats, status: Status, files_failed: int, elapsed: float, files_truncated: int = 0) -> str:
    """The end-of-session summary, plain text."""
    lines = [f"session: {stats.utterances} utterances in {elapsed:.1f} s wall" + (f", {stats.failed} failed" if stats.failed else "")]
    spoken = {k: v for k, v in stats.seconds_per_emotion.items() if v > 0}
    if spoken:
        lines.append("time per emotion: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(spoken.items(), key=lambda kv: -kv[1])))
    if stats.adapted is not None:
        span = f" of about the last {stats.norm_memory:g} utterances" if stats.norm_memory else ""
        lines.append(f"speaker adaptation: {stats.norm_method}{span} per source, {stats.adapted_sources} source(s), "
                     f"adapted on up to {stats.adapted_max} utterances of one source")
    lines.append(_latency_line(stats))
    lines.append(
        f"input overflows {status.overflows}, dropped blocks {status.dropped_blocks}, "
        f"dropped utterances {status.dropped_final}" + (f", files failed {files_failed}" if files_failed else "")
    )
    if files_truncated:
        lines.append(f"{files_truncated} file{'s' if files_truncated > 1 else ''} truncated (used as far as {'they go' if files_truncated > 1 else 'it goes'})")
    return "\n".join(lines)


PLAIN_COLUMNS = ("source", "start_s", "end_s", "emotion", "confidence", "latency_ms")


class LineView:
    """One tab-separated line per final utterance on stdout (not a terminal, or ``--plain``), after a header
    line naming the columns (:data:`PLAIN_COLUMNS`): data only, for ``cut``, ``awk`` or a TSV reader. An
    utterance that could not be classified has the emotion ``failed`` and empty confidence and latency."""

    def __init__(self, stats: SessionStats, out: TextIO | None = None) -> None:
        self.stats = stats
        self.out = out or sys.stdout

    def start(self) -> None:
        self.out.write("\t".join(PLAIN_COLUMNS) + "\n")
        self.out.flush()

    def stop(self) -> None:
        pass

    def speech(self, speaking: bool) -> None:
        pass

    def result(self, r: Result) -> None:
        if not r.job.final:
            return
        where = f"{r.job.source}\t{r.job.start_s:.2f}\t{r.job.end_s:.2f}"
        if r.probs is None:
            self.out.write(f"{where}\tfailed\t\t\n")
        else:
            best = int(r.probs.argmax())
            self.out.write(f"{where}\t{self.stats.labels[best]}\t{r.probs[best]:.2f}\t{r.latency_ms:.1f}\n")
        self.out.flush()

    def tick(self, status: Status) -> float:
        """Take the pipeline's state; return how soon (s) the view wants the next tick at the latest."""
        return math.inf


class JsonView(LineView):
    """One JSON object per final utterance (JSON Lines), for piping into other tools."""

    def start(self) -> None:
        pass

    def result(self, r: Result) -> None:
        if not r.job.final:
            return
        obj: dict = {"source": r.job.source, "start_s": round(r.job.start_s, 3), "end_s": round(r.job.end_s, 3)}
        obj["wall_time"] = datetime.fromtimestamp(r.wall_time).astimezone().isoformat(timespec="milliseconds")
        if r.probs is None:
            obj["error"] = r.error
        else:
            best = int(r.probs.argmax())
            obj.update(
                emotion=self.stats.labels[best],
                confidence=round(float(r.probs[best]), 4),
                latency_ms=round(r.latency_ms, 1),
                features_ms=round(r.feature_ms, 2),
                inference_ms=round(r.inference_ms, 2),
                cpu_ms=round(r.cpu_ms, 2),
                probs={label: round(float(p), 4) for label, p in zip(self.stats.labels, r.probs)},
            )
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()


class LiveView:
    """The terminal view: current emotion, probability bars, history, level, latency, counters.

    Drawing is the costly part of listening (rich lays out and writes the whole panel), so it is
    economical: plain text lines instead of rich tables, a redraw right away (at most ``fps`` times
    a second) when a result or a speech state arrives, and otherwise at most ``status_fps`` times
    a second, only when something it shows has changed (level meter, clock, counters). A status
    redraw never delays a result's.

    ``on_draw`` (optional) is called after every draw with its time (``time.monotonic()``) and the results
    it showed (the current one and the history): how long a result takes to reach the screen.
    """

    def __init__(self, stats: SessionStats, console: Console | None = None, history: int = 8, fps: float = 30.0,
                 status_fps: float = 2.0, on_draw: Callable[[float, list[Result]], None] | None = None) -> None:
        self.stats = stats
        self.console = console or Console()
        self.history: collections.deque[Result] = collections.deque(maxlen=history)
        self.current: Result | None = None
        self.status: Status | None = None
        self.speaking = False
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._period = 1.0 / fps
        self._status_period = 1.0 / status_fps
        self._last_draw = 0.0
        self._last_urgent = 0.0  # the last draw for a result or speech state: only these are held to ``fps``
        self._dirty = True
        self._shown: tuple | None = None  # what the status part showed at the last draw
        self._results_text: tuple[Text, Text] | None = None  # the parts that change only with results
        self._on_draw = on_draw

    def start(self) -> None:
        self._live.start()
        self._draw()

    def stop(self) -> None:
        self._draw()
        self._live.stop()

    def speech(self, speaking: bool) -> None:
        # Speech starting is shown at once; speech ending is not urgent: the final result follows
        # within milliseconds and draws it (else the status redraw shows it).
        if speaking and not self.speaking:
            self._dirty = True
        self.speaking = speaking

    def result(self, r: Result) -> None:
        if r.probs is not None:
            self.current = r
        if r.job.final:
            self.history.appendleft(r)
        self._results_text = None
        self._dirty = True

    @staticmethod
    def _signature(st: Status) -> tuple:
        level = max(st.level_db, -99.0)
        return (st.source, int(st.source_seconds), _meter_cells(level), round(level), st.speaking, st.overflows,
                st.dropped_blocks, st.dropped_final, st.pending)

    def tick(self, status: Status) -> float:
        """Redraw now if a result or speech state is waiting, else at most ``status_fps`` a second;
        a result that came too soon after the last draw asks for a tick when it may be drawn."""
        self.status = status
        now = time.monotonic()
        if self._dirty:
            since = now - self._last_urgent
            if since < self._period:
                return self._period - since
            self._draw()
            self._last_urgent = self._last_draw
        elif now - self._last_draw >= self._status_period and self._signature(status) != self._shown:
            self._draw()
        return math.inf

    def _draw(self) -> None:
        self._live.update(self._render(), refresh=True)
        self._last_draw = time.monotonic()
        self._dirty = False
        self._shown = None if self.status is None else self._signature(self.status)
        if self._on_draw is not None:
            self._on_draw(self._last_draw, [self.current, *self.history] if self.current is not None else list(self.history))

    def _render_results(self) -> tuple[Text, Text]:
        """Head and probability bars; history and latencies: rebuilt only when a result arrives."""
        labels = self.stats.labels
        t = Text()
        if self.current is None:
            t.append("  listening…  ", style="bold")
        else:
            r = self.current
            best = int(r.probs.argmax())
            label = labels[best]
            t.append(f"  {label.upper()}  ", style=f"bold black on {COLOURS.get(label, 'white')}")
            t.append(f"  {r.probs[best]:.0%}", style="bold")
            if not r.job.final:
                t.append("  (provisional)", style="dim italic")
        if self.stats.mood_label:
            t.append(f"     mood: {self.stats.mood_label}", style=COLOURS.get(self.stats.mood_label, "white"))
        t.append("\n\n")
        probs = self.current.probs if self.current is not None else None
        for i, label in enumerate(labels):
            p = float(probs[i]) if probs is not None else 0.0
            bar = "█" * int(round(p * 30)) or "·"
            t.append(f"{label:>9} ")
            t.append(f"{bar:<30}", style=COLOURS.get(label, "white"))
            t.append(f" {p:4.0%}\n")
        top, t = t, Text()
        t.append(f" {'time':<8}  {'span (s)':<13}  {'emotion':<9}  {'conf':>4}  result after speech ended\n", style="dim")
        for r in self.history:
            when = datetime.fromtimestamp(r.wall_time).strftime("%H:%M:%S")
            t.append(f" {when:<8}  {r.job.start_s:6.1f}–{r.job.end_s:6.1f}  ")
            if r.probs is None:
                t.append(f"{'failed':<9}\n", style="red")
                continue
            best = int(r.probs.argmax())
            t.append(f"{labels[best]:<9}", style=COLOURS.get(labels[best], "white"))
            after = (r.ready - r.job.voiced_in) * 1000  # the hangover that detects the end, then the work
            t.append(f"  {r.probs[best]:.2f}  {'-' if math.isnan(after) else f'{after:.0f} ms'}\n")
        t.rstrip()
        return top, t

    def _render(self) -> Panel:
        st = self.status
        if self._results_text is None:
            self._results_text = self._render_results()
        level = st.level_db if st else -120.0
        cells = _meter_cells(level)
        state = Text()
        state.append("● speaking" if self.speaking else "○ silent", style="bold green" if self.speaking else "dim")
        state.append("   level ")
        state.append("▮" * cells, style="green" if level < -12 else "red")
        state.append("▯" * (20 - cells), style="dim")
        state.append(f" {max(level, -99):.0f} dBFS")
        state.append(f"   utterances {self.stats.utterances}")
        if self.stats.adapted is not None:
            state.append(f"   adapted {self.stats.adapted}")
        counters = Text(style="dim")
        if st:  # trouble only: all zero on a machine that keeps up
            shown = [("input overflows", st.overflows), ("dropped blocks", st.dropped_blocks),
                     ("dropped utterances", st.dropped_final), ("queued", st.pending if st.dropped_final else 0)]
            counters.append("  ".join(f"{name} {n}" for name, n in shown if n))
            if st.dropped_final:
                counters.append("  falling behind!", style="bold red")
        legend = Text("mood: recent utterances smoothed · adapted: utterances heard of this voice", style="dim")
        title = f"ser-live — {Path(st.source).name if st else ''} — {_clock(st.source_seconds if st else 0.0)}"
        top, bottom = self._results_text
        rows = [top, state, bottom, legend] + ([counters] if counters.plain else [])
        # the history gets the rows the terminal has left: the others take one each, plus the border's two
        free = self.console.size.height - 2 - len(top.plain.split("\n")) - len(rows) + 2
        rows[2] = Text("\n").join(bottom.split("\n")[: max(1, free)])
        return Panel(Text("\n").join(rows), title=title, title_align="left")


def _meter_cells(level_db: float) -> int:
    return int(max(0.0, min(1.0, (level_db + 70.0) / 70.0)) * 20)
