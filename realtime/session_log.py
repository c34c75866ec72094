"""The session log: one CSV row per final utterance, written whole and flushed at once."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
from datetime import datetime
from pathlib import Path

from ser_live.events import Result

BASE_COLUMNS = ["source", "start_s", "end_s", "wall_time", "emotion", "confidence", "latency_ms"]
_KINDS = {stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device", stat.S_ISFIFO: "a FIFO (a pipe)",
          stat.S_ISSOCK: "a socket"}


class LogError(Exception):
    """The log cannot be written; the message is meant for the user."""


def columns(labels: list[str]) -> list[str]:
    return BASE_COLUMNS + [f"p_{label}" for label in labels]


def row_values(source: str, start_s: float, end_s: float, wall_time: float, probs, latency_ms: float,
               labels: list[str]) -> list[str]:
    """One utterance's values in the log's columns and number formats (``wall_time``: seconds since the
    epoch, written in local time with its offset)."""
    best = int(probs.argmax())
    wall = datetime.fromtimestamp(wall_time).astimezone().isoformat(timespec="milliseconds")
    return [source, f"{start_s:.3f}", f"{end_s:.3f}", wall, labels[best], f"{probs[best]:.4f}",
            f"{latency_ms:.1f}"] + [f"{p:.4f}" for p in probs]


def _line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _require_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS.items() if test(mode)), "not a regular file")
        raise LogError(f"log path {path} is {kind}, not a regular file; give the path of a file")


class SessionLog:
    """Opens ``path`` for appending. A new or empty file gets the header; an existing log
    with the same columns is continued; any other file is refused, never overwritten.

    Only regular files: a device or a FIFO is refused before it is read (reading /dev/zero
    never ends, opening a FIFO waits for a writer). A row that cannot be written whole (disk
    full) is cut off again, so the log always ends with a complete row.
    """

    def __init__(self, path: Path | str, labels: list[str]) -> None:
        self.path = Path(path)
        self.columns = columns(labels)
        self.rows = 0
        if self.path.is_dir():
            raise LogError(f"log path {self.path} is a folder")
        if not self.path.parent.is_dir():
            raise LogError(f"log folder {self.path.parent} does not exist")
        try:
            mode = os.stat(self.path).st_mode
        except OSError:  # not there yet (or not reachable: open() below says why)
            mode = stat.S_IFREG
        _require_regular(self.path, mode)
        try:  # O_NONBLOCK: should the path have become a FIFO meanwhile, open() must not wait
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise LogError(f"cannot write log {self.path}: {e.strerror}") from None
        try:
            _require_regular(self.path, os.fstat(self._fd).st_mode)
            if self._existing_header() is None:
                self._write(_line(self.columns))
        except LogError:
            os.close(self._fd)
            raise

    def _existing_header(self) -> list[str] | None:
        """The header of an existing log we may continue; LogError for anything else."""
        try:
            size = os.fstat(self._fd).st_size
            data = b""
            while len(data) < size and (chunk := os.pread(self._fd, size - len(data), len(data))):
                data += chunk
            text = data.decode("utf-8")
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
        """Append ``text`` whole, or not at all: a partial write (disk full) is truncated away."""
        data = text.encode("utf-8")
        size = None
        try:
            size = os.fstat(self._fd).st_size
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as e:
            if size is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, size)
            raise LogError(f"writing log {self.path} failed: {e.strerror or e}") from None

    def write(self, result: Result) -> None:
        """Append one final utterance (in the file, not in a buffer, when this returns)."""
        job, probs = result.job, result.probs
        assert probs is not None
        labels = [c[2:] for c in self.columns[len(BASE_COLUMNS) :]]
        self._write(_line(row_values(job.source, job.start_s, job.end_s, result.wall_time, probs, result.latency_ms,
                                     labels)))
        self.rows += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
