"""The bad-input matrix: one clear line on stderr, a non-zero exit, never a traceback."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, run_cli as run, real_clips


def assert_one_line_error(code, err, *needles):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ser-live: ")
    assert "Traceback" not in err and "unexpected error" not in err
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.wav"
    audio, rate = sf.read(real_clips(0, 1)[0], dtype="float32")
    sf.write(path, audio, rate)
    return path


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--speed", "-1", "--file", "x.wav"], "--speed"),
        (["--speed", "fast", "--file", "x.wav"], "not a number"),
        (["--duration", "0"], "must be > 0"),
        (["--vad-aggressiveness", "7"], "invalid choice"),
        (["--hangover-ms", "0", "--file", "x.wav"], "--hangover-ms must be at least 30"),
        (["--min-utterance-ms", "-1", "--file", "x.wav"], "--min-utterance-ms must be 0 or more"),
        (["--max-utterance-s", "0.1", "--file", "x.wav"], "--max-utterance-s must be longer than --min-utterance-ms"),
        (["--bogus"], "unrecognized arguments"),
        (["--json", "--plain", "--file", "x.wav"], "choose one"),
    ],
)
def test_invalid_options(argv, needle, capsys):
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2


def test_missing_file(tmp_path, capsys):
    code, _, err = run(["--file", str(tmp_path / "nope.wav")], capsys)
    assert_one_line_error(code, err, "nope.wav: no such file or folder")


def test_user_messages_name_options_not_internals():
    """What a user reads names the options, never the code's field names or PortAudio's error texts."""
    from ser_live import capture

    assert capture._reason(RuntimeError("Error opening InputStream: Invalid sample rate [PaErrorCode -9997]")) \
        == "invalid sample rate"
    sources = [p.read_text() for p in (REPO / "realtime").glob("*.py")]
    lines = [line for text in sources for line in text.splitlines() if "Error(" in line or "_fail(" in line or "_err(" in line]
    words = [re.sub(r"\{[^}]*\}", "", lit) for line in lines for lit in re.findall(r'"([^"]*)"', line)]
    assert words and not [w for w in words if re.search(r"\w_(ms|s)\b|querying|PaError", w)]


def test_folder_without_audio(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(["--file", str(tmp_path)], capsys)
    assert code != 0 and "folder contains no audio files" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "not a readable audio file"),
        (b"this is not audio at all" * 10, "not a readable audio file"),
    ],
)
def test_bad_file_alone(tmp_path, content, needle, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    code, _, err = run(["--file", str(bad), "--speed", "0", "--plain"], capsys)
    assert code == 1
    assert needle in err and "Traceback" not in err


def test_wav_with_no_samples(tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    code, _, err = run(["--file", str(empty), "--speed", "0", "--plain"], capsys)
    assert code == 1 and "contains no audio samples" in err


def test_bad_files_in_a_batch_are_skipped_and_the_rest_logged(tmp_path, clip, capsys):
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC garbage")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(clip.read_bytes()[: 20000])  # header promises more than is there
    log = tmp_path / "out.csv"
    argv = ["--file", str(bad), str(clip), str(tmp_path / "missing.wav"), str(truncated), "--speed", "0", "--plain", "--log", str(log)]
    code, out, err = run(argv, capsys)
    assert code == 1  # something was skipped
    assert "broken.flac" in err and "missing.wav" in err and "Traceback" not in err
    rows = list(csv.DictReader(log.open()))
    assert [r["source"] for r in rows].count(str(clip)) == 1  # the good file still classified and logged


def test_silence_is_valid_and_gives_no_utterances(tmp_path, capsys):
    quiet = tmp_path / "silence.wav"
    sf.write(quiet, np.zeros(3 * 16000, np.float32), 16000)
    log = tmp_path / "out.csv"
    code, out, err = run(["--file", str(quiet), "--speed", "0", "--plain", "--log", str(log)], capsys)
    assert code == 0, err
    assert "0 utterances" in err
    assert len(log.read_text().splitlines()) == 1  # header only


def test_infinite_and_huge_samples_give_no_warning_lines(tmp_path):
    """A float file whose channels hold +inf and -inf (they down-mix to NaN) and 3e38 (the mix overflows):
    replayed without a numpy RuntimeWarning on stderr."""
    x = np.zeros((16000, 2), np.float32)
    x[100:200, 0], x[100:200, 1], x[300:400] = np.inf, -np.inf, 3e38
    sf.write(tmp_path / "inf.wav", x, 16000, subtype="FLOAT")
    main = "from ser_live import cli; cli.main()"  # as the ser-live script runs it
    r = subprocess.run([sys.executable, "-c", main, "--file", str(tmp_path / "inf.wav"), "--speed", "0", "--plain"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "replaying 1 file" in r.stderr and "Warning" not in r.stderr, r.stderr


def test_log_that_is_one_of_the_recordings_is_refused(tmp_path, clip, capsys):
    recording = clip.read_bytes()
    code, out, err = run(["--file", str(tmp_path), "--speed", "0", "--log", str(clip)], capsys)
    assert_one_line_error(code, err, f"{clip} is one of the audio files to replay")
    assert code == 2 and out == "" and clip.read_bytes() == recording


def test_log_in_missing_folder(tmp_path, clip, capsys):
    code, _, err = run(["--file", str(clip), "--log", str(tmp_path / "no" / "out.csv")], capsys)
    assert_one_line_error(code, err, "does not exist")


@pytest.mark.parametrize("make, needle", [
    (lambda folder: folder / "no" / "page.html", "does not exist"),
    (lambda folder: folder, "it is a folder"),
    (lambda folder: folder / "out.csv", "is one of the logs"),
    (lambda folder: folder / "page.png", "both the page and the PNG"),
    (lambda folder: folder / "clip.wav", "one of the audio files to replay"),
], ids=["missing-folder", "folder", "the-log", "the-png", "the-recording"])
def test_report_that_cannot_be_written_is_refused_before_the_session(make, needle, tmp_path, clip, capsys):
    log = tmp_path / "out.csv"
    recording = clip.read_bytes()
    code, out, err = run(["--file", str(clip), "--speed", "0", "--log", str(log), "--report", str(make(tmp_path))], capsys)
    assert_one_line_error(code, err, needle)
    assert code == 2 and out == "" and not log.exists()  # no session: nothing classified, no log opened
    assert clip.read_bytes() == recording


def test_report_that_cannot_be_written_at_the_end_keeps_the_log(tmp_path, clip, capsys):
    """The disk is full when the session ends (the page's path leads to /dev/full): one line, exit 1, the log whole."""
    page, log = tmp_path / "page.html", tmp_path / "out.csv"
    page.symlink_to("/dev/full")
    code, out, err = run(["--file", str(clip), "--speed", "0", "--plain", "--log", str(log), "--report", str(page)], capsys)
    assert code == 1 and "Traceback" not in err, err
    assert err.splitlines()[-1] == f"ser-live: cannot write {page}: No space left on device", err
    assert len(list(csv.DictReader(log.open()))) == len(out.splitlines()) - 1 >= 1
    assert not page.with_suffix(".png").exists()


@pytest.mark.parametrize("logged", [True, False], ids=["log", "no-log"])
def test_report_of_a_session_without_utterances_is_one_line(logged, tmp_path, capsys):
    """As ser-report says of a log without utterances; the log (a header only) is kept."""
    quiet, log, page = tmp_path / "silence.wav", tmp_path / "out.csv", tmp_path / "page.html"
    sf.write(quiet, np.zeros(3 * 16000, np.float32), 16000)
    code, _, err = run(["--file", str(quiet), "--speed", "0", "--plain", "--report", str(page)]
                       + (["--log", str(log)] if logged else []), capsys)
    name = str(log) if logged else "this session (no --log)"
    assert code == 1 and err.splitlines()[-1] == f"ser-live: {name}: the log has no utterances", err
    assert not page.exists() and not page.with_suffix(".png").exists()
    assert len(log.read_text().splitlines()) == 1 if logged else not log.exists()


def test_log_with_other_columns_is_refused(tmp_path, clip, capsys):
    log = tmp_path / "out.csv"
    log.write_text("x,y\n1,2\n")
    code, _, err = run(["--file", str(clip), "--log", str(log)], capsys)
    assert_one_line_error(code, err, "other columns")
    assert log.read_text() == "x,y\n1,2\n"


@pytest.mark.parametrize(
    "target, kind",
    [("/dev/zero", "a character device"), ("/dev/full", "a character device"), ("/dev/null", "a character device"),
     ("fifo", "a FIFO"), ("/dev/stdout", "a FIFO")],  # stdout is a pipe here
)
def test_log_that_is_not_a_regular_file_is_refused_unread(target, kind, tmp_path, clip):
    """Reading /dev/zero or /dev/full never ends, and opening a FIFO waits for a writer: in a
    child process, so a hang fails the test instead of stalling the suite."""
    if target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    p = subprocess.run([sys.executable, "-c", "from ser_live.cli import main; main()", "--file", str(clip), "--log", target],
                       capture_output=True, text=True, timeout=60)
    assert_one_line_error(p.returncode, p.stderr, f"log path {target} is {kind}", "not a regular file")
    assert p.stdout == ""


def _copy_model(tmp_path, fast_model):
    onnx = tmp_path / "m.onnx"
    shutil.copy(fast_model.path, onnx)
    shutil.copy(fast_model.path.with_suffix(".json"), onnx.with_suffix(".json"))
    return onnx


def test_model_missing_or_not_onnx(tmp_path, clip, fast_model, capsys):
    code, _, err = run(["--file", str(clip), "--model", str(tmp_path / "none.onnx")], capsys)
    assert_one_line_error(code, err, "not found")
    onnx = _copy_model(tmp_path, fast_model)
    onnx.write_bytes(b"\x08\x07garbage that is not a protobuf graph")
    code, _, err = run(["--file", str(clip), "--model", str(onnx)], capsys)
    assert_one_line_error(code, err, "not a loadable ONNX model")


def test_model_without_card_or_with_bad_card(tmp_path, clip, fast_model, capsys):
    onnx = _copy_model(tmp_path, fast_model)
    card = onnx.with_suffix(".json")
    card.unlink()
    code, _, err = run(["--file", str(clip), "--model", str(onnx)], capsys)
    assert_one_line_error(code, err, "card", "not found")
    card.write_text("{not json")
    code, _, err = run(["--file", str(clip), "--model", str(onnx)], capsys)
    assert_one_line_error(code, err, "unreadable")


@pytest.mark.parametrize(
    "key, delta, needle",
    [("feature_version", 1, "feature version"), ("feature_size", 3, "feature_size")],
)
def test_card_that_does_not_match_the_runtime_is_refused(key, delta, needle, tmp_path, clip, fast_model, capsys):
    onnx = _copy_model(tmp_path, fast_model)
    card_path = onnx.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card[key] += delta  # another feature version, or a card that lies about its feature size
    card_path.write_text(json.dumps(card))
    code, _, err = run(["--file", str(clip), "--model", str(onnx)], capsys)
    assert_one_line_error(code, err, needle)


def _has_portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:  # the PortAudio library is not installed
        return False
    return True


def test_unknown_device(capsys):
    """A device is looked up through PortAudio: with PortAudio installed an unknown name is refused as
    such, without it the message says how to install PortAudio. Which case applies is this machine's
    (the CI installs PortAudio), so the test finds out first and checks that case's message."""
    code, _, err = run(["--device", "no-such-microphone-xyz", "--duration", "1"], capsys)
    if _has_portaudio():
        assert_one_line_error(code, err, "unknown input device 'no-such-microphone-xyz'", "--list-devices")
    else:
        assert_one_line_error(code, err, "microphone input needs PortAudio", "libportaudio2")


def test_a_reader_that_goes_away_ends_the_run_quietly():
    """``ser-live ... | head -1``: the pipe closes after the header line; ser-live stops without an error
    line or traceback, with the status of a command ended by SIGPIPE."""
    main = "from ser_live import cli; cli.main()"  # as the ser-live script runs it
    clips = real_clips(12, 12)
    proc = subprocess.Popen([sys.executable, "-c", main, "--file", *map(str, clips), "--speed", "0", "--plain"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("source\t")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Error" not in err and "Traceback" not in err and "error" not in err, err
