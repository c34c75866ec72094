"""Replay throughput of ``ser-live --speed 0`` over >= 20 min of speech with pauses, on one core."""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import soundfile as sf

from benchmarks.common import child_env, one_core, ser_live_cmd

_SESSION_RE = re.compile(r"session: (\d+) utterances in ([\d.]+) s wall")


def bench_throughput(model: Path, stream: Path) -> dict:
    audio_s = sf.info(str(stream)).duration
    cmd = one_core() + ser_live_cmd(model) + ["--file", str(stream), "--speed", "0", "--plain"]
    import resource

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    m = _SESSION_RE.search(p.stderr)  # --plain: data on stdout, the summary on stderr
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
