"""Scoring of one unit of a batch job: the files of one speaker, in order, through the live path.

A unit is what ``ser-live --file`` replays as one speaker under its session rule (one file, or a run of
consecutive files of one folder, or all of them); its files go through one :class:`~ser_live.api.Detector`
(the live path's cutter, worker and model), which flushes between the files of a speaker and resets
between speakers, so each file's utterances are those ``ser-live --file ... --speed 0`` logs for it.
:class:`Scorer` is the Ray Data actor around it; :func:`score_unit` runs without Ray.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ser_live.api import Detector, Utterance
from ser_live.replay import READ_FRAMES, InputError, Truncated, mono_blocks, open_audio
from ser_live.segmenter import SegmenterConfig


@dataclass
class FileJob:
    """One file to score: ``key`` (its absolute path), ``source`` (its path as given, the log's
    ``source``), ``folder`` (its folder relative to the source it was found under), size and
    modification time (what says it is unchanged on a rerun)."""

    key: str
    source: str
    folder: str
    size: int
    mtime_ns: int


@dataclass
class FileOutcome:
    """A file's utterances (one entry per utterance in each list, ``probs`` in the model's label order),
    or ``error`` (why it could not be scored; no utterances then). ``truncated``: why decoding stopped
    early, the utterances before that kept (as ser-live keeps them)."""

    job: FileJob
    duration_s: float = 0.0
    start_s: list[float] = field(default_factory=list)
    end_s: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    error: str = ""
    truncated: str = ""

    def add(self, u: Utterance) -> None:
        self.start_s.append(u.start_s)
        self.end_s.append(u.end_s)
        self.latency_ms.append(u.latency_ms)
        self.wall_time.append(time.time())
        self.probs.append(list(u.probabilities.values()))


def score_unit(detector: Detector, jobs: list[FileJob]) -> list[FileOutcome]:
    """Score the files of one speaker in order with ``detector`` (reset first: a new speaker)."""
    detector.reset()
    return [_score_file(detector, job) for job in jobs]


def _score_file(detector: Detector, job: FileJob) -> FileOutcome:
    out = FileOutcome(job)
    try:
        f = open_audio(Path(job.key))
    except InputError as e:
        out.error = str(e)
        return out
    frames = 0
    try:
        with f:
            try:
                for block in mono_blocks(f, READ_FRAMES):
                    frames += block.size
                    _keep(out, detector.feed(block, f.samplerate))
            except Truncated as e:  # what could be decoded is scored, as ser-live does
                out.truncated = str(e) or "the file ends early"
            _keep(out, detector.flush())
            out.duration_s = frames / f.samplerate
    except Exception as e:  # a decoder or model failure: this file is reported, the unit goes on
        detector.reset()
        return FileOutcome(job, error=f"{type(e).__name__}: {e}")
    return out


def _keep(out: FileOutcome, events: list) -> None:
    for e in events:
        if isinstance(e, Utterance):
            out.add(e)


class Scorer:
    """Ray Data's stateful transform: loads the model once per actor, then scores units. A batch holds
    units (column ``files``: each a list of :class:`FileJob` fields); the result holds one row per file,
    its utterances in list columns."""

    def __init__(self, model: str, segmenter: dict) -> None:
        config = SegmenterConfig(**segmenter)
        self.detector = Detector(model, hangover_ms=config.hangover_ms, min_utterance_ms=config.min_utterance_ms,
                                 max_utterance_s=config.max_utterance_s, vad_aggressiveness=config.aggressiveness,
                                 provisional=False)

    def __call__(self, batch):
        import pyarrow as pa

        rows = []
        for unit in batch.column("files").to_pylist():
            for o in score_unit(self.detector, [FileJob(**job) for job in unit]):
                rows.append({**asdict(o.job), "duration_s": o.duration_s, "start_s": o.start_s, "end_s": o.end_s,
                             "latency_ms": o.latency_ms, "wall_time": o.wall_time,
                             "probs": [np.asarray(p, np.float32).tolist() for p in o.probs],
                             "error": o.error, "truncated": o.truncated})
        return pa.Table.from_pylist(rows, schema=outcome_schema())


def outcome_schema():
    """The Arrow schema of :class:`Scorer`'s rows (a function: pyarrow loads only where it is used)."""
    import pyarrow as pa

    floats = pa.list_(pa.float64())
    return pa.schema([("key", pa.string()), ("source", pa.string()), ("folder", pa.string()), ("size", pa.int64()),
                      ("mtime_ns", pa.int64()), ("duration_s", pa.float64()), ("start_s", floats), ("end_s", floats),
                      ("latency_ms", floats), ("wall_time", floats), ("probs", pa.list_(pa.list_(pa.float32()))),
                      ("error", pa.string()), ("truncated", pa.string())])


def outcomes(table) -> list[FileOutcome]:
    """:class:`FileOutcome` of the rows of a :class:`Scorer` result."""
    out = []
    for row in table.to_pylist():
        job = FileJob(row["key"], row["source"], row["folder"], row["size"], row["mtime_ns"])
        out.append(FileOutcome(job, row["duration_s"], row["start_s"], row["end_s"], row["latency_ms"],
                               row["wall_time"], row["probs"], row["error"], row["truncated"]))
    return out
