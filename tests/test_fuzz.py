"""Hostile input: fuzzed audio files through replay, fuzzed existing logs through append."""

import csv
import io
import struct
import threading

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser_live import cli
from ser_live.session_log import LogError, SessionLog, columns
from ser_live.events import Job, Result

LABELS = ["angry", "happy", "neutral", "sad"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _wav_bytes(data: np.ndarray, rate: int, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


@st.composite
def hostile_audio(draw) -> bytes:
    rate = draw(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000]))
    channels = draw(st.integers(1, 6))
    frames = draw(st.integers(0, 3 * rate))
    subtype = draw(st.sampled_from(["PCM_16", "PCM_24", "FLOAT", "DOUBLE", "PCM_U8"]))
    kind = draw(st.sampled_from(["noise", "tone", "silence", "extreme"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = np.arange(frames) / rate
    if kind == "noise":
        data = rng.normal(0, 0.3, (frames, channels))
    elif kind == "tone":
        data = np.repeat((0.5 * np.sin(2 * np.pi * 180 * t))[:, None], channels, axis=1)
    elif kind == "silence":
        data = np.zeros((frames, channels))
    else:  # NaN, Inf and out-of-range samples (kept by float formats, clipped by PCM)
        data = rng.choice([np.nan, np.inf, -np.inf, 1e30, -5.0, 0.0], size=(frames, channels))
    raw = bytearray(_wav_bytes(data, rate, subtype))
    mutation = draw(st.sampled_from(["none", "truncate", "huge_sizes", "odd_rate", "flip_bytes", "zero_channels"]))
    if mutation == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == "huge_sizes" and len(raw) >= 44:
        raw[4:8] = struct.pack("<I", 0xFFFFFFF0)  # RIFF size
        raw[40:44] = struct.pack("<I", 0xFFFFFFF0)  # data size far beyond the file
    elif mutation == "odd_rate" and len(raw) >= 32:
        raw[24:28] = struct.pack("<I", draw(st.sampled_from([0, 1, 7, 999, 1_000_000, 0xFFFFFFFF])))
    elif mutation == "flip_bytes":
        for _ in range(draw(st.integers(1, 20))):
            i = draw(st.integers(0, max(len(raw) - 1, 0)))
            if raw:
                raw[i] = draw(st.integers(0, 255))
    elif mutation == "zero_channels" and len(raw) >= 24:
        raw[22:24] = b"\x00\x00"
    return bytes(raw)


@SETTINGS
@given(blob=hostile_audio())
def test_replay_never_tracebacks_or_hangs(blob, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "input.wav"
    path.write_bytes(blob)
    outcome = {}

    def target():
        try:
            cli.main(["--file", str(path), "--speed", "0", "--plain"])
        except SystemExit as e:
            outcome["code"] = e.code

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)  # bounded time per file
    assert not thread.is_alive(), "replay of a hostile file did not finish within 20 s"
    out, err = capsys.readouterr()
    assert outcome.get("code") in (0, 1), err
    assert "Traceback" not in err and "unexpected error" not in err
    if outcome["code"] == 1:
        assert "input.wav" in err  # the bad file is named in one clear line


@st.composite
def existing_log(draw) -> bytes:
    header = ",".join(columns(LABELS)) + "\n"
    row = "mic,0.000,1.000,2026-01-01T00:00:00.000+00:00,happy,0.9000,5.0,0.0,0.9,0.1,0.0\n"
    pieces = draw(st.lists(st.sampled_from([header, row, row[:17], "x,y\n", "\n", "\"unclosed,quote\n"]), max_size=6))
    junk = draw(st.binary(max_size=40)) if draw(st.booleans()) else b""
    return "".join(pieces).encode() + junk


@SETTINGS
@given(content=existing_log())
def test_append_never_corrupts_an_existing_file(content, tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "out.csv"
    path.write_bytes(content)
    try:
        log = SessionLog(path, LABELS)
    except LogError:
        assert path.read_bytes() == content  # refused: left exactly as it was
        return
    job = Job("a \"quoted\", source", 1.0, 2.5, np.zeros(1, np.float32), True, 0.0)
    log.write(Result(job, np.array([0.1, 0.2, 0.6, 0.1], np.float32), ready=0.004, wall_time=0.0))
    log.close()
    new = path.read_bytes()
    assert new.startswith(content)  # nothing already there was changed
    rows = list(csv.reader(io.StringIO(new.decode("utf-8"))))
    assert rows[0] == columns(LABELS)
    assert rows[-1][0] == 'a "quoted", source' and len(rows[-1]) == len(rows[0])
