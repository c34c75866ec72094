"""ser-live real-time performance benchmarks: one command, a table and a JSON file.

    python -m benchmarks.run [--quick] [--model NAME|PATH] [--out benchmarks/results.json]

Figures (each printed with its target; see benchmarks/README.md):

* features + inference for one utterance of 1, 3 and 8 s (the model's own input, ``model.extract``),
  median and p95 over >= 200 real clips, one thread; and the same for the librosa MFCC-40 + chroma + mel-128 means + MLP(300) way of the
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
* the model's held-out (speaker-grouped cross-validation) UAR, from its card.

Every figure uses the model of ``--model`` (default: the shipped model); the ones that run ser-live as a
process pass it on. The figures are measured in ``benchmarks/features.py``, ``latency.py``,
``throughput.py`` and ``resources.py``; this module runs them and writes the table and the JSON file.

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
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from benchmarks.common import (  # noqa: E402
    REPO, SR, Settings, clip_paths, load, log, noise_floor, steal_s, utterances, write)
from benchmarks.features import bench_features, bench_librosa, on_worker_thread  # noqa: E402
from benchmarks.latency import bench_latency  # noqa: E402
from benchmarks.resources import bench_cpu, bench_memory, bench_startup, bench_stop  # noqa: E402
from benchmarks.throughput import bench_throughput  # noqa: E402
from ser_live.train.streams import join_with_pauses  # noqa: E402


# -- accuracy -------------------------------------------------------------------------------------------


def model_accuracy(model) -> dict:
    """The model's speaker-grouped cross-validation UAR, from its card (NaN when the card has none)."""
    from ser_live.models import DEFAULT_MODEL

    cv = model.card.get("metrics", {}).get("cross_validation") or {}
    return {
        "model": model.path.name,
        "shipped": model.path.resolve() == DEFAULT_MODEL.resolve(),
        "folds": cv.get("folds"),
        "grouping": cv.get("grouping"),
        "uar_overall": cv.get("overall", {}).get("uar", math.nan),
        "uar_per_corpus": {k: v["uar"] for k, v in cv.get("per_corpus", {}).items()},
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
    "features_inference_1s", "features_inference_3s", "features_inference_8s", "features_inference_3s_best",
    "librosa_way_1s", "librosa_way_3s", "librosa_way_8s",
    "speedup_vs_librosa_1s", "speedup_vs_librosa_3s", "speedup_vs_librosa_8s",
    "end_of_speech_to_result", "end_of_speech_to_screen", "hangover_wait", "processing",
    "replay_throughput", "cpu_silent", "cpu_speech", "startup", "stop_to_exit", "peak_rss", "rss_growth_8h",
    "long_session_utterances", "long_session_processing_drift", "long_session_latency_drift",
    "heldout_uar",
]


# Targets by the model's input: the handcrafted-features model is held to tighter figures than a model that
# runs a pretrained encoder (about ten times the work per utterance); the librosa ratio only concerns the former.
TARGETS = {
    "handcrafted": {"work_3s_ms": 3.0, "speedup": 6.0, "latency_extra_ms": 20.0, "throughput_x": 500.0,
                    "cpu_silent": 5.0, "cpu_speech": 8.0, "peak_rss_mb": 200.0},
    "encoder": {"work_3s_ms": 20.0, "speedup": None, "latency_extra_ms": 30.0, "throughput_x": 150.0,
                "cpu_silent": 5.0, "cpu_speech": 15.0, "peak_rss_mb": 300.0},
}


def figures(r: dict) -> list[Figure]:
    out = []
    ours, lib = r["features"], r["librosa"]
    goal = TARGETS["encoder" if "encoder" in r["input"] else "handcrafted"]
    for s in (1.0, 3.0, 8.0):
        t = ours[s]["total_ms"]
        limit = goal["work_3s_ms"]
        out.append(Figure(f"features_inference_{s:g}s", f"features+inference, {s:g} s utterance (p50 / p95)", t["p95"], "ms",
                          f"p95 <= {limit:g} ms" if s == 3.0 else "", t["p95"] <= limit if s == 3.0 else None,
                          f"p50 {t['median']:.2f} ms, n={t['n']}"))
    t = ours[3.0]["best_ms"]
    out.append(Figure("features_inference_3s_best", "  each utterance's fastest pass, 3 s (p50 / p95)", t["p95"], "ms",
                      note=f"p50 {t['median']:.2f} ms, {t['n']} utterances; host noise removed"))
    for s in (1.0, 3.0, 8.0):
        t = lib[s]["total_ms"]
        out.append(Figure(f"librosa_way_{s:g}s", f"librosa MFCC40+chroma+mel128 + MLP(300), {s:g} s (p50 / p95)", t["p95"], "ms",
                          note=f"p50 {t['median']:.2f} ms, n={t['n']}"))
    for s in (1.0, 3.0, 8.0):
        ratio = lib[s]["total_ms"]["median"] / ours[s]["total_ms"]["median"]
        out.append(Figure(f"speedup_vs_librosa_{s:g}s", f"ours faster than the librosa way, {s:g} s (ratio of p50)", ratio, "x",
                          f">= {goal['speedup']:g}x" if goal["speedup"] else "",
                          ratio >= goal["speedup"] if goal["speedup"] else None))
    lat = r["latency"]
    budget = lat["expected_hangover_wait_ms"] + goal["latency_extra_ms"]
    t = lat["end_to_ready_ms"]
    out.append(Figure("end_of_speech_to_result", "last voiced frame in -> result ready (p50 / p95)", t["p95"], "ms",
                      f"p95 <= hangover + {goal['latency_extra_ms']:g} = {budget:g} ms", t["p95"] <= budget,
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
                      tp["x_real_time"], "x real time", f">= {goal['throughput_x']:g}x", tp["x_real_time"] >= goal["throughput_x"],
                      f"{tp['audio_s'] / 60:.1f} min audio; {tp['x_real_time_with_startup']:.0f}x incl. start-up; "
                      f"{tp['x_real_time_per_cpu_s']:.0f}x per CPU second incl. start-up"))
    for key, name in (("cpu_silent", "silent"), ("cpu_speech", "speech")):
        c, target = r[key], goal[key]
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
    out.append(Figure("peak_rss", "peak RSS (live view run and long replay)", peak, "MB", f"<= {goal['peak_rss_mb']:g} MB",
                      peak <= goal["peak_rss_mb"]))
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
    name = "shipped model" if acc["shipped"] else f"model {acc['model']}"
    out.append(Figure("heldout_uar", f"{name} held-out UAR ({acc['folds']}-fold, by {acc['grouping']})", 100 * acc["uar_overall"], "%",
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


def run(settings: Settings, quick: bool, model_path: Path) -> tuple[dict, list[Figure], dict]:
    from ser_live.model import EmotionModel, ModelError
    from ser_live.segmenter import speech_span

    meta = {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(), "quick": quick,
            "load_start": " ".join(f"{v:.2f}" for v in os.getloadavg()), "settings": settings.__dict__,
            "model": str(model_path)}
    try:
        model = EmotionModel(model_path)
    except ModelError as e:
        sys.exit(f"benchmarks: {e}")
    paths = clip_paths(settings.clips_per_corpus)
    clips = [load(p) for p in paths]
    spans = [s if (s := speech_span(c)) is not None and s.size >= SR // 2 else c for c in clips]
    utts = {s: utterances(clips, spans, s) for s in (1.0, 3.0, 8.0)}
    r: dict = {"clips": len(clips), "input": model.extractor.kind}
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
        step("throughput", bench_throughput, model_path, long_stream)

        n = settings.cpu_seconds + settings.cpu_warmup + 10.0
        silent = write(tmp / "silent.flac", noise_floor(n, rng))
        speech = write(tmp / "speech.flac", join_with_pauses(clips, rng, seconds=n)[0])
        log(f"CPU while listening: {settings.cpu_seconds:g} s silent, {settings.cpu_seconds:g} s speech")
        step("cpu_silent", bench_cpu, model_path, silent, settings.cpu_seconds, settings.cpu_warmup)
        step("cpu_speech", bench_cpu, model_path, speech, settings.cpu_seconds, settings.cpu_warmup)

        clip3 = write(tmp / "clip3s.flac", np.concatenate([np.zeros(SR // 5, np.float32), utts[3.0][0][: int(2.6 * SR)], np.zeros(SR // 5, np.float32)]))
        log("start-up")
        step("startup", bench_startup, model_path, clip3, settings.startup_runs)
        log("stop")
        step("stop", bench_stop, model_path, long_stream, settings.stop_runs)

        log(f"memory: {settings.memory_hours:g} h of audio at full speed")
        step("memory", bench_memory, model_path, long_stream, settings.memory_hours)
    r["accuracy"] = model_accuracy(model)
    meta["load_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return r, figures(r), meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny inputs: checks that every figure is produced (timings mean nothing)")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="the model every figure uses: a shipped model's name or an ONNX file (default: the shipped model)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"), help="JSON file to write (default: %(default)s)")
    args = p.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    t0 = time.monotonic()
    from ser_live.models import resolve

    results, figs, meta = run(settings, args.quick, resolve(args.model))
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
