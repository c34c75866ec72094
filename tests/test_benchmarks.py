"""The benchmark command runs and emits every figure (timings are not asserted: this machine is shared)."""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, data_dir


def test_quick_benchmark_emits_every_figure(tmp_path):
    data = data_dir()
    pytest.importorskip("psutil")
    pytest.importorskip("librosa")
    from benchmarks.run import FIGURE_KEYS

    out = tmp_path / "results.json"
    env = dict(os.environ, SER_DATA_DIR=str(data))
    p = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["figures"]) == set(FIGURE_KEYS)
    for key in FIGURE_KEYS:
        fig = doc["figures"][key]
        assert fig["value"] is not None and math.isfinite(fig["value"]), key
        assert fig["label"] in p.stdout, key
    assert doc["meta"]["machine"] and doc["meta"]["date"]
    d = doc["details"]
    assert d["clips"] >= 12
    assert d["latency"]["utterances"] >= 3  # end-of-speech latency measured on real utterances
    assert d["latency"]["features_ahead"] >= d["latency"]["utterances"]  # live: features extracted in the hangover
    steps = doc["meta"]["steps"]  # the hypervisor's share of each step, so a noisy run shows
    assert set(steps) == {"features", "librosa", "latency", "throughput", "cpu_silent", "cpu_speech", "startup", "stop", "memory"}
    assert all(v["wall_s"] > 0 and v["steal_percent"] >= 0 for v in steps.values())
    assert d["throughput"]["exit_code"] == 0 and d["throughput"]["utterances"] > 0
    assert d["memory"]["exit_code"] == 0
    # correctness, not timing: each copy of the long session logs exactly the offline utterances
    assert d["memory"]["copies_exactly_as_offline"] == d["memory"]["copies"] >= 2
    assert d["memory"]["utterances"] == d["memory"]["utterances_expected"] > 0
    assert d["startup"]["exit_code"] == 0
    assert d["stop"]["exit_codes"] == [0] * len(d["stop"]["runs_s"])  # a stop is a clean exit, paced or batch
    assert d["cpu_silent"]["terminal_bytes_per_s"] > 0  # the live view really was drawn


def test_feature_timing_keeps_every_pass_and_each_utterances_fastest():
    """Every utterance of every length is timed once per pass; an utterance's fastest pass is never slower than
    the times pooled over the passes, so its p95 is at most theirs."""
    import numpy as np

    from benchmarks.features import bench_features
    from ser_live.model import EmotionModel
    from ser_live.models import FAST_MODEL

    rng = np.random.default_rng(0)
    utts = {s: [rng.normal(0, 0.1, int(s * 16000)).astype(np.float32) for _ in range(4)] for s in (1.0, 3.0, 8.0)}
    out = bench_features(EmotionModel(FAST_MODEL), utts, repeats=3)
    assert set(out) == set(utts)
    for s in utts:
        assert out[s]["total_ms"]["n"] == out[s]["cpu_ms"]["n"] == 12 and out[s]["best_ms"]["n"] == 4
        assert out[s]["best_ms"]["p95"] <= out[s]["total_ms"]["p95"]
        assert out[s]["best_ms"]["median"] <= out[s]["total_ms"]["max"]
