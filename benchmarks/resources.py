"""What running ser-live costs: CPU while listening with the live view drawn in a pseudo-terminal, start-up,
stop (Ctrl-C to exit), and memory, utterances and drift over a long session. Each runs ser-live as a process."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.common import SR, child_env, ser_live_cmd, stats


# -- 5: CPU while listening, live view drawn in a pseudo-terminal ----------------------------------


def _in_pty(model: Path, args: list[str]):
    """Start ser-live with a pseudo-terminal as stdin/stdout/stderr; returns (process, reader)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 110, 0, 0))
    env = child_env()
    env.update(TERM="xterm-256color", COLUMNS="110", LINES="40")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(ser_live_cmd(model) + args, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    got = {"bytes": 0, "first": None}

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            if got["first"] is None:
                got["first"] = time.monotonic()
            got["bytes"] += len(data)
        os.close(master)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    return proc, reader, got


def bench_cpu(model: Path, stream: Path, seconds: float, warmup: float) -> dict:
    import psutil

    proc, reader, got = _in_pty(model, ["--file", str(stream), "--speed", "1"])
    try:
        ps = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30
        while got["first"] is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"ser-live exited early ({proc.returncode})")
        c0, w0, b0 = ps.cpu_times(), time.monotonic(), got["bytes"]
        th0 = {t.id: t.user_time + t.system_time for t in ps.threads()}
        rss, end = [], w0 + seconds
        while (now := time.monotonic()) < end:
            rss.append(ps.memory_info().rss)
            time.sleep(min(0.5, max(0.0, end - now)))
        c1, w1, b1 = ps.cpu_times(), time.monotonic(), got["bytes"]
        th1 = {t.id: t.user_time + t.system_time for t in ps.threads()}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(2)
    wall = w1 - w0
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    main_cpu = th1.get(proc.pid, 0.0) - th0.get(proc.pid, 0.0)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "percent_of_core": 100.0 * cpu / wall,
        "main_thread_percent": 100.0 * main_cpu / wall,  # the session loop and the live view
        "other_threads_percent": 100.0 * (cpu - main_cpu) / wall,  # replay, segmenter, worker
        "terminal_bytes_per_s": (b1 - b0) / wall,
        "peak_rss_mb": max(rss) / 2**20 if rss else math.nan,
    }


# -- 6: start-up ------------------------------------------------------------------------------------


def bench_startup(model: Path, clip: Path, runs: int) -> dict:
    cmd = ser_live_cmd(model) + ["--file", str(clip), "--speed", "0", "--plain"]
    env = child_env()
    subprocess.run(cmd, capture_output=True, env=env)  # warm the disk cache
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from ser_live.cli import main; main()", "--model", str(model), "--file", str(clip), "--speed", "0", "--plain"],
        capture_output=True, text=True, env=env)
    imports = []
    for line in probe.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # top-level and first-level imports
            imports.append((int(m.group(2)) / 1e3, m.group(4)))
    imports.sort(reverse=True)
    return {
        "exit_code": p.returncode,
        "clip_s": sf.info(str(clip)).duration,
        "runs_s": walls,
        "median_s": float(np.median(walls)),
        "import_ms_top": [{"module": name, "cumulative_ms": ms} for ms, name in imports[:8]],
    }


def bench_stop(model: Path, stream: Path, runs: int) -> dict:
    """Seconds from SIGINT to exit, alternately during a paced replay of ``stream`` and during a
    --speed 0 batch of at least 2 hours of it (ring buffer and job queue full when the signal comes)."""
    env = child_env()
    rng = np.random.default_rng(0)
    copies = max(1, math.ceil(7200.0 / sf.info(str(stream)).duration))
    walls, codes = [], []
    for i in range(runs):
        batch = i % 2 == 1
        files = [str(stream)] * (copies if batch else 1)
        proc = subprocess.Popen(ser_live_cmd(model) + ["--file", *files, "--speed", "0" if batch else "1", "--plain"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        proc.stderr.readline()  # "replaying ...": the session and its signal handlers are up
        time.sleep(rng.uniform(0.5, 2.0))
        proc.send_signal(signal.SIGINT)
        t0 = time.perf_counter()
        proc.communicate()
        walls.append(time.perf_counter() - t0)
        codes.append(proc.returncode)
    return {"runs_s": walls, "exit_codes": codes, "median_s": float(np.median(walls)), "max_s": float(max(walls)),
            "batch_copies": copies}


# -- 7: memory over a long session --------------------------------------------------------------------


def bench_memory(model: Path, stream: Path, hours: float) -> dict:
    """The stream replayed ``reps`` times (>= ``hours`` of audio) in one ``--speed 0`` session.

    Each copy is a symlink of its own name, so every logged row says which copy it came from.
    Counting is exact: every copy must log, row for row, the utterances the offline segmenter
    finds in the stream (``segmenter.utterances``). Drift compares the first and the last hour of
    audio: per-utterance features + inference (CPU time, which other processes hardly change, and
    wall time; from ``--json``) and end-to-end latency.
    """
    from ser_live.segmenter import utterances as offline

    audio, _ = sf.read(str(stream), dtype="float32")
    audio_s = audio.size / SR
    expected = [(f"{e.start / SR:.3f}", f"{e.end / SR:.3f}") for e in offline(audio)]
    reps = max(2, math.ceil(hours * 3600 / audio_s))
    with tempfile.TemporaryDirectory() as tmp:
        copies = [Path(tmp) / f"copy{i:03d}{stream.suffix}" for i in range(reps)]
        for c in copies:
            c.symlink_to(stream)
        log, lines = Path(tmp) / "long.csv", Path(tmp) / "long.jsonl"
        cmd = ser_live_cmd(model) + ["--speed", "0", "--json", "--log", str(log), "--file"] + [str(c) for c in copies]
        with lines.open("w") as out:
            result = _sample_rss(cmd, reps, out)
        rows = list(csv.DictReader(log.open()))
        objs = [json.loads(line) for line in lines.open()]
    index = {str(c): i for i, c in enumerate(copies)}
    logged: list[list[tuple[str, str]]] = [[] for _ in copies]
    for r in rows:
        logged[index[r["source"]]].append((r["start_s"], r["end_s"]))
    result["audio_hours"] = reps * audio_s / 3600
    result["x_real_time"] = reps * audio_s / result["wall_s"]
    result["utterances"] = len(rows)
    result["utterances_expected"] = reps * len(expected)
    result["copies_exactly_as_offline"] = sum(spans == expected for spans in logged)
    result["copies"] = reps
    result.update(_drift(objs, index, audio_s, reps * audio_s, min(3600.0, reps * audio_s / 2)))
    return result


def _drift(objs: list[dict], index: dict[str, int], copy_s: float, total_s: float, window_s: float) -> dict:
    """Statistics over the utterances in the first and in the last ``window_s`` of the audio."""
    objs = [o for o in objs if "probs" in o]  # not the failed ones
    t = np.array([index[o["source"]] * copy_s + o["start_s"] for o in objs])
    proc = np.array([o["features_ms"] + o["inference_ms"] for o in objs])
    cpu = np.array([o["cpu_ms"] for o in objs])
    latency = np.array([o["latency_ms"] for o in objs])
    first, last = t < window_s, t >= total_s - window_s
    out = {"drift_window_s": window_s}
    for name, values in (("processing", proc), ("processing_cpu", cpu), ("latency", latency)):
        for part, mask in (("first", first), ("last", last)):
            out[f"{name}_{part}_window"] = stats(values[mask])
    return out


def _sample_rss(cmd: list[str], reps: int, stdout) -> dict:
    import psutil

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=child_env())
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
        except psutil.Error:
            break
        if rss:  # 0 once the process has exited but is not yet reaped
            samples.append((time.monotonic() - t0, rss))
        time.sleep(0.2)
    wall = time.monotonic() - t0
    # RSS once the first copy of the stream has been replayed vs at the end (the replay rate is steady)
    steady = [rss for t, rss in samples if t >= wall / reps] or [s[1] for s in samples]
    tail = [rss for t, rss in samples if t >= wall * 0.95] or [samples[-1][1]]
    peak = max(s[1] for s in samples)
    return {
        "exit_code": proc.returncode,
        "wall_s": wall,
        "rss_after_first_file_mb": steady[0] / 2**20,
        "rss_at_end_mb": tail[-1] / 2**20,
        "growth_mb": (tail[-1] - steady[0]) / 2**20,
        "peak_rss_mb": peak / 2**20,
    }
