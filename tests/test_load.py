"""Microphone capture while both cores are saturated by other processes."""

import csv
import re
import subprocess
import sys
import time

import soundfile as sf

from conftest import join_with_pauses, real_clips
from test_capture import _play, _start

BUSY = [sys.executable, "-c", "while True: pass"]


def test_capture_under_full_cpu_load_loses_nothing(vmic_env, tmp_path):
    clips = real_clips(8, 8)
    x, spans = join_with_pauses(clips, seed=21, pause_s=(1.0, 2.0))  # about 60 s of speech and pauses
    stream = tmp_path / "stream.wav"
    sf.write(stream, x, 16000, subtype="PCM_16")
    log = tmp_path / "load.csv"
    hogs = [subprocess.Popen(BUSY) for _ in range(2)]
    try:
        time.sleep(0.5)
        proc = _start(vmic_env, "--duration", f"{x.size / 16000 + 3:.1f}", "--log", str(log))
        _play(vmic_env, stream)
        out, err = proc.communicate(timeout=120)
    finally:
        for h in hogs:
            h.kill()
    assert proc.returncode == 0, err
    rows = list(csv.DictReader(log.open()))
    assert 0.95 * len(spans) <= len(rows) <= 1.15 * len(spans), (len(rows), len(spans))
    counters = re.search(r"input overflows (\d+), dropped blocks (\d+), dropped utterances (\d+)", err)  # the summary
    assert counters and counters.groups() == ("0", "0", "0"), err  # is on stderr: stdout carries data only
