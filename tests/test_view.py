"""The live view's redraw policy: results drawn at once, status redraws rationed."""

import io
import math
import time

import numpy as np
from rich.console import Console

from ser_live.stats import SessionStats
from ser_live.events import Job, Result, Status
from ser_live.view import LiveView

LABELS = ["neutral", "happy", "sad", "angry"]


def _view(fps: float = 30.0, status_fps: float = 2.0) -> tuple[LiveView, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=40)
    return LiveView(SessionStats(LABELS), console, fps=fps, status_fps=status_fps), out


def _status(level_db: float = -30.0) -> Status:
    return Status("mic", 12.0, level_db, True, 0, 0, 0, 0, 0, 0)


def _result(label: int, final: bool = True) -> Result:
    probs = np.full(len(LABELS), 0.1, np.float32)
    probs[label] = 0.7
    now = time.monotonic()
    return Result(Job("mic", 1.0, 2.0, np.zeros(1, np.float32), final, now), probs, ready=now, wall_time=time.time())


def test_result_is_drawn_at_once_even_right_after_a_status_redraw():
    view, out = _view()
    view.start()
    time.sleep(0.6)
    assert view.tick(_status(-30.0)) == math.inf  # the level changed: a status redraw, now
    drawn = out.tell()
    view.result(_result(3))
    assert view.tick(_status(-30.0)) == math.inf
    assert out.tell() > drawn and "ANGRY" in out.getvalue()[drawn:]


def test_results_faster_than_fps_wait_and_say_how_long():
    view, out = _view(fps=10.0)
    view.start()
    view.result(_result(1))
    view.tick(_status())
    drawn = out.tell()
    view.result(_result(2))
    wait = view.tick(_status())
    assert 0.0 < wait <= 0.1 and out.tell() == drawn  # not drawn yet: the caller is told when to come back
    time.sleep(wait)
    assert view.tick(_status()) == math.inf and "SAD" in out.getvalue()[drawn:]


def test_unchanged_status_is_not_redrawn():
    view, out = _view(status_fps=100.0)
    view.start()
    view.tick(_status(-30.0))
    time.sleep(0.02)
    view.tick(_status(-30.0))
    drawn = out.tell()
    time.sleep(0.02)
    view.tick(_status(-30.0))
    assert out.tell() == drawn
    view.tick(_status(-5.0))
    assert out.tell() > drawn


def test_summary_says_how_much_the_speaker_normaliser_remembers():
    from ser_live.view import summary_text

    for memory, expected in ((30.0, "running mean of about the last 30 utterances per source"), (None, "running mean per source")):
        stats = SessionStats(LABELS, norm_memory=memory)
        stats.add(_result(1))
        stats.add(Result(_result(2).job, _result(2).probs, ready=time.monotonic(), wall_time=time.time(), adapted=0))
        assert expected in summary_text(stats, _status(), 0, 1.0)


def test_on_draw_reports_each_draw_with_the_results_it_shows():
    draws: list[tuple[float, list[Result]]] = []
    out = io.StringIO()
    view = LiveView(SessionStats(LABELS), Console(file=out, force_terminal=True, width=100, height=40),
                    on_draw=lambda t, shown: draws.append((t, shown)))
    view.start()
    first, second = _result(2), _result(1, final=False)
    view.result(first)
    before = time.monotonic()
    view.tick(_status())
    assert draws[-1][0] >= before and draws[-1][1] == [first, first]  # current and history
    view.tick(_status())
    assert len(draws) == 2  # nothing new: no draw
    time.sleep(0.04)
    view.result(second)
    view.tick(_status())
    assert draws[-1][1][0] is second and draws[-1][1][1:] == [first]  # a provisional result is current, not history


def test_the_view_fits_an_80_by_24_terminal_with_its_legend_and_file_name(default_model):
    """The shipped model's labels, a full history and trouble counters: nothing wider than 80 columns,
    nothing beyond the 24th row."""
    labels = list(default_model.labels)
    stats = SessionStats(labels)
    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=24, record=True)
    view = LiveView(stats, console)
    for i in range(12):
        probs = np.full(len(labels), 0.05, np.float32)
        probs[i % len(labels)] = 0.6
        now = time.monotonic()
        job = Job("/recordings/2026/a rather long folder name/call-with-grandma.m4a", 100.0 + i, 102.5 + i,
                  np.zeros(1, np.float32), True, now, voiced_in=now - 0.32)
        r = Result(job, probs, ready=now, wall_time=time.time(), adapted=i)
        stats.add(r)
        view.result(r)
    view.status = Status(job.source, 754.0, -23.0, True, 3, 2, 1, 1, 0, 0)
    console.print(view._render())
    lines = console.export_text().splitlines()
    assert lines and max(len(line) for line in lines) <= 80 and len(lines) <= 24, "\n".join(lines)
    text = "\n".join(lines)
    assert "call-with-grandma.m4a" in text and "mood:" in text and "adapted:" in text
    assert "320 ms" in text  # the end of speech to the result
    assert "dropped blocks" in text


def test_developer_counters_appear_only_when_not_zero():
    view, out = _view()
    view.status = _status()
    text = Console(file=io.StringIO(), width=100, record=True)
    text.print(view._render())
    shown = text.export_text()
    assert "overflows" not in shown and "dropped" not in shown and "queue" not in shown
