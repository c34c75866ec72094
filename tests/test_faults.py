"""Faults inside a session: a failing utterance, a failing log, a microphone that goes away."""

import csv
import errno
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from realtime import worker
from realtime.session_log import LogError, SessionLog
from conftest import run_cli as run, join_with_pauses, real_clips


@pytest.fixture(scope="module")
def four_clips(tmp_path_factory):
    x, spans = join_with_pauses(real_clips(2, 2), seed=5)
    path = tmp_path_factory.mktemp("faults") / "four.wav"
    sf.write(path, x, 16000)
    return path


def test_feature_failure_fails_one_utterance_and_the_session_goes_on(four_clips, tmp_path, monkeypatch, capsys):
    real_extract = worker.features.extract
    calls = []

    def flaky(audio):
        calls.append(audio.size)
        if len(calls) == 2:
            raise FloatingPointError("simulated failure")
        return real_extract(audio)

    monkeypatch.setattr(worker.features, "extract", flaky)
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(four_clips), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert "classification failed (FloatingPointError: simulated failure)" in err
    assert "Traceback" not in err
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 3  # the other three utterances are classified and logged
    assert "3 utterances" in out and "1 failed" in out


def test_log_failure_mid_session_keeps_the_session_and_summary(four_clips, tmp_path, monkeypatch, capsys):
    real_write = SessionLog._write
    written = []

    def disk_fills(self, text):
        if len(written) == 2:  # header and first row fit, then the disk is full
            raise LogError(f"writing log {self.path} failed: {errno.errorcode[errno.ENOSPC]}")
        written.append(text)
        real_write(self, text)

    monkeypatch.setattr(SessionLog, "_write", disk_fills)
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(four_clips), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert code == 1
    assert err.count("logging stopped, the session goes on") == 1 and "Traceback" not in err
    assert "4 utterances" in out  # the in-memory summary still counts all of them
    assert len(list(csv.DictReader(log.open()))) == 1


def test_write_error_of_the_file_becomes_log_error(tmp_path):
    log = SessionLog(tmp_path / "out.csv", ["a", "b"])

    class Full:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    log._file = Full()
    job = worker.Job("mic", 0.0, 1.0, np.zeros(1, np.float32), True, 0.0)
    with pytest.raises(LogError, match="No space left on device"):
        log.write(worker.Result(job, np.array([0.3, 0.7], np.float32), ready=0.01, wall_time=time.time()))


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
    assert "session: 1 utterances" in out
