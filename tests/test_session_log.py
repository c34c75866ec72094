import csv
import time

import numpy as np
import pytest

from ser_live.session_log import BASE_COLUMNS, LogError, SessionLog
from ser_live.events import Job, Result

LABELS = ["angry", "happy", "neutral"]


def _result(start: float, probs: list[float], source: str = "mic") -> Result:
    job = Job(source, start, start + 1.5, np.zeros(10, np.float32), True, detected=100.0)
    return Result(job, np.array(probs, np.float32), "", 2.0, 0.1, ready=100.0123, wall_time=time.time())


def test_header_once_then_rows_flushed_immediately(tmp_path):
    path = tmp_path / "out.csv"
    log = SessionLog(path, LABELS)
    log.write(_result(0.5, [0.1, 0.7, 0.2], source="a, b.wav"))
    # readable by another process before close: flushed row by row
    rows = list(csv.reader(path.open()))
    assert rows[0] == BASE_COLUMNS + ["p_angry", "p_happy", "p_neutral"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1]))
    assert row["source"] == "a, b.wav"  # quoted correctly
    assert row["emotion"] == "happy" and float(row["confidence"]) == pytest.approx(0.7, abs=1e-4)
    assert float(row["start_s"]) == 0.5 and float(row["end_s"]) == 2.0
    assert float(row["latency_ms"]) == pytest.approx(12.3, abs=0.1)
    assert "T" in row["wall_time"] and "." in row["wall_time"]  # ISO-8601 with milliseconds
    assert [float(row[f"p_{k}"]) for k in LABELS] == pytest.approx([0.1, 0.7, 0.2], abs=1e-4)
    log.close()


def test_append_to_same_columns_continues(tmp_path):
    path = tmp_path / "out.csv"
    first = SessionLog(path, LABELS)
    first.write(_result(0.0, [1, 0, 0]))
    first.close()
    second = SessionLog(path, LABELS)
    second.write(_result(3.0, [0, 0, 1]))
    second.close()
    rows = list(csv.reader(path.open()))
    assert len(rows) == 3 and rows.count(rows[0]) == 1
    assert [r[4] for r in rows[1:]] == ["angry", "neutral"]


def test_other_columns_are_refused_and_file_untouched(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LogError, match="other columns"):
        SessionLog(path, LABELS)
    assert path.read_text() == "a,b,c\n1,2,3\n"
    with pytest.raises(LogError, match="other columns"):
        SessionLog(path, ["angry", "sad"])  # same base, different labels is also "other"


def test_half_written_row_is_refused(tmp_path):
    path = tmp_path / "out.csv"
    log = SessionLog(path, LABELS)
    log.write(_result(0.0, [1, 0, 0]))
    log.close()
    path.write_text(path.read_text() + "mic,1.0,2")
    before = path.read_text()
    with pytest.raises(LogError, match="incomplete or malformed row"):
        SessionLog(path, LABELS)
    assert path.read_text() == before


def test_empty_existing_file_gets_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.touch()
    SessionLog(path, LABELS).close()
    assert path.read_text().splitlines() == [",".join(BASE_COLUMNS + ["p_angry", "p_happy", "p_neutral"])]


def test_missing_folder_and_folder_path_are_clear_errors(tmp_path):
    with pytest.raises(LogError, match="does not exist"):
        SessionLog(tmp_path / "nope" / "out.csv", LABELS)
    with pytest.raises(LogError, match="is a folder"):
        SessionLog(tmp_path, LABELS)
