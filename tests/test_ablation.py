"""The ablation harness (experiments/ablation.py), which produces reports/ablation.md, on a few real speakers."""

import json
import subprocess
import sys

import pytest

from conftest import REPO

HARNESS = [sys.executable, "-m", "experiments.ablation"]


def test_a_variant_gives_one_row_with_every_figure(small_corpora, tmp_path):
    out = tmp_path / "rows.jsonl"
    proc = subprocess.run(HARNESS + ["--data", str(small_corpora / "ravdess"), str(small_corpora / "crema-d"),
                                     "--robustness", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                                     "--variant", "K=1,VF=-55,RV=1,CF=floor,SP=1,CD=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["variant"] == {"K": "1", "VF": "-55", "RV": "1", "CF": "floor", "SP": "1", "CD": "1"} and rows[0]["seed"] == 0
    figures = {f"cv_{c}_{corpus}" for c in ("clean", "floor", "gain-20", "white15", "babble15", "telephone", "room", "opus", "telephone_cut")
               for corpus in ("ravdess", "crema-d")}
    figures |= {f"x_{a}->{b}{s}" for a, b in (("ravdess", "crema-d"), ("crema-d", "ravdess")) for s in ("", "_floor")}
    assert figures <= rows[0].keys()
    assert all(0.0 <= rows[0][k] <= 1.0 for k in figures)
    assert json.loads(proc.stdout.splitlines()[-1]) == rows[0]  # printed as well as appended


@pytest.mark.parametrize("variant, message", [("K=0,VFX=-50", "unknown key 'VFX'"), ("K=", "no value for K"),
                                              ("BW=narrow", "BW=narrow in variant 'BW=narrow' is not one of full, telephone"),
                                              ("CF=-60", "CF=-60 in variant 'CF=-60' is not one of none, floor")])
def test_a_mistyped_variant_is_one_line_before_anything_runs(small_corpora, tmp_path, variant, message):
    out = tmp_path / "rows.jsonl"
    proc = subprocess.run(HARNESS + ["--data", str(small_corpora / "ravdess"), "--out", str(out),
                                     "--variant", "K=0", "--variant", variant],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists()  # the valid first variant did not run either


def test_a_floor_under_the_training_rows_is_refused_with_new_text(small_corpora, tmp_path):
    """--new-text trains its own models on the clean rows: with CF=floor its row would be mislabelled."""
    out = tmp_path / "rows.jsonl"
    proc = subprocess.run(HARNESS + ["--data", str(small_corpora / "ravdess"), "--out", str(out), "--new-text",
                                     "--variant", "K=0,CF=floor"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "CF=floor cannot be combined with --new-text" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not out.exists()
