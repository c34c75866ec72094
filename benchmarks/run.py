"""ser-live real-time performance benchmarks (issue 4): one command, a table and a JSON file.

    python -m benchmarks.run [--quick] [--out benchmarks/results.json]

Figures (each printed with its target; see benchmarks/README.md):

* features + inference for one utterance of 1, 3 and 8 s, median and p95 over >= 200 real clips,
  one thread; and the same for the librosa MFCC-40 + chroma + mel-128 means + MLP(300) way of the
  published MLP projects, on the same utterances in the same run (ratio of medians);
* end of speech -> result ready (and -> drawn in the live view) in a real-time-paced, in-process
  session over a stream of real clips with pauses, split into the hangover wait and processing;
* replay throughput of ``ser-live --speed 0`` over >= 20 min of speech with pauses, on one core;
* CPU of ``ser-live --speed 1`` with the rich live view drawn in a pseudo-terminal, for a silent
  stream (noise floor) and a speech stream: CPU seconds / wall seconds of the process;
* start-up: ``ser-live --file <3 s clip> --speed 0 --plain`` from process start to exit;
* stop: Ctrl-C (SIGINT) at a random moment of a paced replay or of a ``--speed 0`` batch of hours of
  audio, to the process's exit (the test suite checks what a stop keeps, this times it);
* long session: 8 hours of audio replayed at full speed: peak RSS and RSS growth, utterances logged
  against the offline segmenter's, processing time and latency in the first vs the last hour;
* the shipped model's held-out (speaker-grouped cross-validation) UAR, from its card.

``--quick`` shrinks every measurement so the test suite can check, in well under a minute, that
the command runs and emits every figure. Timings from --quick (or a loaded machine) mean nothing.
"""

from __future__ import annotations

import os

from ser_live import process

process.pin_blas_threads()  # as ser-live does; numba (librosa) too, for the librosa-way figures
process.keep_freed_memory()  # as ser-live does (the librosa way, in the same process, too)
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from benchmarks import DATA  # noqa: E402
from ser_live.features import SAMPLE_RATE as SR  # noqa: E402
from ser_live.train.streams import join_with_pauses  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    clips_per_corpus: int = 100  # >= 200 real clips in all
    repeats: int = 3  # timed calls per utterance (ours); librosa is timed once per utterance
    latency_clips: int = 60  # clips in the paced latency stream
    latency_speed: float = 1.0
    throughput_minutes: float = 21.0
    cpu_seconds: float = 60.0
    cpu_warmup: float = 3.0  # after the view is first drawn
    memory_hours: float = 8.0
    startup_runs: int = 5
    stop_runs: int = 10

    @staticmethod
    def quick() -> "Settings":
        return Settings(6, 1, 6, 4.0, 1.0, 4.0, 1.0, 2.0 / 60.0, 2, 2)


# -- corpora and streams ------------------------------------------------------------------------


def clip_paths(per_corpus: int) -> list[Path]:
    """A fixed spread of real clips over the speakers of both corpora."""
    if not (DATA / "ravdess").is_dir() or not (DATA / "crema-d").is_dir():
        sys.exit(f"benchmarks: corpora not found at {DATA} (set SER_DATA_DIR)")
    out = []
    for files in (sorted((DATA / "ravdess").glob("Actor_*/*.flac")), sorted((DATA / "crema-d").glob("*.flac"))):
        step = max(1, len(files) // per_corpus)
        out += files[::step][:per_corpus]
    return out


def load(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != SR:
        raise ValueError(f"{path}: expected {SR} Hz")
    return audio if audio.ndim == 1 else audio.mean(axis=1)


def utterances(clips: list[np.ndarray], spans: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    """One utterance of exactly ``seconds`` per clip: its speech span as the runtime cuts it,
    continued with the next clips' spans when too short (8 s utterances are ~3 clips of speech)."""
    need = int(seconds * SR)
    out = []
    for i in range(len(clips)):
        parts, total, j = [], 0, i
        while total < need:
            parts.append(spans[j % len(spans)])
            total += parts[-1].size
            j += 1
        x = np.concatenate(parts)
        off = (x.size - need) // 2 if len(parts) == 1 else 0
        out.append(np.ascontiguousarray(x[off : off + need]))
    return out


def noise_floor(seconds: float, rng: np.random.Generator, floor_dbfs: float = -60.0) -> np.ndarray:
    return rng.normal(0.0, 10 ** (floor_dbfs / 20), int(seconds * SR)).astype(np.float32)


def write(path: Path, x: np.ndarray) -> Path:
    sf.write(path, np.clip(x, -1.0, 1.0), SR, subtype="PCM_16")
    return path


# -- helpers -------------------------------------------------------------------------------------


def stats(ms: list[float] | np.ndarray) -> dict:
    a = np.asarray(ms, float)
    if not a.size:
        return {"n": 0, "median": math.nan, "p95": math.nan, "max": math.nan}
    return {"n": int(a.size), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max())}


def ser_live_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "ser-live"
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "from ser_live.cli import main; main()"]


def one_core() -> list[str]:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def child_env() -> dict:
    """The environment of the ser-live processes measured: this one's (they run the installed ser_live)."""
    return dict(os.environ)


def steal_s() -> float:
    """CPU time the hypervisor gave to other guests while this machine's CPUs wanted to run, summed
    over CPUs (``steal`` in /proc/stat); NaN where the kernel does not report it."""
    try:
        with open("/proc/stat") as f:
            ticks = sum(int(line.split()[8]) for line in f if line.startswith("cpu") and not line.startswith("cpu "))
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.nan


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# -- 1, 2: features + inference, ours and the librosa way -----------------------------------------


def on_worker_thread(fn, *args):
    """Run ``fn(*args)`` on a fresh thread, as ser-live's worker runs the features: glibc serves a
    thread from its own arena, which, unlike the main thread's, does not map large arrays afresh (and
    page-fault them in) on every call. Timing on the main thread measured ~0.5 ms of kernel time per
    3 s utterance that ser-live never pays."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), name="bench-worker")
    t.start()
    t.join()
    return out[0]


def bench_features(model, utts: dict[float, list[np.ndarray]], repeats: int) -> dict:
    from ser_live.features import extract

    out = {}
    warm = utts[3.0][0]
    for _ in range(20):
        model.predict(extract(warm))
    for seconds, items in utts.items():
        total, feat, inf, cpu = [], [], [], []
        for _ in range(repeats):
            for x in items:
                c0 = time.thread_time()
                t0 = time.perf_counter()
                v = extract(x)
                t1 = time.perf_counter()
                model.predict(v)
                t2 = time.perf_counter()
                cpu.append((time.thread_time() - c0) * 1e3)
                total.append((t2 - t0) * 1e3)
                feat.append((t1 - t0) * 1e3)
                inf.append((t2 - t1) * 1e3)
        out[seconds] = {"total_ms": stats(total), "features_ms": stats(feat), "inference_ms": stats(inf), "cpu_ms": stats(cpu)}
    return out


def librosa_way():
    """The feature extraction + classifier of the published MLP projects (default parameters)."""
    import warnings

    import librosa
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def features(x: np.ndarray, sr: int = SR) -> np.ndarray:
        stft = np.abs(librosa.stft(x))
        mfccs = np.mean(librosa.feature.mfcc(y=x, sr=sr, n_mfcc=40).T, axis=0)
        chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
        mel = np.mean(librosa.feature.melspectrogram(y=x, sr=sr).T, axis=0)
        return np.hstack([mfccs, chroma, mel])

    rng = np.random.default_rng(0)
    mlp = MLPClassifier(alpha=0.01, batch_size=256, epsilon=1e-08, hidden_layer_sizes=(300,),
                        learning_rate="adaptive", max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(rng.normal(size=(512, 180)), rng.integers(0, 8, 512))  # only its predict cost matters
    return features, mlp


def bench_librosa(utts: dict[float, list[np.ndarray]]) -> dict:
    t0 = time.perf_counter()
    features, mlp = librosa_way()
    for _ in range(3):  # numba JIT and librosa caches
        mlp.predict_proba(features(utts[3.0][0])[None, :])
    setup_s = time.perf_counter() - t0
    out = {"import_and_jit_s": setup_s}
    for seconds, items in utts.items():
        total, feat = [], []
        for x in items:
            t0 = time.perf_counter()
            v = features(x)
            t1 = time.perf_counter()
            mlp.predict_proba(v[None, :])
            t2 = time.perf_counter()
            total.append((t2 - t0) * 1e3)
            feat.append((t1 - t0) * 1e3)
        out[seconds] = {"total_ms": stats(total), "features_ms": stats(feat)}
    return out


# -- 3: end of speech -> result ready / on screen, paced and in-process ---------------------------


class _NullTerminal(io.TextIOBase):
    """A terminal that swallows what the live view draws (but counts it)."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)

    def isatty(self) -> bool:
        return True


def bench_latency(model, stream: Path, speed: float) -> dict:
    from rich.console import Console

    from ser_live.segmenter import SegmenterConfig
    from ser_live.session import Options, Session
    from ser_live.view import LiveView
    from ser_live.worker import Result

    config = SegmenterConfig()
    session = Session(Options(model, [stream], speed=speed, view="live", segmenter=config))
    term = _NullTerminal()
    session.view = view = LiveView(session.stats, Console(file=term, force_terminal=True, width=110, height=40, color_system="truecolor"))
    seg = session.pipeline.segmenter

    calls: list[tuple[float, int, int, list]] = []  # (entered, position before, after, events)
    process = seg.process

    def timed_process(audio):
        t, before = time.monotonic(), seg.position
        events = process(audio)
        calls.append((t, before, seg.position, events))
        return events

    seg.process = timed_process

    handled: dict[int, float] = {}
    handle = session._handle

    def timed_handle(item):
        if isinstance(item, Result):
            handled[id(item)] = time.monotonic()
        handle(item)

    session._handle = timed_handle

    draws: list[tuple[float, set[int]]] = []
    draw = view._draw

    def timed_draw():
        draw()
        shown = {id(r) for r in view.history}
        if view.current is not None:
            shown.add(id(view.current))
        draws.append((time.monotonic(), shown))

    view._draw = timed_draw

    results: list[Result] = []
    add = session.stats.add

    def keep(result):
        results.append(result)
        add(result)

    session.stats.add = keep
    t0 = time.monotonic()
    saved = sys.stdout
    sys.stdout = io.StringIO()  # the end-of-session summary
    try:
        code = session.run()
    finally:
        sys.stdout = saved
    wall = time.monotonic() - t0

    pad = config.pad_ms * SR // 1000
    ends = {}
    for entered, before, after, events in calls:
        for e in events:
            if e.kind == "end":
                ends[(e.start, e.end)] = e
    total, hang, proc, screen, feat, inf = [], [], [], [], [], []
    for r in results:
        e = ends.get((round(r.job.start_s * SR), round(r.job.end_s * SR)))
        if e is None or e.reason != "silence" or r.probs is None:
            continue
        last_voiced = e.end - pad  # sample index just after the last voiced frame
        entered = next((t for t, before, after, _ in calls if before < last_voiced <= after), None)
        if entered is None:
            continue
        total.append((r.ready - entered) * 1e3)
        hang.append((r.job.detected - entered) * 1e3)
        proc.append((r.ready - r.job.detected) * 1e3)
        feat.append(r.feature_ms)
        inf.append(r.inference_ms)
        h = handled.get(id(r))
        drawn = next((t for t, shown in draws if h is not None and t >= h and id(r) in shown), None)
        if drawn is not None:
            screen.append((drawn - entered) * 1e3)
    audio_s = sf.info(str(stream)).duration
    return {
        "exit_code": code,
        "speed": speed,
        "hangover_ms": config.hangover_ms,
        "expected_hangover_wait_ms": config.hangover_ms / speed,
        "audio_s": audio_s,
        "wall_s": wall,
        "utterances": len(total),
        "end_to_ready_ms": stats(total),
        "hangover_wait_ms": stats(hang),
        "processing_ms": stats(proc),
        "features_ahead": sum(r.ahead for r in results if r.job.final),
        "finals": sum(r.job.final for r in results),
        "features_ms": stats(feat),
        "inference_ms": stats(inf),
        "end_to_screen_ms": stats(screen),
        "draws_per_s": len(draws) / wall,
        "terminal_chars_per_s": term.chars / wall,
    }


# -- 4: throughput at --speed 0 on one core --------------------------------------------------------

_SESSION_RE = re.compile(r"session: (\d+) utterances in ([\d.]+) s wall")


def bench_throughput(stream: Path) -> dict:
    audio_s = sf.info(str(stream)).duration
    cmd = one_core() + ser_live_cmd() + ["--file", str(stream), "--speed", "0", "--plain"]
    import resource

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    m = _SESSION_RE.search(p.stdout)
    session_wall = float(m.group(2)) if m else math.nan
    return {
        "exit_code": p.returncode,
        "one_core": bool(one_core()),
        "audio_s": audio_s,
        "utterances": int(m.group(1)) if m else 0,
        "process_wall_s": wall,
        "session_wall_s": session_wall,
        "x_real_time": audio_s / session_wall if m else math.nan,
        "x_real_time_with_startup": audio_s / wall,
        "process_cpu_s": cpu,  # includes start-up; on a loaded machine wall time suffers, CPU time less
        "x_real_time_per_cpu_s": audio_s / cpu,
    }


# -- 5: CPU while listening, live view drawn in a pseudo-terminal ----------------------------------


def _in_pty(args: list[str]):
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
    proc = subprocess.Popen(ser_live_cmd() + args, stdin=slave, stdout=slave, stderr=slave, env=env,
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


def bench_cpu(stream: Path, seconds: float, warmup: float) -> dict:
    import psutil

    proc, reader, got = _in_pty(["--file", str(stream), "--speed", "1"])
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


def bench_startup(clip: Path, runs: int) -> dict:
    cmd = ser_live_cmd() + ["--file", str(clip), "--speed", "0", "--plain"]
    env = child_env()
    subprocess.run(cmd, capture_output=True, env=env)  # warm the disk cache
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from ser_live.cli import main; main()", "--file", str(clip), "--speed", "0", "--plain"],
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


def bench_stop(stream: Path, runs: int) -> dict:
    """Seconds from SIGINT to exit, alternately during a paced replay of ``stream`` and during a
    --speed 0 batch of at least 2 hours of it (ring buffer and job queue full when the signal comes)."""
    env = child_env()
    rng = np.random.default_rng(0)
    copies = max(1, math.ceil(7200.0 / sf.info(str(stream)).duration))
    walls, codes = [], []
    for i in range(runs):
        batch = i % 2 == 1
        files = [str(stream)] * (copies if batch else 1)
        proc = subprocess.Popen(ser_live_cmd() + ["--file", *files, "--speed", "0" if batch else "1", "--plain"],
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


def bench_memory(stream: Path, hours: float) -> dict:
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
        cmd = ser_live_cmd() + ["--speed", "0", "--json", "--log", str(log), "--file"] + [str(c) for c in copies]
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


# -- accuracy -------------------------------------------------------------------------------------------


def model_accuracy() -> dict:
    from ser_live.models import DEFAULT_MODEL

    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    cv = card["metrics"]["cross_validation"]
    return {
        "model": DEFAULT_MODEL.name,
        "folds": cv.get("folds"),
        "grouping": cv.get("grouping"),
        "uar_overall": cv["overall"]["uar"],
        "uar_per_corpus": {k: v["uar"] for k, v in cv["per_corpus"].items()},
    }


# -- table ------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    label: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


FIGURE_KEYS = [
    "features_inference_1s", "features_inference_3s", "features_inference_8s",
    "librosa_way_1s", "librosa_way_3s", "librosa_way_8s",
    "speedup_vs_librosa_1s", "speedup_vs_librosa_3s", "speedup_vs_librosa_8s",
    "end_of_speech_to_result", "end_of_speech_to_screen", "hangover_wait", "processing",
    "replay_throughput", "cpu_silent", "cpu_speech", "startup", "stop_to_exit", "peak_rss", "rss_growth_8h",
    "long_session_utterances", "long_session_processing_drift", "long_session_latency_drift",
    "heldout_uar",
]


def figures(r: dict) -> list[Figure]:
    out = []
    ours, lib = r["features"], r["librosa"]
    for s in (1.0, 3.0, 8.0):
        t = ours[s]["total_ms"]
        out.append(Figure(f"features_inference_{s:g}s", f"features+inference, {s:g} s utterance (p50 / p95)", t["p95"], "ms",
                          "p95 <= 3 ms" if s == 3.0 else "", t["p95"] <= 3.0 if s == 3.0 else None,
                          f"p50 {t['median']:.2f} ms, n={t['n']}"))
    for s in (1.0, 3.0, 8.0):
        t = lib[s]["total_ms"]
        out.append(Figure(f"librosa_way_{s:g}s", f"librosa MFCC40+chroma+mel128 + MLP(300), {s:g} s (p50 / p95)", t["p95"], "ms",
                          note=f"p50 {t['median']:.2f} ms, n={t['n']}"))
    for s in (1.0, 3.0, 8.0):
        ratio = lib[s]["total_ms"]["median"] / ours[s]["total_ms"]["median"]
        out.append(Figure(f"speedup_vs_librosa_{s:g}s", f"ours faster than the librosa way, {s:g} s (ratio of p50)", ratio, "x",
                          ">= 6x", ratio >= 6.0))
    lat = r["latency"]
    budget = lat["expected_hangover_wait_ms"] + 20.0
    t = lat["end_to_ready_ms"]
    out.append(Figure("end_of_speech_to_result", "last voiced frame in -> result ready (p50 / p95)", t["p95"], "ms",
                      f"p95 <= hangover + 20 = {budget:g} ms", t["p95"] <= budget,
                      f"p50 {t['median']:.1f} ms, {t['n']} utterances, speed {lat['speed']:g}x"))
    t = lat["end_to_screen_ms"]
    out.append(Figure("end_of_speech_to_screen", "last voiced frame in -> drawn in the live view (p95)", t["p95"], "ms",
                      note=f"p50 {t['median']:.1f} ms, {lat['draws_per_s']:.1f} redraws/s"))
    t = lat["hangover_wait_ms"]
    out.append(Figure("hangover_wait", "  of which hangover wait (p95)", t["p95"], "ms",
                      note=f"p50 {t['median']:.1f} ms, hangover {lat['expected_hangover_wait_ms']:g} ms of audio"))
    t = lat["processing_ms"]
    out.append(Figure("processing", "  of which work left after the end: queue + features + inference (p95)", t["p95"], "ms",
                      note=f"p50 {t['median']:.2f} ms; features of {lat['features_ahead']}/{lat['finals']} utterances "
                           f"extracted during the hangover"))
    tp = r["throughput"]
    out.append(Figure("replay_throughput", "replay throughput --speed 0" + (" (taskset one core)" if tp["one_core"] else ""),
                      tp["x_real_time"], "x real time", ">= 500x", tp["x_real_time"] >= 500,
                      f"{tp['audio_s'] / 60:.1f} min audio; {tp['x_real_time_with_startup']:.0f}x incl. start-up; "
                      f"{tp['x_real_time_per_cpu_s']:.0f}x per CPU second incl. start-up"))
    for key, name, target in (("cpu_silent", "silent", 5.0), ("cpu_speech", "speech", 8.0)):
        c = r[key]
        out.append(Figure(key, f"CPU while listening, live view, {name} (% of one core)", c["percent_of_core"], "%",
                          f"<= {target:g}%", c["percent_of_core"] <= target,
                          f"main thread (loop+view) {c['main_thread_percent']:.1f}%, others {c['other_threads_percent']:.1f}%, {c['wall_s']:.0f} s"))
    st = r["startup"]
    out.append(Figure("startup", "start-up: ser-live --file <3 s> --speed 0 --plain (median)", st["median_s"], "s",
                      "<= 1.5 s", st["median_s"] <= 1.5, f"{len(st['runs_s'])} runs"))
    sp = r["stop"]
    out.append(Figure("stop_to_exit", "stop: Ctrl-C during replay -> process exit (max)", sp["max_s"], "s",
                      "<= 1 s (ours)", sp["max_s"] <= 1.0,
                      f"median {sp['median_s']:.2f} s, {len(sp['runs_s'])} runs, paced and --speed 0 batch alternately"))
    mem = r["memory"]
    peak = max(mem["peak_rss_mb"], r["cpu_speech"]["peak_rss_mb"])
    out.append(Figure("peak_rss", "peak RSS (live view run and long replay)", peak, "MB", "<= 200 MB", peak <= 200))
    out.append(Figure("rss_growth_8h", f"RSS growth over {mem['audio_hours']:.2f} h of audio at full speed", mem["growth_mb"], "MB",
                      "<= 10 MB", mem["growth_mb"] <= 10,
                      f"{mem['rss_after_first_file_mb']:.0f} -> {mem['rss_at_end_mb']:.0f} MB in {mem['wall_s']:.0f} s"))
    exact = mem["copies_exactly_as_offline"] == mem["copies"] and mem["utterances"] == mem["utterances_expected"]
    out.append(Figure("long_session_utterances", "long session: utterances logged / offline segmenter x copies", mem["utterances"], "",
                      f"= {mem['utterances_expected']}", exact,
                      f"{mem['copies_exactly_as_offline']}/{mem['copies']} copies logged exactly the offline utterances"))
    window = f"{mem['drift_window_s'] / 60:.0f} min"
    for key, name, what in (("long_session_processing_drift", "processing_cpu", "features+inference CPU"),
                            ("long_session_latency_drift", "latency", "end-to-end latency")):
        a, b = mem[f"{name}_first_window"], mem[f"{name}_last_window"]
        note = f"{a['median']:.2f} -> {b['median']:.2f} ms (p95 {a['p95']:.2f} -> {b['p95']:.2f}), n={a['n']}/{b['n']}"
        if name == "processing_cpu":
            w0, w1 = mem["processing_first_window"], mem["processing_last_window"]
            note += f"; wall p50 {w0['median']:.2f} -> {w1['median']:.2f} ms"
        out.append(Figure(key, f"long session: {what} p50, last {window} minus first {window} of audio",
                          b["median"] - a["median"], "ms", "no drift", None, note))
    acc = r["accuracy"]
    out.append(Figure("heldout_uar", f"shipped model held-out UAR ({acc['folds']}-fold, by {acc['grouping']})", 100 * acc["uar_overall"], "%",
                      note=", ".join(f"{k} {100 * v:.1f}%" for k, v in acc["uar_per_corpus"].items())))
    assert [f.key for f in out] == FIGURE_KEYS
    return out


def table(figs: list[Figure], meta: dict) -> str:
    lines = [f"ser-live benchmarks — {meta['date']} — {meta['machine']}" + (" — QUICK (not meaningful)" if meta["quick"] else ""),
             f"load average at start {meta['load_start']}, at end {meta['load_end']}",
             "CPU time taken by the hypervisor (steal, % of the machine's CPU time) during each step: "
             + ", ".join(f"{k} {v['steal_percent']:.1f}%" for k, v in meta["steps"].items()), "",
             "| figure | value | target | met | notes |", "|---|---:|---|---|---|"]
    for f in figs:
        met = "" if f.met is None else ("yes" if f.met else "**NO**")
        value = f"{f.value:.0f}" if abs(f.value) >= 100 else f"{f.value:.2f}" if abs(f.value) < 10 else f"{f.value:.1f}"
        lines.append(f"| {f.label} | {value} {f.unit} | {f.target} | {met} | {f.note} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k) if not isinstance(k, float) else f"{k:g}s": _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# -- main -------------------------------------------------------------------------------------------------


def run(settings: Settings, quick: bool) -> tuple[dict, list[Figure], dict]:
    from ser_live.models import DEFAULT_MODEL
    from ser_live.model import EmotionModel
    from ser_live.segmenter import speech_span

    meta = {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(), "quick": quick,
            "load_start": " ".join(f"{v:.2f}" for v in os.getloadavg()), "settings": settings.__dict__}
    model = EmotionModel(DEFAULT_MODEL)
    paths = clip_paths(settings.clips_per_corpus)
    clips = [load(p) for p in paths]
    spans = [s if (s := speech_span(c)) is not None and s.size >= SR // 2 else c for c in clips]
    utts = {s: utterances(clips, spans, s) for s in (1.0, 3.0, 8.0)}
    r: dict = {"clips": len(clips)}
    rng = np.random.default_rng(0)
    meta["steps"] = {}

    def step(key: str, fn, *args):
        """r[key] = fn(*args), with the step's wall time and the hypervisor's steal over it in meta."""
        t0, s0 = time.monotonic(), steal_s()
        r[key] = fn(*args)
        wall = time.monotonic() - t0
        meta["steps"][key] = {"wall_s": wall, "steal_percent": 100.0 * (steal_s() - s0) / (wall * (os.cpu_count() or 1))}

    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        tmp = Path(tmp)
        log(f"features + inference, {len(clips)} clips x {settings.repeats}")
        step("features", on_worker_thread, bench_features, model, utts, settings.repeats)
        log("the librosa way")
        step("librosa", on_worker_thread, bench_librosa, utts)

        latency_stream = write(tmp / "latency.flac", join_with_pauses(clips[:: max(1, len(clips) // settings.latency_clips)][: settings.latency_clips], rng)[0])
        log(f"latency: paced replay at {settings.latency_speed:g}x of {sf.info(str(latency_stream)).duration:.0f} s")
        step("latency", bench_latency, model, latency_stream, settings.latency_speed)

        long_stream = write(tmp / "long.flac", join_with_pauses(clips, rng, seconds=settings.throughput_minutes * 60)[0])
        log(f"throughput: --speed 0 over {sf.info(str(long_stream)).duration / 60:.1f} min")
        step("throughput", bench_throughput, long_stream)

        n = settings.cpu_seconds + settings.cpu_warmup + 10.0
        silent = write(tmp / "silent.flac", noise_floor(n, rng))
        speech = write(tmp / "speech.flac", join_with_pauses(clips, rng, seconds=n)[0])
        log(f"CPU while listening: {settings.cpu_seconds:g} s silent, {settings.cpu_seconds:g} s speech")
        step("cpu_silent", bench_cpu, silent, settings.cpu_seconds, settings.cpu_warmup)
        step("cpu_speech", bench_cpu, speech, settings.cpu_seconds, settings.cpu_warmup)

        clip3 = write(tmp / "clip3s.flac", np.concatenate([np.zeros(SR // 5, np.float32), utts[3.0][0][: int(2.6 * SR)], np.zeros(SR // 5, np.float32)]))
        log("start-up")
        step("startup", bench_startup, clip3, settings.startup_runs)
        log("stop")
        step("stop", bench_stop, long_stream, settings.stop_runs)

        log(f"memory: {settings.memory_hours:g} h of audio at full speed")
        step("memory", bench_memory, long_stream, settings.memory_hours)
    r["accuracy"] = model_accuracy()
    meta["load_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return r, figures(r), meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny inputs: checks that every figure is produced (timings mean nothing)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"), help="JSON file to write (default: %(default)s)")
    args = p.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    t0 = time.monotonic()
    results, figs, meta = run(settings, args.quick)
    meta["benchmark_wall_s"] = time.monotonic() - t0
    text = table(figs, meta)
    print(text)
    doc = {"meta": meta, "figures": {f.key: {"label": f.label, "value": f.value, "unit": f.unit, "target": f.target,
                                              "met": f.met, "note": f.note} for f in figs},
           "details": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
    log(f"wrote {out} ({meta['benchmark_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
