"""The session log: one CSV row per final utterance, written whole and flushed at once."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from realtime.worker import Result

BASE_COLUMNS = ["source", "start_s", "end_s", "wall_time", "emotion", "confidence", "latency_ms"]


class LogError(Exception):
    """The log cannot be written; the message is meant for the user."""


def columns(labels: list[str]) -> list[str]:
    return BASE_COLUMNS + [f"p_{label}" for label in labels]


def _line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


class SessionLog:
    """Opens ``path`` for appending. A new or empty file gets the header; an existing log
    with the same columns is continued; any other file is refused, never overwritten."""

    def __init__(self, path: Path | str, labels: list[str]) -> None:
        self.path = Path(path)
        self.columns = columns(labels)
        self.rows = 0
        if self.path.is_dir():
            raise LogError(f"log path {self.path} is a folder")
        if not self.path.parent.is_dir():
            raise LogError(f"log folder {self.path.parent} does not exist")
        header = self._existing_header()
        try:
            self._file = open(self.path, "a", encoding="utf-8", newline="")
        except OSError as e:
            raise LogError(f"cannot write log {self.path}: {e.strerror}") from None
        if header is None:
            self._write(_line(self.columns))

    def _existing_header(self) -> list[str] | None:
        """The header of an existing log we may continue; LogError for anything else."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise LogError(f"cannot read existing log {self.path}: {e}") from None
        if not text:
            return None
        unchanged = "(it was not changed)"
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error as e:
            raise LogError(f"{self.path} is not a well-formed CSV log ({e}); choose another file {unchanged}") from None
        if rows[0] != self.columns:
            raise LogError(f"{self.path} exists with other columns ({', '.join(rows[0][:9])}...); choose another log file {unchanged}")
        if not text.endswith("\n") or any(len(row) != len(self.columns) for row in rows[1:]):
            # appending after a half-written or malformed row would corrupt the log
            raise LogError(f"{self.path} has an incomplete or malformed row; repair or move it {unchanged}")
        return rows[0]

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as e:
            raise LogError(f"writing log {self.path} failed: {e.strerror or e}") from None

    def write(self, result: Result) -> None:
        """Append one final utterance (flushed before returning)."""
        job, probs = result.job, result.probs
        assert probs is not None
        best = int(probs.argmax())
        labels = self.columns[len(BASE_COLUMNS) :]
        wall = datetime.fromtimestamp(result.wall_time).astimezone().isoformat(timespec="milliseconds")
        values = [
            job.source,
            f"{job.start_s:.3f}",
            f"{job.end_s:.3f}",
            wall,
            labels[best][2:],
            f"{probs[best]:.4f}",
            f"{result.latency_ms:.1f}",
        ] + [f"{p:.4f}" for p in probs]
        self._write(_line(values))
        self.rows += 1

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
