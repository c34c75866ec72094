"""The real capture path: sounddevice/PortAudio recording a virtual microphone (tests/vmic/vmic.sh)
while a real clip is played into it, with ser-live running as a user runs it."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import real_clips

SER_LIVE = [sys.executable, "-c", "from ser_live.cli import main; main()"]


def _start(env, *args) -> subprocess.Popen:
    proc = subprocess.Popen(SER_LIVE + ["--plain", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []  # ALSA/PortAudio may print their own lines first
    while not seen or "listening on" not in seen[-1]:  # printed once the input stream is open
        line = proc.stderr.readline()
        assert line, "".join(seen)  # ser-live exited without listening
        seen.append(line)
    return proc


def _play(env, path: Path) -> None:
    """Play a file into the virtual microphone, in real time; returns when it has been played."""
    timeout = sf.info(path).duration + 30
    subprocess.run(["paplay", f"--device={env['VMIC_SINK']}", str(path)], env=env, check=True, timeout=timeout)


def _confident_clip(tmp_path: Path, env) -> tuple[Path, str]:
    """A real clip (with a little silence after it) and the emotion file replay gives it."""
    best = None
    for i, clip in enumerate(real_clips(3, 3)):
        audio, _ = sf.read(clip, dtype="float32")
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, np.concatenate([audio, np.zeros(8000, np.float32)]), 16000, subtype="PCM_16")
        out = subprocess.run(SER_LIVE + ["--file", str(path), "--speed", "0", "--json"], env=env, capture_output=True, text=True, check=True).stdout
        import json

        rows = [json.loads(line) for line in out.splitlines()]
        if len(rows) == 1 and (best is None or rows[0]["confidence"] > best[2]):
            best = (path, rows[0]["emotion"], rows[0]["confidence"])
    assert best is not None
    return best[0], best[1]


def test_microphone_capture_logs_the_played_utterance(vmic_env, tmp_path):
    clip, expected = _confident_clip(tmp_path, vmic_env)
    log = tmp_path / "mic.csv"
    proc = _start(vmic_env, "--duration", "7", "--log", str(log))
    time.sleep(0.5)
    _play(vmic_env, clip)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 1, (out, err)
    row = rows[0]
    assert row["source"] != "" and not row["source"].endswith(".wav")  # the input device's name
    speech = sf.info(clip).duration - 0.5
    assert 0.3 < float(row["start_s"]) < 3.0
    assert float(row["end_s"]) - float(row["start_s"]) <= speech + 0.8
    assert row["emotion"] == expected  # the microphone path agrees with file replay
    assert "input overflows 0" in err  # the summary: stdout carries only data


def test_sigterm_mid_utterance_classifies_and_logs_it(vmic_env, tmp_path):
    clip = real_clips(0, 1)[0]
    audio, _ = sf.read(clip, dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(audio, 3), 16000, subtype="PCM_16")  # about 6 s of continuous speech
    log = tmp_path / "mic.csv"
    proc = _start(vmic_env, "--log", str(log))
    player = subprocess.Popen(["paplay", f"--device={vmic_env['VMIC_SINK']}", str(long)], env=vmic_env)
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=10)
    elapsed = time.monotonic() - t0
    player.kill()
    assert proc.returncode == 0, err
    assert elapsed < 1.5
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 1  # the utterance in progress was classified and logged
    assert float(rows[0]["end_s"]) - float(rows[0]["start_s"]) > 1.0
    assert "session: 1 utterances" in err


def test_microphone_session_stopped_by_ctrl_c_writes_its_report(vmic_env, tmp_path):
    """ser-live --report without --log, from the microphone: Ctrl-C ends the session and the page shows the
    utterance heard, as file replay labels it; the temporary log's folder is removed."""
    clip, expected = _confident_clip(tmp_path, vmic_env)
    scratch, page = tmp_path / "tmp", tmp_path / "mic.html"
    scratch.mkdir()
    proc = _start({**vmic_env, "TMPDIR": str(scratch)}, "--report", str(page))
    time.sleep(0.5)
    _play(vmic_env, clip)
    time.sleep(1.0)  # past the hangover: the utterance is final
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.endswith(f"ser-live: wrote {page} and {page.with_suffix('.png')}\n"), err
    html = page.read_text()
    assert "1 utterances from 1 source session(s); logs: this session (no --log)" in html
    assert out.splitlines()[1].split("\t")[3] == expected
    assert f"</i>{expected}</span></td>" in html  # the utterance table's emotion cell
    assert page.with_suffix(".png").stat().st_size > 0
    assert not list(scratch.glob("ser-live-*"))
