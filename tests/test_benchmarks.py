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
