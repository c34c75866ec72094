"""End of speech -> result ready, and -> drawn in the live view, in a real-time-paced, in-process session.

Measured through what the product offers, not by replacing its methods: every final job carries when
its last voiced frame reached the segmenter (``Job.voiced_in``) and when the segmenter ended it
(``Job.detected``), every result when it was ready (``Result.ready``); the pipeline's observer collects
the results as they are emitted, and the live view's ``on_draw`` hook says when each was first drawn.
"""

from __future__ import annotations

import io
import math
import sys
import time
from pathlib import Path

import soundfile as sf

from benchmarks.common import stats


class _NullTerminal(io.TextIOBase):
    """A terminal that swallows what the live view draws (but counts it)."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)

    def isatty(self) -> bool:
        return True


def bench_latency(model, stream: Path, speed: float) -> dict:
    from rich.console import Console

    from ser_live.events import Event, Result
    from ser_live.segmenter import SegmenterConfig
    from ser_live.session import Options, Session
    from ser_live.view import LiveView

    finals: list[Result] = []

    def observe(event: Event) -> None:  # on the worker's thread: only keep it
        if isinstance(event, Result) and event.job.final:
            finals.append(event)

    draws: list[tuple[float, list[Result]]] = []
    config = SegmenterConfig()
    session = Session(Options(model, [stream], speed=speed, view="live", segmenter=config, observer=observe))
    term = _NullTerminal()
    console = Console(file=term, force_terminal=True, width=110, height=40, color_system="truecolor")
    session.view = LiveView(session.stats, console, on_draw=lambda t, shown: draws.append((t, shown)))
    t0 = time.monotonic()
    saved = sys.stdout
    sys.stdout = io.StringIO()  # the end-of-session summary
    try:
        code = session.run()
    finally:
        sys.stdout = saved
    wall = time.monotonic() - t0

    total, hang, proc, screen, feat, inf = [], [], [], [], [], []
    for r in finals:
        entered = r.job.voiced_in
        if r.job.reason != "silence" or r.probs is None or math.isnan(entered):
            continue
        total.append((r.ready - entered) * 1e3)
        hang.append((r.job.detected - entered) * 1e3)
        proc.append((r.ready - r.job.detected) * 1e3)
        feat.append(r.feature_ms)
        inf.append(r.inference_ms)
        drawn = next((t for t, shown in draws if any(s is r for s in shown)), None)
        if drawn is not None:
            screen.append((drawn - entered) * 1e3)
    return {
        "exit_code": code,
        "speed": speed,
        "hangover_ms": config.hangover_ms,
        "expected_hangover_wait_ms": config.hangover_ms / speed,
        "audio_s": sf.info(str(stream)).duration,
        "wall_s": wall,
        "utterances": len(total),
        "end_to_ready_ms": stats(total),
        "hangover_wait_ms": stats(hang),
        "processing_ms": stats(proc),
        "features_ahead": sum(r.ahead for r in finals),
        "finals": len(finals),
        "features_ms": stats(feat),
        "inference_ms": stats(inf),
        "end_to_screen_ms": stats(screen),
        "draws_per_s": len(draws) / wall,
        "terminal_chars_per_s": term.chars / wall,
    }
