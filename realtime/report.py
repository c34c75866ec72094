"""``ser-report``: ser-live session logs as one self-contained HTML page, and the emotion timeline as a PNG.

The page has no network resources: inline CSS, and charts drawn here as inline SVG. Per source (a
replayed file, an input device) it shows the probability of every label over the session, the time
spent in each emotion (the summed durations of the utterances whose top emotion it is), the
confidence over time and the utterance table. The PNG holds the same timelines, drawn with matplotlib
(the extra ``report``), which only the PNG needs.

Example::

    ser-report session.csv other.csv --out session.html   # also writes session.png
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ser_live.arguments import OneLineParser
from ser_live.session_log import BASE_COLUMNS

PROG = "ser-report"
INSTALL = "pip install 'ser-live[report]'"
#: colours of the usual emotion labels, so that e.g. angry is red on every page; other labels take
#: the fallback colours in the order they are first seen
KNOWN_COLOURS = {
    "angry": "#d62728", "disgust": "#2ca02c", "fearful": "#9467bd", "fear": "#9467bd",
    "happy": "#f0a30a", "neutral": "#7f7f7f", "sad": "#1f77b4", "surprised": "#e377c2",
    "surprise": "#e377c2", "calm": "#17becf",
}
FALLBACK_COLOURS = ["#8c564b", "#bcbd22", "#ff7f0e", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd"]
#: the PNG draws at most this many sources, one panel each (a folder of clips can have hundreds;
#: the page shows them all)
PNG_MAX_SOURCES = 20


class ReportError(Exception):
    """A log cannot be read or the report cannot be written; the message is meant for the user."""


@dataclass(frozen=True)
class Utterance:
    """One row of a session log."""

    source: str
    start_s: float
    end_s: float
    wall_time: str
    emotion: str
    confidence: float
    probs: tuple[float, ...]  # in the order of the log's labels


@dataclass(frozen=True)
class Log:
    """A session log: ``name`` is what the page calls it (its path), ``labels`` the model's labels."""

    name: str
    labels: tuple[str, ...]
    utterances: tuple[Utterance, ...]


@dataclass(frozen=True)
class Section:
    """The utterances of one source in one session: the rows of a log from one source, until another
    source or a restart of the times (a continued log) begins another section."""

    log: Log
    source: str
    utterances: tuple[Utterance, ...]


def parse_log(name: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Log:
    """A log from its header and rows as the CSV holds them (strings, in column order): a session log, or
    ser-batch's utterances.csv (the same columns plus ``folder`` after ``source``, left out here)."""
    if len(header) > 1 and header[1] == "folder":
        header = [header[0], *header[2:]]
        rows = ([row[0], *row[2:]] for row in rows)
    labels = tuple(column[2:] for column in header[len(BASE_COLUMNS) :])
    if (list(header[: len(BASE_COLUMNS)]) != BASE_COLUMNS or not labels
            or any(not c.startswith("p_") or not c[2:] for c in header[len(BASE_COLUMNS) :])):
        shown = ",".join(header[:8])[:80]
        raise ReportError(f"{name}: not a ser-live log (its header is {shown!r}, expected {','.join(BASE_COLUMNS)},p_<label>...)")
    utterances = []
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ReportError(f"{name}: line {line} has {len(row)} fields, the header {len(header)}")
        try:
            start, end, confidence, *probs = (float(row[i]) for i in (1, 2, 5, *range(len(BASE_COLUMNS), len(row))))
        except ValueError as e:
            raise ReportError(f"{name}: line {line}: {e}") from None
        if not all(map(math.isfinite, (start, end, confidence, *probs))) or end < start:
            raise ReportError(f"{name}: line {line}: times or probabilities out of range")
        if row[4] not in labels:
            raise ReportError(f"{name}: line {line}: emotion {row[4]!r} is not one of the log's labels")
        utterances.append(Utterance(row[0], start, end, row[3], row[4], confidence, tuple(probs)))
    if not utterances:
        raise ReportError(f"{name}: the log has no utterances")
    return Log(name, labels, tuple(utterances))


def read_log(path: str | os.PathLike, name: str | None = None) -> Log:
    """Read a ser-live CSV log; ReportError, with a one-line message, for anything else. ``name`` is what
    the page and the messages call the log (default: its path)."""
    name = str(path) if name is None else name
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device could block or never end
            raise ReportError(f"{name}: not a regular file")
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ReportError(f"{name}: no such file") from None
    except UnicodeDecodeError:
        raise ReportError(f"{name}: not a ser-live log (not UTF-8 text)") from None
    except OSError as e:
        raise ReportError(f"{name}: cannot read it: {e.strerror or e}") from None
    if not text.strip():
        raise ReportError(f"{name}: the file is empty")
    try:
        header, *rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    except csv.Error as e:
        raise ReportError(f"{name}: not a ser-live log (not well-formed CSV: {e})") from None
    return parse_log(name, header, rows)


def sections(log: Log) -> list[Section]:
    """Split ``log`` into its sources' sessions, in the log's order."""
    out: list[list[Utterance]] = []
    for u in log.utterances:
        if not out or u.source != out[-1][-1].source or u.start_s < out[-1][-1].start_s:
            out.append([])
        out[-1].append(u)
    return [Section(log, run[0].source, tuple(run)) for run in out]


def time_per_emotion(section: Section) -> dict[str, tuple[float, int]]:
    """Seconds and utterances per label of the section's top emotions (every label, 0 when never top)."""
    totals = {label: (0.0, 0) for label in section.log.labels}
    for u in section.utterances:
        seconds, count = totals[u.emotion]
        totals[u.emotion] = (seconds + u.end_s - u.start_s, count + 1)
    return totals


def label_colours(logs: Iterable[Log]) -> dict[str, str]:
    """One colour per label over all ``logs``: the same label has the same colour everywhere."""
    colours: dict[str, str] = {}
    spare = iter(c for c in FALLBACK_COLOURS if c not in KNOWN_COLOURS.values())
    for log in logs:
        for label in log.labels:
            if label not in colours:
                colours[label] = KNOWN_COLOURS.get(label.lower()) or next(spare, "#444444")
    return colours


# ---- the HTML page -------------------------------------------------------------------------------

CHART_W, PLOT_H = 960, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 12, 40
CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 24px auto;
       max-width: 1000px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 2px; padding-top: 12px; border-top: 2px solid #ddd; word-break: break-all; }
h3 { font-size: 14px; margin: 18px 0 6px; color: #444; }
.meta { color: #666; margin: 0 0 8px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: #444; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 4px 0 0 52px; }
.legend span, .swatch { display: inline-flex; align-items: center; gap: 6px; }
.legend i, .swatch i { display: inline-block; width: 14px; height: 14px; border-radius: 3px; }
.split { display: flex; flex-wrap: wrap; gap: 12px 32px; align-items: flex-start; }
.split svg { width: 460px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; }
.scroll { max-height: 420px; overflow-y: auto; display: inline-block; border: 1px solid #e4e4e4; }
nav { display: flex; flex-wrap: wrap; gap: 2px 14px; }
nav a { word-break: break-all; }
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ticks(hi: float, target: int = 8) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) from 0 to at most ``hi``."""
    raw = hi / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(hi / step + 1e-9) + 1)]


class _Plot:
    """The coordinates of a chart: x in seconds from 0 to ``x_max``, y from 0 to 1."""

    def __init__(self, x_max: float) -> None:
        self.x_max = max(x_max, 1.0)
        self.w = CHART_W - LEFT - RIGHT

    def x(self, seconds: float) -> float:
        return round(LEFT + seconds / self.x_max * self.w, 2)

    def y(self, value: float) -> float:
        return round(TOP + (1 - value) * PLOT_H, 2)

    def frame(self, utterances: Sequence[Utterance], y_title: str) -> list[str]:
        """Grid, axes, tick labels and a light band behind each utterance."""
        parts = [f'<rect x="{self.x(u.start_s)}" y="{TOP}" width="{max(self.x(u.end_s) - self.x(u.start_s), 0.5):.2f}" '
                 f'height="{PLOT_H}" fill="#eef1f5"/>' for u in utterances]
        for v in (0, 0.25, 0.5, 0.75, 1):
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + self.w}" y1="{self.y(v)}" y2="{self.y(v)}" stroke="#d0d0d0"/>'
                         f'<text x="{LEFT - 6}" y="{self.y(v) + 4}" text-anchor="end">{v:g}</text>')
        for t in _ticks(self.x_max):
            parts.append(f'<line x1="{self.x(t)}" x2="{self.x(t)}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H + 5}" stroke="#888"/>'
                         f'<text x="{self.x(t)}" y="{TOP + PLOT_H + 18}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + self.w}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}" stroke="#888"/>'
                     f'<text x="{LEFT + self.w / 2}" y="{TOP + PLOT_H + 36}" text-anchor="middle">seconds from the start of the source</text>'
                     f'<text transform="translate(14 {TOP + PLOT_H / 2}) rotate(-90)" text-anchor="middle">{_esc(y_title)}</text>')
        return parts

    def svg(self, parts: list[str], title: str) -> str:
        return (f'<svg viewBox="0 0 {CHART_W} {TOP + PLOT_H + BOTTOM}" role="img" aria-label="{_esc(title)}">'
                f'<title>{_esc(title)}</title>{"".join(parts)}</svg>')


def _steps(points: Iterable[tuple[float, float, float]], plot: _Plot) -> str:
    """An SVG path that holds each value over its utterance (start, end, value) and joins the next."""
    return "M" + " L".join(f"{plot.x(s)} {plot.y(v)} {plot.x(e)} {plot.y(v)}" for s, e, v in points)


def _timeline_svg(section: Section, colours: dict[str, str]) -> str:
    plot = _Plot(max(u.end_s for u in section.utterances))
    parts = plot.frame(section.utterances, "probability")
    for i, label in enumerate(section.log.labels):
        path = _steps(((u.start_s, u.end_s, u.probs[i]) for u in section.utterances), plot)
        parts.append(f'<path d="{path}" fill="none" stroke="{colours[label]}" stroke-width="2" '
                     f'stroke-linejoin="round"><title>{_esc(label)}</title></path>')
    return plot.svg(parts, f"probability of each emotion over time: {section.source}")


def _confidence_svg(section: Section, colours: dict[str, str]) -> str:
    """The confidence as a thin line, each utterance's stretch in the colour of its emotion."""
    plot = _Plot(max(u.end_s for u in section.utterances))
    parts = plot.frame(section.utterances, "confidence")
    parts.append(f'<path d="{_steps(((u.start_s, u.end_s, u.confidence) for u in section.utterances), plot)}" '
                 f'fill="none" stroke="#9a9a9a" stroke-width="1"/>')
    for u in section.utterances:
        parts.append(f'<line x1="{plot.x(u.start_s)}" x2="{plot.x(u.end_s)}" y1="{plot.y(u.confidence)}" '
                     f'y2="{plot.y(u.confidence)}" stroke="{colours[u.emotion]}" stroke-width="4" stroke-linecap="round">'
                     f'<title>{_esc(u.emotion)} {u.confidence:.4f}</title></line>')
    return plot.svg(parts, f"confidence over time: {section.source}")


def _time_bars_svg(totals: dict[str, tuple[float, int]], colours: dict[str, str]) -> str:
    bar_h, gap, label_w, width = 20, 8, 90, 460
    longest = max(max(seconds for seconds, _ in totals.values()), 1e-9)
    parts = []
    for row, (label, (seconds, _)) in enumerate(totals.items()):
        y = row * (bar_h + gap) + 4
        length = seconds / longest * (width - label_w - 70)
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{length:.2f}" height="{bar_h}" rx="2" fill="{colours[label]}"/>'
                     f'<text x="{label_w + length + 6:.2f}" y="{y + 14}">{seconds:.2f} s</text>')
    height = len(totals) * (bar_h + gap) + 4
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="time per emotion">'
            f'<title>time per emotion</title>{"".join(parts)}</svg>')


def _legend(labels: Iterable[str], colours: dict[str, str]) -> str:
    items = "".join(f'<span><i style="background:{colours[label]}"></i>{_esc(label)}</span>' for label in labels)
    return f'<div class="legend">{items}</div>'


def _section_html(number: int, section: Section, colours: dict[str, str]) -> str:
    us = section.utterances
    totals = time_per_emotion(section)
    speech = sum(seconds for seconds, _ in totals.values())
    time_rows = "".join(
        f'<tr data-emotion="{_esc(label)}"><td class="text"><span class="swatch"><i style="background:{colours[label]}"></i>{_esc(label)}</span></td>'
        f'<td class="seconds">{seconds:.2f}</td><td>{(100 * seconds / speech if speech else 0):.1f}%</td><td>{count}</td></tr>'
        for label, (seconds, count) in totals.items())
    utterance_rows = "".join(
        f'<tr><td>{i}</td><td>{u.start_s:.3f}</td><td>{u.end_s:.3f}</td>'
        f'<td class="text"><span class="swatch"><i style="background:{colours[u.emotion]}"></i>{_esc(u.emotion)}</span></td>'
        f'<td>{u.confidence:.4f}</td></tr>' for i, u in enumerate(us, start=1))
    period = us[0].wall_time if us[0].wall_time == us[-1].wall_time else f"{us[0].wall_time} to {us[-1].wall_time}"
    return f"""<section id="s{number}">
<h2>{_esc(section.source)}</h2>
<p class="meta">{len(us)} utterances, {speech:.2f} s of speech over {us[-1].end_s:.1f} s; {_esc(period)}; log {_esc(section.log.name)}</p>
<h3>Emotion probabilities over time</h3>
{_timeline_svg(section, colours)}
{_legend(section.log.labels, colours)}
<h3>Time in each emotion (summed durations of the utterances whose top emotion it is)</h3>
<div class="split">{_time_bars_svg(totals, colours)}
<table class="time-per-emotion"><thead><tr><th class="text">emotion</th><th>seconds</th><th>share</th><th>utterances</th></tr></thead>
<tbody>{time_rows}</tbody></table></div>
<h3>Confidence over time (coloured by the top emotion)</h3>
{_confidence_svg(section, colours)}
<h3>Utterances</h3>
<div class="scroll"><table class="utterances"><thead><tr><th>#</th><th>start (s)</th><th>end (s)</th><th class="text">emotion</th><th>confidence</th></tr></thead>
<tbody>{utterance_rows}</tbody></table></div>
</section>
"""


def render_html(logs: Sequence[Log]) -> str:
    """The whole page for ``logs``: one section per source and session, in the logs' order."""
    colours = label_colours(logs)
    parts = [s for log in logs for s in sections(log)]
    nav = ""
    if len(parts) > 1:
        nav = "<nav>" + "".join(f'<a href="#s{i}">{_esc(s.source)}</a>' for i, s in enumerate(parts, start=1)) + "</nav>"
    names = ", ".join(_esc(log.name) for log in logs)
    body = "".join(_section_html(i, s, colours) for i, s in enumerate(parts, start=1))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>ser-live session report</title>
<style>{CSS}</style>
</head>
<body>
<h1>ser-live session report</h1>
<p class="meta">{sum(len(log.utterances) for log in logs)} utterances from {len(parts)} source session(s); logs: {names}</p>
{nav}
{body}</body>
</html>
"""


# ---- the PNG -------------------------------------------------------------------------------------

def _has_matplotlib() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ImportError:
        return False


def _require_matplotlib() -> None:
    found = _has_matplotlib()
    if not found:
        raise ReportError(f"the PNG needs matplotlib, which is not installed; install it with: {INSTALL}")


def render_png(logs: Sequence[Log]) -> bytes:
    """The timelines of the page, one panel per source session (at most PNG_MAX_SOURCES), as a PNG."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    colours = label_colours(logs)
    parts = [s for log in logs for s in sections(log)]
    shown = parts[:PNG_MAX_SOURCES]
    fig = Figure(figsize=(12, 1.1 + 2.3 * len(shown)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, section in zip(axes, shown):
        for u in section.utterances:
            ax.axvspan(u.start_s, u.end_s, color="#eef1f5", lw=0)
        times = [t for u in section.utterances for t in (u.start_s, u.end_s)]
        for i, label in enumerate(section.log.labels):
            ax.plot(times, [u.probs[i] for u in section.utterances for _ in (0, 1)], color=colours[label], lw=1.8)
        ax.set_xlim(0, max(times[-1], 1.0))
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("probability")
        ax.grid(axis="y", color="#dddddd")
        ax.set_title(section.source, loc="left", fontsize=10)
    axes[-1].set_xlabel("seconds from the start of the source")
    title = "ser-live: probability of each emotion over time"
    if len(parts) > len(shown):
        title += f" (the first {len(shown)} of {len(parts)} sources; the HTML page shows all)"
    fig.suptitle(title, fontsize=12)
    fig.legend([Line2D([], [], color=c, lw=3) for c in colours.values()], list(colours), loc="outside lower center",
               ncol=min(len(colours), 8), frameon=False)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


# ---- the public entry point and the command ------------------------------------------------------

def png_beside(html_path: str | os.PathLike) -> Path | None:
    """The PNG written when none is named: the page's name with ``.png``; None without matplotlib."""
    return Path(html_path).with_suffix(".png") if _has_matplotlib() else None


def check_outputs(logs: Iterable[Log | str | os.PathLike], html_path: str | os.PathLike,
                  png_path: str | os.PathLike | None = None, audio: Iterable[str | os.PathLike] = ()) -> None:
    """ReportError, before any log is read, when the two outputs are one file, or an output is one of ``logs`` or of
    the ``audio`` files the session replays, a folder, in a folder that does not exist, or cannot be opened for
    writing (a file created to find that out is removed again)."""
    inputs = {Path(p).resolve() for p in logs if not isinstance(p, Log)}
    recordings = {Path(p).resolve() for p in audio}
    if png_path is not None and Path(png_path).resolve() == Path(html_path).resolve():
        raise ReportError(f"{html_path} would be both the page and the PNG; give the page an .html name")
    for out in (html_path, png_path):
        if out is None:
            continue
        if Path(out).resolve() in inputs:
            raise ReportError(f"{out} is one of the logs; choose another output file")
        if Path(out).resolve() in recordings:
            raise ReportError(f"{out} is one of the audio files to replay; choose another output file")
        if Path(out).is_dir():
            raise ReportError(f"cannot write {out}: it is a folder")
        if not Path(out).parent.is_dir():
            raise ReportError(f"cannot write {out}: folder {Path(out).parent} does not exist")
        existed = os.path.lexists(out)
        try:  # O_NONBLOCK: a FIFO without a reader fails here instead of waiting
            os.close(os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666))
        except OSError as e:
            raise ReportError(f"cannot write {out}: {e.strerror or e}") from None
        if not existed:
            Path(out).unlink(missing_ok=True)


def write_and_tell(logs: Sequence[Log | str | os.PathLike], html_path: str | os.PathLike,
                   png_path: str | os.PathLike | None, prog: str = PROG, tell=None) -> int:
    """:func:`write_report` with ``prog``'s messages: problems on stderr, one line each, and what was written
    on ``tell`` (default stdout). Without ``png_path`` and without matplotlib, one line says why there is no
    PNG. Returns ser-report's exit status: 0, or 1 when a log was left out or nothing could be written."""
    if png_path is None and not _has_matplotlib():  # the page alone, and say why
        sys.stderr.write(f"{prog}: no PNG timeline: it needs matplotlib ({INSTALL})\n")
    try:
        problems = write_report(logs, html_path, png_path)
    except ReportError as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    for problem in problems:
        sys.stderr.write(f"{prog}: {problem} (left out)\n")
    (tell or sys.stdout).write(f"{prog}: wrote {html_path}" + (f" and {png_path}" if png_path is not None else "") + "\n")
    return 1 if problems else 0


def write_report(logs: Iterable[Log | str | os.PathLike], html_path: str | os.PathLike,
                 png_path: str | os.PathLike | None = None) -> list[str]:
    """Write the report of ``logs`` to ``html_path``, and the timelines to ``png_path`` when given.

    ``logs`` are paths of ser-live CSV logs or :class:`Log` objects (e.g. from :func:`parse_log`, for
    rows held in memory). A log that cannot be read is left out; the return value has one message per
    log left out. Raises ReportError (before reading any log) when ``png_path`` is given and matplotlib,
    which only the PNG needs, is not installed, or :func:`check_outputs` refuses an output; and when no
    log can be read (nothing is written then) or an output cannot be written.
    """
    logs = list(logs)
    check_outputs(logs, html_path, png_path)
    if png_path is not None:
        _require_matplotlib()
    problems, usable = [], []
    for item in logs:
        try:
            usable.append(item if isinstance(item, Log) else read_log(item))
        except ReportError as e:
            problems.append(str(e))
    if not usable:
        raise ReportError("; ".join(problems) or "no log to report")
    page = render_html(usable).encode("utf-8")
    image = render_png(usable) if png_path is not None else None
    try:
        Path(html_path).write_bytes(page)
        if png_path is not None:
            Path(png_path).write_bytes(image)
    except OSError as e:
        raise ReportError(f"cannot write {e.filename or html_path}: {e.strerror or e}") from None
    return problems


def build_parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Render ser-live CSV session logs as a self-contained HTML page "
                                             "(timelines, time per emotion, confidence, utterances) and a PNG timeline.")
    p.add_argument("logs", nargs="+", metavar="LOG.csv", help="ser-live session logs (ser-live --log)")
    p.add_argument("--out", metavar="HTML", help="the page to write (default: the first log with .html)")
    p.add_argument("--png", metavar="PNG", help="the timeline image to write (default: the page with .png)")
    return p


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    html_path = Path(args.out or Path(args.logs[0]).with_suffix(".html"))
    return write_and_tell(args.logs, html_path, Path(args.png) if args.png else png_beside(html_path))


def main(argv: list[str] | None = None) -> None:
    """The ``ser-report`` command: exit status 0, or 1 when a log was left out or nothing could be written."""
    try:
        code = run(argv)
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # last resort: one line, not a traceback
        if os.environ.get("SER_LIVE_DEBUG"):
            raise
        sys.stderr.write(f"{PROG}: unexpected error: {type(e).__name__}: {e} (set SER_LIVE_DEBUG=1 for details)\n")
        code = 1
    sys.exit(code)
