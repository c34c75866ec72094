"""Recordings as people have them: AAC in M4A/MP4 (phones), Opus in WebM (video calls), MP3, all encoded
here from a real corpus clip with PyAV's encoders; decoder chatter kept off stderr; truncated files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import join_with_pauses, real_clips, run_cli as run
from ser_live.replay import expand_paths, open_audio

#: name, codec, rate of the encoded file, frames per codec frame (the decoded length may differ by one)
FORMATS = [("m4a", "aac", 16000, 1024), ("mp4", "aac", 44100, 1024), ("webm", "libopus", 48000, 960),
           ("mp3", "libmp3lame", 16000, 1152)]
MAIN = "from ser_live import cli; cli.main()"  # as the ser-live script runs it


def encode(path: Path, x: np.ndarray, rate: int, codec: str, out_rate: int) -> Path:
    """Mono float ``x`` at ``rate`` written to ``path`` with PyAV's encoder ``codec`` at ``out_rate``."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=out_rate, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=out_rate,
                                      frame_size=stream.codec_context.frame_size or None)
        frame = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)  # timed: the encoder delay is recorded
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def source():
    x, rate = sf.read(real_clips(1, 0)[0], dtype="float32")
    return x, rate


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """Three real clips joined by pauses, and each clip's span (s)."""
    return join_with_pauses(real_clips(2, 1), seed=5)


@pytest.mark.parametrize("suffix, codec, out_rate, frame", FORMATS)
def test_decoded_audio_matches_the_source(source, tmp_path, suffix, codec, out_rate, frame):
    import soxr

    x, rate = source
    path = encode(tmp_path / f"clip.{suffix}", x, rate, codec, out_rate)
    with open_audio(path) as audio:
        assert audio.samplerate == out_rate
        y = np.concatenate(list(audio.blocks(16384)))
    assert y.shape[1] == 1 and y.dtype == np.float32
    assert abs(len(y) - len(x) * out_rate / rate) <= frame  # the encoder's delay is removed, its padding is within a frame
    y = soxr.resample(y[:, 0], out_rate, rate) if out_rate != rate else y[:, 0]
    n = min(len(x), len(y))
    assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.98  # aligned: no offset left by the decoder


@pytest.mark.parametrize("suffix, codec, out_rate", [f[:3] for f in FORMATS])
def test_replay_finds_the_utterances(stream, tmp_path, suffix, codec, out_rate, capsys):
    x, spans = stream
    path = encode(tmp_path / f"talk.{suffix}", x, 16000, codec, out_rate)
    code, out, err = run(["--file", str(path), "--speed", "0", "--plain"], capsys)
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split("\t") == ["source", "start_s", "end_s", "emotion", "confidence", "latency_ms"]
    found = [(float(f[1]), float(f[2])) for f in (line.split("\t") for line in lines)]
    assert all(line.startswith(f"{path}\t") for line in lines)
    assert len(found) == len(spans)
    assert all(s < e_found and s_found < e for (s, e), (s_found, e_found) in zip(spans, found))


def test_folders_yield_the_container_formats(tmp_path):
    for name in ("a.m4a", "b.MP4", "c.webm", "d.mp3", "e.txt"):
        (tmp_path / name).write_bytes(b"")
    files, missing = expand_paths([str(tmp_path)])
    assert [f.name for f in files] == ["a.m4a", "b.MP4", "c.webm", "d.mp3"] and not missing


def test_a_broken_container_is_one_line_and_skipped(tmp_path, capsys):
    bad = tmp_path / "call.m4a"
    bad.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"garbage" * 50)
    code, out, err = run(["--file", str(bad), "--speed", "0", "--plain"], capsys)
    lines = [line for line in err.splitlines() if line.startswith("ser-live: ")]
    assert code == 1 and "Traceback" not in err
    assert [line for line in lines if "call.m4a" in line] == [f"ser-live: {bad}: " + lines[-1].split(": ", 2)[2]]
    assert "not a readable audio file" in err


def _mp3_16k(stream, tmp_path) -> Path:
    return encode(tmp_path / "voice.mp3", stream[0], 16000, "libmp3lame", 16000)


def test_a_16k_mp3_makes_libsndfile_chatter(stream, tmp_path):
    """The premise of the next tests: reading such a file in blocks, as replay does, prints libmpg123's errors."""
    path = _mp3_16k(stream, tmp_path)
    read = f"import soundfile\nf = soundfile.SoundFile({str(path)!r})\nwhile f.read(16384).size: pass"
    r = subprocess.run([sys.executable, "-c", read],
                       capture_output=True, text=True, timeout=60)
    assert "error" in r.stderr.lower()


def test_decoder_chatter_stays_off_stderr_with_plain_output(stream, tmp_path):
    path = _mp3_16k(stream, tmp_path)
    r = subprocess.run([sys.executable, "-c", MAIN, "--file", str(path), "--speed", "0", "--plain"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mpg123" not in r.stderr and "error" not in r.stderr.lower()
    assert r.stderr.startswith("ser-live: replaying 1 file") and "session: " in r.stderr


def test_decoder_chatter_stays_off_the_live_view(stream, tmp_path):
    """On a terminal (a pseudo-terminal here) nothing at all reaches stderr."""
    import pty

    path = _mp3_16k(stream, tmp_path)
    leader, follower = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-c", MAIN, "--file", str(path), "--speed", "0"], stdout=follower,
                           stderr=subprocess.PIPE, text=True, timeout=120, env=dict(os.environ, COLUMNS="80", LINES="24"))
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other side is closed: everything has been read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert r.returncode == 0 and r.stderr == ""
    assert b"session: 3 utterances" in shown


def test_a_cut_wav_is_replayed_as_far_as_it_goes_and_counted(stream, tmp_path, capsys):
    x, spans = stream
    full = tmp_path / "full.wav"
    sf.write(full, x, 16000, subtype="PCM_16")
    data = full.read_bytes()
    cut_at = int(spans[1][1] * 16000) * 2 + 44 + 32000  # a second after the second clip: the third is cut off
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:cut_at])
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(cut), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "cut.wav" in line]
    assert len(warnings) == 1 and "header promises" in warnings[0], err
    assert "1 file truncated" in err
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 2 and float(rows[-1]["end_s"]) <= (cut_at - 44) / 32000


def test_an_intact_wav_is_not_called_truncated(stream, tmp_path, capsys):
    x, _ = stream
    sf.write(tmp_path / "full.wav", x, 16000, subtype="PCM_16")
    code, _, err = run(["--file", str(tmp_path / "full.wav"), "--speed", "0", "--plain"], capsys)
    assert code == 0 and "truncated" not in err and "header promises" not in err
