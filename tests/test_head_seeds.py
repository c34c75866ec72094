"""The head-seed study (experiments/head_seeds.py) on a few real speakers: the recipe's cross-corpus tests repeated
with head seeds spaced by the member count, one row per corpus pair, its summary computed from those runs and
written again from the JSON alone with ``--render``."""

import json
import statistics
import subprocess
import sys

from conftest import REPO


def test_each_head_seed_scores_every_corpus_pair_and_the_table_summarises_them(small_corpora, tmp_path):
    out = tmp_path / "seeds.json"
    proc = subprocess.run([sys.executable, "-m", "experiments.head_seeds", "--data", str(small_corpora / "ravdess"),
                           str(small_corpora / "crema-d"), "--cache-dir", str(tmp_path / "cache"), "--head-seeds", "3",
                           "--out", str(out), "--encoder", "none", "--members", "2", "--max-iter", "20", "--jobs", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["recipe"] == ["--encoder", "none", "--members", "2", "--max-iter", "20", "--jobs", "1"]
    by_seed = result["head_seeds"]
    assert list(by_seed) == ["0", "2", "4"]  # two members each: no two runs share a member's seed
    for scores in by_seed.values():
        assert sorted(scores) == ["crema-d->ravdess", "ravdess->crema-d"]
        assert all(0.0 <= v <= 100.0 for v in scores.values())
    runs = [by_seed[s]["crema-d->ravdess"] for s in by_seed]
    row = next(line for line in out.with_suffix(".md").read_text().splitlines() if line.startswith("| crema-d->ravdess"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert [float(c) for c in cells[1:4]] == runs
    assert cells[4] == f"{statistics.mean(runs):.1f}" and cells[6] == f"{max(runs) - min(runs):.1f}"
    table = out.with_suffix(".md").read_text()
    out.with_suffix(".md").unlink()
    again = subprocess.run([sys.executable, "-m", "experiments.head_seeds", "--data", str(small_corpora / "ravdess"),
                            "--out", str(out), "--render"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert out.with_suffix(".md").read_text() == table
