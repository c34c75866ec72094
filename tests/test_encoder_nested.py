"""The nested speaker-grouped CV behind the default model's encoder blocks (experiments/encoder_nested.py), on a
few real speakers: every clip is scored once per split by an outer fold, and each outer fold's choice is the
one its inner folds scored best."""

import json
import subprocess
import sys

from conftest import REPO

def test_each_outer_fold_scores_the_choice_its_inner_folds_made(small_corpora, tmp_path):
    cache = tmp_path / "cache"  # the study derives Smart Turn's encoder from its pinned package into it
    out = tmp_path / "nested.json"
    proc = subprocess.run([sys.executable, "-m", "experiments.encoder_nested", "--data", str(small_corpora / "ravdess"),
                           str(small_corpora / "crema-d"), "--cache-dir", str(cache), "--seeds", "0",
                           "--max-iter", "20", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert sorted(results) == ["crema-d seed 0", "ravdess seed 0"]
    for key, folds in results.items():
        assert len(folds) == 5
        true = sum((f["true"] for f in folds), [])
        assert len(true) == 40  # five speakers, eight clips each: every clip scored once, by one outer fold
        for f in folds:
            best_input = max(f["inner_inputs"], key=f["inner_inputs"].get)
            best_head = max(f["inner_heads"], key=f["inner_heads"].get)
            assert f["chosen"] == [best_input, int(best_head)]
            assert len(f["chosen_pred"]) == len(f["reference_pred"]) == len(f["true"])
            assert 0.0 <= f["chosen_uar"] <= 100.0 and 0.0 <= f["reference_uar"] <= 100.0
    table = out.with_suffix(".md").read_text()
    assert "| ravdess seed 0 |" in table and "| crema-d seed 0 |" in table
