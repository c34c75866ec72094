"""Throughput of ``ser-batch`` on this machine with 1 and 2 CPUs against ``ser-live --speed 0`` on one core,
the start-up cost of Ray, and the capacity plan that follows from them.

    python -m benchmarks.batch [--quick] [--models default fast] [--out reports/batch-benchmark]

Two archives: ``recordings``, long recordings of real speech with pauses (clips of both corpora joined over a
-60 dBFS floor, as the other benchmarks' streams), written as FLAC; and ``clips``, real corpus clips of 2-5 s
as they are (links to the FLAC files), where the cost per file shows. Every command runs twice, alternating,
on a fresh output folder; the table gives the faster run (the JSON has both). The capacity plan is drawn from
the recordings. Writes OUT.json and OUT.md; the table also goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import clip_paths, load, log, one_core, write
from benchmarks.run import machine
from ser_live.features import SAMPLE_RATE
from ser_live.train.streams import join_with_pauses

#: the price of one vCPU-hour the cost column assumes (on-demand compute-optimised cloud instances, late 2026,
#: are about 0.04-0.05 USD); the plan gives core-hours too, for any other price
USD_PER_VCPU_HOUR = 0.045
_LIVE_RE = re.compile(r"session: (\d+) utterances in ([\d.]+) s wall")
_BATCH_RE = re.compile(r"scored (\d+) files \(([\d.]+) h of audio, (\d+) utterances\) in ([\d.]+) s")

RAY_START = ("import time; t = time.perf_counter(); import ray; t1 = time.perf_counter(); "
             "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level='ERROR'); "
             "t2 = time.perf_counter(); ray.shutdown(); print(t1 - t, t2 - t1)")


def make_archive(folder: Path, files: int, minutes: float) -> float:
    """``files`` recordings of ``minutes`` each; their total duration in seconds."""
    clips = [load(p) for p in clip_paths(60)]
    rng = np.random.default_rng(0)
    total = 0.0
    for i in range(files):
        order = [clips[j] for j in rng.permutation(len(clips))]
        audio, _ = join_with_pauses(order, rng, seconds=minutes * 60)
        write(folder / f"call-{i:03d}.flac", audio)
        total += audio.size / SAMPLE_RATE
    return total


def link_clips(folder: Path, per_corpus: int) -> float:
    """Links to ``per_corpus`` real clips of each corpus; their total duration in seconds."""
    import soundfile as sf

    total = 0.0
    for i, clip in enumerate(clip_paths(per_corpus)):
        (folder / f"{i:05d}-{clip.name}").symlink_to(clip)
        total += sf.info(str(clip)).duration
    return total


def _exe(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", f"ser_live.{'cli' if name == 'ser-live' else 'batch'}"]


def run_live(model: str, archive: Path, audio_s: float) -> dict:
    cmd = one_core() + _exe("ser-live") + ["--model", model, "--file", str(archive), "--speed", "0", "--plain"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = _LIVE_RE.search(p.stderr)
    scoring = float(m.group(2)) if m else math.nan
    return {"exit_code": p.returncode, "utterances": int(m.group(1)) if m else 0, "process_wall_s": wall,
            "scoring_wall_s": scoring, "x_real_time": audio_s / scoring, "x_real_time_with_startup": audio_s / wall}


def run_batch(model: str, archive: Path, audio_s: float, cpus: int, out: Path) -> dict:
    cmd = _exe("ser-batch") + [str(archive), "--out", str(out), "--model", model, "--cpus", str(cpus)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = _BATCH_RE.search(p.stdout)
    scoring = float(m.group(4)) if m else math.nan
    return {"exit_code": p.returncode, "files": int(m.group(1)) if m else 0, "utterances": int(m.group(3)) if m else 0,
            "process_wall_s": wall, "scoring_wall_s": scoring, "x_real_time": audio_s / scoring,
            "x_real_time_with_startup": audio_s / wall, "stderr": p.stderr[-500:]}


def ray_start_up(runs: int) -> dict:
    times = [tuple(map(float, subprocess.run([sys.executable, "-c", RAY_START], capture_output=True, text=True,
                                             check=True).stdout.split()[-2:])) for _ in range(runs)]
    return {"import_s": statistics.median(t[0] for t in times), "init_s": statistics.median(t[1] for t in times),
            "runs": times}


def plan(per_cpu_x: float) -> dict:
    """Core-hours and cost per 1,000 hours of audio at ``per_cpu_x`` times real time per CPU, and the cores
    that score a 10,000-hour archive overnight (8 hours)."""
    core_hours = 1000.0 / per_cpu_x
    return {"x_real_time_per_cpu": per_cpu_x, "core_hours_per_1000h": core_hours,
            "usd_per_1000h": core_hours * USD_PER_VCPU_HOUR, "cores_for_10000h_in_8h": math.ceil(10 * core_hours / 8)}


def plans(m: dict) -> tuple[dict, dict]:
    """The plans from the 2-CPU run's throughput per CPU (the driver and Ray's own processes sharing the two
    cores) and from the 1-CPU run's (one actor, the driver on the other core): the slower first."""
    two, one = plan(m["batch2"]["x_real_time"] / 2), plan(m["batch1"]["x_real_time"])
    return (two, one) if two["x_real_time_per_cpu"] <= one["x_real_time_per_cpu"] else (one, two)


def _span(low: int, high: int) -> str:
    """``low-high``, or one number when they are equal."""
    return str(low) if low == high else f"{low}-{high}"


def report(r: dict) -> str:
    a = r["archives"]
    rec, clips = a["recordings"], a["clips"]
    lines = [f"ser-batch benchmark — {r['date']} — {r['machine']}" + (" — QUICK (not meaningful)" if r["quick"] else ""),
             f"archives: recordings, {rec['files']} recordings of {rec['minutes']:g} min ({rec['audio_s'] / 3600:.2f} h of "
             f"speech with pauses, FLAC); clips, {clips['files']} corpus clips ({clips['audio_s'] / 3600:.2f} h, FLAC); "
             f"load average at start {r['load_start']}, at end {r['load_end']}",
             f"Ray: import {r['ray']['import_s']:.2f} s, ray.init of a local 2-CPU Ray {r['ray']['init_s']:.2f} s "
             "(median of 3)", "",
             "| archive | model | ser-live --speed 0, one core | ser-batch, 1 CPU | engine overhead (1 CPU / ser-live) "
             "| ser-batch, 2 CPUs | 2 CPUs / 1 CPU | ser-batch 2 CPUs with start-up |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for archive, info in a.items():
        for name, m in info["models"].items():
            lines.append(f"| {archive} | {name} | {m['live']['x_real_time']:.0f}x | {m['batch1']['x_real_time']:.0f}x | "
                         f"{m['overhead_ratio']:.2f} | {m['batch2']['x_real_time']:.0f}x | {m['scaling']:.2f} | "
                         f"{m['batch2']['x_real_time_with_startup']:.0f}x ({m['batch2']['process_wall_s']:.1f} s) |")
    lines += ["", "Capacity plan (recordings), between the throughput per CPU of the 2-CPU run (the driver and Ray's "
              "processes share the two cores) and that of the 1-CPU run (one actor, the driver on the other core); "
              f"cost at {USD_PER_VCPU_HOUR} USD per vCPU-hour:", "",
              "| model | x real time per CPU | core-hours per 1,000 h of audio | cost per 1,000 h | cores to score "
              "10,000 h in 8 h |", "|---|---:|---:|---:|---:|"]
    for name, m in rec["models"].items():
        low, high = plans(m)
        lines.append(f"| {name} | {low['x_real_time_per_cpu']:.0f}-{high['x_real_time_per_cpu']:.0f}x | "
                     f"{high['core_hours_per_1000h']:.1f}-{low['core_hours_per_1000h']:.1f} | "
                     f"{high['usd_per_1000h']:.2f}-{low['usd_per_1000h']:.2f} USD | "
                     f"{_span(high['cores_for_10000h_in_8h'], low['cores_for_10000h_in_8h'])} |")
    return "\n".join(lines)


def measure(models: list[str], archive: Path, audio_s: float, tmp: Path) -> dict:
    """Each model's runs on one archive: ser-live, ser-batch 1 CPU, 2 CPUs, twice, alternating."""
    out = {}
    for name in models:
        runs: dict[str, list[dict]] = {"live": [], "batch1": [], "batch2": []}
        for round_ in range(2):
            log(f"{archive.name}, {name}: round {round_ + 1}: ser-live, ser-batch 1 CPU, ser-batch 2 CPUs")
            runs["live"].append(run_live(name, archive, audio_s))
            for cpus in (1, 2):
                runs[f"batch{cpus}"].append(run_batch(name, archive, audio_s, cpus,
                                                      tmp / f"out-{archive.name}-{name}-{cpus}-{round_}"))
        best = {k: max(v, key=lambda x: x["x_real_time"] if x["x_real_time"] == x["x_real_time"] else -1)
                for k, v in runs.items()}
        out[name] = {**best, "runs": runs, "overhead_ratio": best["batch1"]["x_real_time"] / best["live"]["x_real_time"],
                     "scaling": best["batch2"]["x_real_time"] / best["batch1"]["x_real_time"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny archive, to check the script runs (timings meaningless)")
    ap.add_argument("--models", nargs="+", default=["default", "fast"])
    ap.add_argument("--out", type=Path, default=Path("reports/batch-benchmark"))
    ap.add_argument("--render", action="store_true", help="only write OUT.md again from OUT.json (no measuring)")
    args = ap.parse_args(argv)
    if args.render:
        text = report(json.loads(args.out.with_suffix(".json").read_text()))
        args.out.with_suffix(".md").write_text(text + "\n")
        print(text)
        return 0
    files, minutes, per_corpus = (4, 0.5, 10) if args.quick else (24, 10.0, 600)
    r: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "quick": args.quick,
               "load_start": round(os.getloadavg()[0], 2), "archives": {}}
    with tempfile.TemporaryDirectory() as tmp:
        recordings, clips = Path(tmp) / "recordings", Path(tmp) / "clips"
        recordings.mkdir()
        clips.mkdir()
        log(f"writing {files} recordings of {minutes:g} min, linking {2 * per_corpus} clips")
        rec = {"files": files, "minutes": minutes, "audio_s": make_archive(recordings, files, minutes)}
        short = {"files": 2 * per_corpus, "audio_s": link_clips(clips, per_corpus)}
        log("Ray start-up")
        r["ray"] = ray_start_up(3)
        for folder, info in ((recordings, rec), (clips, short)):
            info["models"] = measure(args.models, folder, info["audio_s"], Path(tmp))
            r["archives"][folder.name] = info
    r["load_end"] = round(os.getloadavg()[0], 2)
    text = report(r)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
