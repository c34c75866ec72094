"""SIGINT and SIGTERM at random moments: the log stays well-formed and complete, and the run stops
instead of finishing its input. How fast it exits is a timing, measured by ``benchmarks/run.py``
(figure ``stop_to_exit``); here a run only has to exit within a hang guard of 10 s."""

import csv
import random
import signal
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, join_with_pauses, real_clips

SER_LIVE = [sys.executable, "-c", "from ser_live.cli import main; main()"]
TRIALS = 50
BATCH_COPIES = 1000  # a batch trial replays this many copies of the stream: hours of audio, far more than it can finish


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    x, _ = join_with_pauses(real_clips(3, 3), seed=11, pause_s=(0.4, 0.8))
    path = tmp_path_factory.mktemp("signals") / "stream.wav"
    sf.write(path, x, 16000)
    return path


@pytest.fixture(scope="module")
def utterances_per_copy(stream) -> int:
    p = subprocess.run(SER_LIVE + ["--file", str(stream), "--speed", "0", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return sum(line.startswith("{") for line in p.stdout.splitlines())


def _trial(i: int, stream, tmp_path, env, per_copy: int) -> str | None:
    """One run stopped at a random moment: what went wrong, or None."""
    rng = random.Random(i)
    sig = (signal.SIGINT, signal.SIGTERM)[i % 2]
    # mostly paced replay; sometimes batch scoring, stopped mid-run with its ring buffer and job queue full
    batch = i % 5 == 0
    files = [str(stream)] * (BATCH_COPIES if batch else 1)
    speed = "0" if batch else "8"
    log = tmp_path / f"log{i}.csv"
    proc = subprocess.Popen(
        SER_LIVE + ["--file", *files, "--speed", speed, "--plain", "--log", str(log)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    proc.stderr.readline()  # "replaying ..." : the session (and its signal handlers) is up
    time.sleep(rng.uniform(0.0, 2.5))
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return f"trial {i}: no exit within 10 s of {sig.name}"
    problem = _check(i, proc.returncode, out, err, log)
    logged = sum(line.count("\t") >= 3 and not line.startswith("source\t") for line in out.splitlines())
    if problem is None and batch and logged >= BATCH_COPIES * per_copy:
        problem = f"trial {i}: {sig.name} did not stop the batch ({logged} utterances, all of them)"
    return problem


def _check(i: int, code: int, out: str, err: str, log) -> str | None:
    if "Traceback" in err or code != 0:
        return f"trial {i}: exit {code}, stderr {err[-300:]!r}"
    text = log.read_text()
    if not text.endswith("\n"):
        return f"trial {i}: log ends mid-row"
    rows = list(csv.reader(text.splitlines()))
    if any(len(r) != len(rows[0]) for r in rows):
        return f"trial {i}: a row with the wrong number of fields"
    shown = [tuple(line.split("\t")[1:3]) for line in out.splitlines() if line.count("\t") >= 3 and not line.startswith("source\t")]
    logged = [(f"{float(r[1]):.2f}", f"{float(r[2]):.2f}") for r in rows[1:]]
    if logged != shown:  # every utterance shown is in the log, in order, and nothing else
        return f"trial {i}: {len(shown)} utterances shown, {len(logged)} logged, first difference at " \
               f"{next((k for k, (a, b) in enumerate(zip(shown, logged)) if a != b), min(len(shown), len(logged)))}"
    return None


def test_random_signals_leave_a_complete_well_formed_log(stream, utterances_per_copy, tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(lambda i: _trial(i, stream, tmp_path, env, utterances_per_copy), range(TRIALS)) if p]
    assert not problems, "\n".join(problems)


MIC_TRIALS = 10


def test_random_signals_during_microphone_capture(vmic_env, tmp_path):
    """The same guarantees while recording the virtual microphone with speech playing into it."""
    from test_capture import _start

    clip = real_clips(0, 1)[0]
    audio, _ = sf.read(clip, dtype="float32")
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.tile(audio, 2), 16000, subtype="PCM_16")
    problems = []
    for i in range(MIC_TRIALS):
        rng = random.Random(1000 + i)
        sig = (signal.SIGINT, signal.SIGTERM)[i % 2]
        log = tmp_path / f"mic{i}.csv"
        proc = _start(vmic_env, "--log", str(log))
        player = subprocess.Popen(["paplay", f"--device={vmic_env['VMIC_SINK']}", str(speech)], env=vmic_env)
        time.sleep(rng.uniform(0.2, 4.0))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)  # a hang guard; the exit time is a benchmark figure
        player.kill()
        player.wait()
        problems.append(_check(i, proc.returncode, out, err, log))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_ctrl_c_pressed_repeatedly_never_prints_a_traceback(stream, tmp_path):
    """Impatient users press Ctrl-C several times: the first stops, the second stops at once, later
    ones (during the final flush and summary) are ignored; the log is still complete."""
    env = {"PATH": "/usr/bin:/bin"}
    problems = []
    for i in range(12):
        rng = random.Random(2000 + i)
        log = tmp_path / f"burst{i}.csv"
        proc = subprocess.Popen(SER_LIVE + ["--file", str(stream), "--speed", "8", "--plain", "--log", str(log)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc.stderr.readline()
        time.sleep(rng.uniform(0.2, 2.0))
        for _ in range(rng.randint(3, 6)):
            proc.send_signal(signal.SIGINT)
            time.sleep(rng.uniform(0.0, 0.03))
            if proc.poll() is not None:
                break
        out, err = proc.communicate(timeout=10)
        problems.append(_check(i, proc.returncode, out, err, log))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_signal_handler_never_raises_even_inside_a_weakref_callback(default_model, tmp_path, monkeypatch):
    """Python runs a signal handler between any two bytecodes of the main thread, also inside a
    weakref callback, where an exception is printed as 'Exception ignored ... Traceback' and lost.
    So the handler only records the request: the first Ctrl-C stops, a second one hurries."""
    from ser_live.events import StopReason
    from ser_live.session import Options, Session

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    session = Session(Options(default_model, [tmp_path / "unused.wav"], speed=0, view="lines"))

    class Owner:
        pass

    owner = Owner()
    ref = weakref.ref(owner, lambda _: [session._on_signal(signal.SIGINT, None) for _ in range(3)])
    del owner
    assert ref() is None
    assert not unraisable, unraisable[0].exc_value
    assert (session.stop_reason, session._hurry) == (StopReason.INTERRUPTED, True)


def test_second_ctrl_c_stops_at_once_and_keeps_every_computed_result(default_model, stream, tmp_path):
    """Batch scoring of many copies, two Ctrl-C once results flow: the run ends early, every result the
    session received is logged, and the second Ctrl-C never raises out of the loop."""
    from ser_live.events import StopReason
    from ser_live.session import Options, Session
    from ser_live.session_log import SessionLog

    log_path = tmp_path / "hurry.csv"
    session = Session(Options(default_model, [stream] * 100, speed=0, view="json",
                              log=SessionLog(log_path, default_model.labels)))

    def press_twice() -> None:
        while session.stats.utterances < 5:
            time.sleep(0.005)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        # Two SIGINTs pending before the main thread runs its handler are one press: wait until the first is seen.
        while session.stop_reason is None:
            time.sleep(0.001)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    # The caller's own handler: the session must put it back, and it catches a second press that
    # arrives after the session (stopped by the first) has already ended, instead of a KeyboardInterrupt.
    late: list[int] = []

    def caller_handler(signum, frame) -> None:
        late.append(signum)

    previous = signal.signal(signal.SIGINT, caller_handler)
    try:
        presser = threading.Thread(target=press_twice, daemon=True)
        presser.start()
        code = session.run()
        presser.join(5)
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    rows = list(csv.reader(log_path.read_text().splitlines()))[1:]
    assert code == 0 and session.stop_reason is StopReason.INTERRUPTED
    assert 5 <= len(rows) == session.stats.utterances < 100 * 6
    # The second press races the end of the stop that the first one started, and either order is legitimate:
    if session._hurry:  # it arrived while the session was stopping: the session took it and hurried the stop
        assert late == []
    else:  # the session had already ended: the caller's restored handler took it
        assert late == [signal.SIGINT]
    assert restored is caller_handler  # restored for the caller


def test_stopping_early_says_utterances_were_left_only_when_some_were(default_model, stream, capsys):
    """The warning after a second Ctrl-C (or the stop grace running out) is true: silent once every
    queued utterance is shown, printed while one is queued but not classified."""
    from ser_live.session import Options, Session
    from ser_live.events import Job

    session = Session(Options(default_model, [stream], speed=0, view="json"))
    assert session.run() == 0 and session.stats.utterances > 0
    capsys.readouterr()
    session._stop_early()  # everything was classified and shown
    assert "stopped before" not in capsys.readouterr().err

    idle = Session(Options(default_model, [stream], speed=0, view="json"))  # never started: its worker waits
    assert idle.pipeline.worker.submit(Job("x", 0.0, 1.0, np.zeros(16000, np.float32), True, time.monotonic()))
    idle._stop_early()
    assert "stopped before every queued utterance was classified" in capsys.readouterr().err


def test_ctrl_c_during_start_up_is_remembered_then_ends_the_run_before_the_session(tmp_path, capsys, monkeypatch):
    """Run as a program, ser-live defers Ctrl-C until its session is up: pressed during imports or model
    loading it raises nothing (a KeyboardInterrupt there could print a traceback from a weakref callback);
    the run then ends with 130 before replaying anything."""
    from ser_live import cli

    monkeypatch.setattr(cli, "_interrupted_at_start_up", False)
    previous = signal.getsignal(signal.SIGINT)
    try:
        cli._defer_interrupts()  # what main() does first when run as a program
        signal.raise_signal(signal.SIGINT)  # the handler runs here: nothing is raised
        log = tmp_path / "startup.csv"
        code = cli.run(["--file", str(REPO / "examples" / "sample.flac"), "--speed", "0", "--plain", "--log", str(log)])
    finally:
        signal.signal(signal.SIGINT, previous)
    out, _ = capsys.readouterr()
    assert code == 130 and out == ""
    assert log.read_text().count("\n") == 1  # the header only: nothing was replayed
