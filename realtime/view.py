"""What the user sees: a rich live view on a terminal, plain lines or JSON lines otherwise."""

from __future__ import annotations

import collections
import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from realtime.stats import SessionStats, percentiles
from realtime.worker import Result

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


@dataclass
class Status:
    """The pipeline's state at one moment, for the view."""

    source: str
    source_seconds: float
    level_db: float
    speaking: bool
    overflows: int
    dropped_blocks: int
    dropped_final: int
    dropped_provisional: int
    pending: int


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _clock(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


def _latency_line(stats: SessionStats) -> str:
    p50, p95, _ = percentiles(stats.latency_ms)
    return (
        f"latency end-of-speech→result p50 {_ms(p50)} ms, p95 {_ms(p95)} ms, max {_ms(stats.max_latency_ms if stats.utterances else math.nan)} ms"
        f" | features {_ms(percentiles(stats.feature_ms)[0])} ms, inference {_ms(percentiles(stats.inference_ms)[0])} ms"
    )


def summary_text(stats: SessionStats, status: Status, files_failed: int, elapsed: float) -> str:
    """The end-of-session summary, plain text."""
    lines = [f"session: {stats.utterances} utterances in {elapsed:.1f} s wall" + (f", {stats.failed} failed" if stats.failed else "")]
    spoken = {k: v for k, v in stats.seconds_per_emotion.items() if v > 0}
    if spoken:
        lines.append("time per emotion: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(spoken.items(), key=lambda kv: -kv[1])))
    lines.append(_latency_line(stats))
    lines.append(
        f"input overflows {status.overflows}, dropped blocks {status.dropped_blocks}, "
        f"dropped utterances {status.dropped_final}" + (f", files failed {files_failed}" if files_failed else "")
    )
    return "\n".join(lines)


class LineView:
    """One plain line per final utterance (stdout not a terminal)."""

    def __init__(self, stats: SessionStats, out: TextIO | None = None) -> None:
        self.stats = stats
        self.out = out or sys.stdout

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def speech(self, speaking: bool) -> None:
        pass

    def result(self, r: Result) -> None:
        if not r.job.final:
            return
        if r.probs is None:
            self.out.write(f"{r.job.source}\t{r.job.start_s:7.2f}-{r.job.end_s:7.2f} s\tFAILED\t{r.error}\n")
        else:
            best = int(r.probs.argmax())
            self.out.write(
                f"{r.job.source}\t{r.job.start_s:7.2f}-{r.job.end_s:7.2f} s\t{self.stats.labels[best]}\t"
                f"{r.probs[best]:.2f}\t{r.latency_ms:.1f} ms\n"
            )
        self.out.flush()

    def tick(self, status: Status) -> None:
        pass


class JsonView(LineView):
    """One JSON object per final utterance, for piping into other tools."""

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
                probs={label: round(float(p), 4) for label, p in zip(self.stats.labels, r.probs)},
            )
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()


class LiveView:
    """The terminal view: current emotion, probability bars, history, level, latency, counters."""

    def __init__(self, stats: SessionStats, console: Console | None = None, history: int = 8, fps: float = 10.0) -> None:
        self.stats = stats
        self.console = console or Console()
        self.history: collections.deque[Result] = collections.deque(maxlen=history)
        self.current: Result | None = None
        self.status: Status | None = None
        self.speaking = False
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._period = 1.0 / fps
        self._last_draw = 0.0
        self._dirty = True

    def start(self) -> None:
        self._live.start()
        self._draw()

    def stop(self) -> None:
        self._draw()
        self._live.stop()

    def speech(self, speaking: bool) -> None:
        self.speaking = speaking
        self._dirty = True

    def result(self, r: Result) -> None:
        if r.probs is not None:
            self.current = r
        if r.job.final:
            self.history.appendleft(r)
        self._dirty = True

    def tick(self, status: Status) -> None:
        """Redraw at most ``fps`` times a second, and only when something changed."""
        changed = self.status is None or (status.level_db, status.speaking, int(status.source_seconds * 4)) != (
            self.status.level_db,
            self.status.speaking,
            int(self.status.source_seconds * 4),
        )
        self.status = status
        now = time.monotonic()
        if (changed or self._dirty) and now - self._last_draw >= self._period:
            self._draw()

    def _draw(self) -> None:
        self._live.update(self._render(), refresh=True)
        self._last_draw = time.monotonic()
        self._dirty = False

    def _render(self) -> Panel:
        labels = self.stats.labels
        st = self.status
        head = Text()
        if self.current is None:
            head.append("  listening…  ", style="bold")
        else:
            r = self.current
            best = int(r.probs.argmax())
            label = labels[best]
            style = f"bold black on {COLOURS.get(label, 'white')}"
            head.append(f"  {label.upper()}  ", style=style)
            head.append(f"  {r.probs[best]:.0%}", style="bold")
            if not r.job.final:
                head.append("  (provisional)", style="dim italic")
        if self.stats.mood_label:
            head.append(f"     mood: {self.stats.mood_label}", style=COLOURS.get(self.stats.mood_label, "white"))

        bars = Table.grid(padding=(0, 1))
        probs = self.current.probs if self.current is not None else None
        for i, label in enumerate(labels):
            p = float(probs[i]) if probs is not None else 0.0
            bars.add_row(Text(f"{label:>9}"), Text("█" * int(round(p * 30)) or "·", style=COLOURS.get(label, "white")), Text(f"{p:4.0%}"))

        level = st.level_db if st else -120.0
        cells = int(max(0.0, min(1.0, (level + 70.0) / 70.0)) * 20)
        state = Text()
        state.append("● speaking" if self.speaking else "○ silent", style="bold green" if self.speaking else "dim")
        state.append("   level ")
        state.append("▮" * cells, style="green" if level < -12 else "red")
        state.append("▯" * (20 - cells), style="dim")
        state.append(f" {max(level, -99):.0f} dBFS")

        hist = Table(box=None, show_header=True, header_style="dim", padding=(0, 1))
        for col in ("time", "span (s)", "emotion", "conf", "latency"):
            hist.add_column(col)
        for r in self.history:
            when = datetime.fromtimestamp(r.wall_time).strftime("%H:%M:%S")
            span = f"{r.job.start_s:6.1f}–{r.job.end_s:6.1f}"
            if r.probs is None:
                hist.add_row(when, span, Text("failed", style="red"), "", "")
                continue
            best = int(r.probs.argmax())
            hist.add_row(when, span, Text(labels[best], style=COLOURS.get(labels[best], "white")), f"{r.probs[best]:.2f}", f"{r.latency_ms:.0f} ms")

        foot = Text(_latency_line(self.stats), style="dim")
        counters = Text(style="dim")
        if st:
            counters.append(
                f"utterances {self.stats.utterances}  overflows {st.overflows}  dropped blocks {st.dropped_blocks}  "
                f"dropped utterances {st.dropped_final}  queue {st.pending}"
            )
            if st.dropped_final:
                counters.append("   worker is falling behind!", style="bold red")
        title = f"ser-live — {st.source if st else ''} — {_clock(st.source_seconds if st else 0.0)}"
        return Panel(Group(head, Text(), bars, Text(), state, Text(), hist, Text(), foot, counters), title=title, title_align="left")
