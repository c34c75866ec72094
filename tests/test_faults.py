"""Faults inside a session: a failing utterance, a log on a full disk, a microphone that goes away."""

import csv
import io
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from ser_live import worker
from ser_live.extractor import Extractor
from ser_live.session_log import SessionLog
from conftest import run_cli as run, join_with_pauses, real_clips


@pytest.fixture(scope="module")
def four_clips(tmp_path_factory):
    x, spans = join_with_pauses(real_clips(2, 2), seed=5)
    path = tmp_path_factory.mktemp("faults") / "four.wav"
    sf.write(path, x, 16000)
    return path


def test_feature_failure_fails_one_utterance_and_the_session_goes_on(four_clips, tmp_path, monkeypatch, capsys):
    real_extract = Extractor.extract
    calls = []

    def flaky(self, audio):
        calls.append(audio.size)
        if len(calls) == 2:
            raise FloatingPointError("simulated failure")
        return real_extract(self, audio)

    monkeypatch.setattr(Extractor, "extract", flaky)
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(four_clips), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert "classification failed (FloatingPointError: simulated failure)" in err
    assert "Traceback" not in err
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 3  # the other three utterances are classified and logged
    assert "3 utterances" in err and "1 failed" in err


def _assert_log_stopped(code: int, out: str, err: str, log, rows_before: int = 0) -> list[dict]:
    """Disk full mid-session: one message, the session and its summary go on, exit 1; the log
    holds complete rows only, the first ones shown."""
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("ser-live: ") and not line.startswith("ser-live: replaying")]
    assert len(lines) == 1 and "No space left on device; logging stopped, the session goes on" in lines[0], err
    assert "Traceback" not in err
    assert "session: 4 utterances" in err  # the in-memory summary still counts all of them
    text = log.read_text()
    assert text.endswith("\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all(None not in r and None not in r.values() for r in rows)  # no half rows
    new = rows[rows_before:]
    shown = [tuple(line.split("\t")[1:3]) for line in out.splitlines()[1:]]  # after the header line
    assert 1 <= len(new) < len(shown) == 4
    assert [(f"{float(r['start_s']):.2f}", f"{float(r['end_s']):.2f}") for r in new] == shown[: len(new)]
    return rows


def test_log_device_full_mid_session(four_clips, tmp_path, monkeypatch, capsys):
    """After the first row the log's descriptor is /dev/full: the kernel answers ENOSPC."""
    real_write = SessionLog.write

    def write_then_fill(self, result):
        real_write(self, result)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, self._fd)
        os.close(full)

    monkeypatch.setattr(SessionLog, "write", write_then_fill)
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(four_clips), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert len(_assert_log_stopped(code, out, err, log)) == 1


def _mount_refused() -> str | None:
    """Why a private tmpfs cannot be mounted here (None: it can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) not installed"
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True, text=True)
    return (probe.stderr.strip() or f"exit status {probe.returncode}") if probe.returncode else None


def test_log_on_a_tmpfs_that_fills_up_mid_session(four_clips, tmp_path, default_model):
    """A real full disk: a 4 KiB tmpfs (in a private mount namespace, gone when the run ends)
    holding an existing log with room for one or two more rows; the row that does not fit is
    cut off again, so the log ends with a complete row."""
    reason = _mount_refused()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"tmpfs mount required in CI: {reason}")
        pytest.skip(f"cannot mount a tmpfs here: {reason}")
    prefill = tmp_path / "prefill.csv"
    log = SessionLog(prefill, default_model.labels)
    probs = np.full(len(default_model.labels), 1 / len(default_model.labels), np.float32)
    job = worker.Job(str(four_clips), 1.0, 2.5, np.zeros(1, np.float32), True, 0.0)
    header = prefill.stat().st_size
    log.write(worker.Result(job, probs, ready=0.0123, wall_time=time.time()))
    row = prefill.stat().st_size - header  # about the length of the rows the session writes
    while prefill.stat().st_size + 2.5 * row < 4096:  # leaves room for more than 1.5 rows, at most 2.5
        log.write(worker.Result(job, probs, ready=0.0123, wall_time=time.time()))
    log.close()
    rows_before = len(list(csv.DictReader(prefill.open())))
    mnt, result = tmp_path / "mnt", tmp_path / "result.csv"
    mnt.mkdir()
    script = ('mount -t tmpfs -o size=4k tmpfs "$1" && cp "$2" "$1/out.csv" || exit 90\n'
              '"$3" -c "from ser_live.cli import main; main()" --file "$4" --speed 0 --plain --log "$1/out.csv"\n'
              'code=$?; cp "$1/out.csv" "$5"; exit $code\n')
    p = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(mnt), str(prefill), sys.executable, str(four_clips), str(result)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 90, p.stderr
    rows = _assert_log_stopped(p.returncode, p.stdout, p.stderr, result, rows_before)
    assert result.read_bytes().startswith(prefill.read_bytes()) and len(rows) > rows_before


def test_microphone_going_away_ends_the_session_with_a_clear_message(vmic_env, tmp_path):
    from test_capture import _play, _start

    clip = tmp_path / "clip.wav"
    audio, _ = sf.read(real_clips(0, 1)[0], dtype="float32")
    sf.write(clip, np.concatenate([audio, np.zeros(8000, np.float32)]), 16000, subtype="PCM_16")
    log = tmp_path / "mic.csv"
    proc = _start(vmic_env, "--duration", "30", "--log", str(log))
    time.sleep(0.3)
    _play(vmic_env, clip)
    time.sleep(0.5)
    pid_file = vmic_env["PULSE_RUNTIME_PATH"] + "/pulseaudio.pid"
    subprocess.run(["kill", open(pid_file).read().strip()], check=True)  # the sound server dies
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert "the input device stopped delivering audio; the log is complete up to that point" in err
    assert "Traceback" not in err
    assert len(list(csv.DictReader(log.open()))) == 1  # what was said before is logged
    assert "session: 1 utterances" in err
