"""The nested speaker-grouped CV behind the default model's encoder blocks (experiments/encoder_nested.py), on a
few real speakers: every clip is scored once per split by an outer fold, and each outer fold's choice is the
one its inner folds scored best, among Smart Turn's blocks or, with --whisper, Whisper base's beside them."""

import json
import subprocess
import sys

import numpy as np
from conftest import REPO


def test_each_outer_fold_scores_the_choice_its_inner_folds_made(small_corpora, encoder_cache, tmp_path):
    cache = encoder_cache  # the study derives Smart Turn's encoder from its pinned package into it
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


def test_the_whisper_study_chooses_among_joined_encoders_and_keeps_its_reference(small_corpora, encoder_cache,
                                                                                  tmp_path):
    out = tmp_path / "nested-whisper.json"  # one corpus: the folds' mechanics are the test above's
    proc = subprocess.run([sys.executable, "-m", "experiments.encoder_nested", "--data", str(small_corpora / "ravdess"),
                           "--cache-dir", str(encoder_cache), "--seeds", "0",
                           "--max-iter", "20", "--whisper", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from experiments.encoder_nested import WHISPER_INPUTS, WHISPER_REFERENCE

    results = json.loads(out.read_text())
    assert list(results) == ["ravdess seed 0"] and len(results["ravdess seed 0"]) == 5
    for folds in results.values():
        for f in folds:
            assert list(f["inner_inputs"]) == list(WHISPER_INPUTS)
            assert f["chosen"][0] == max(f["inner_inputs"], key=f["inner_inputs"].get)
            if f["chosen"] == list(WHISPER_REFERENCE):
                assert f["reference_pred"] == f["chosen_pred"]
    assert "inner: whisper-base 2 + smart-turn 1+2+3" in out.with_suffix(".md").read_text()


def test_an_input_s_columns_are_its_blocks_in_each_encoder_s_embedding():
    from experiments.encoder_nested import ST, WB, columns

    st = 2 * 3 * 384  # Smart Turn's embedding: the means of blocks 1-3 side by side, then their sds
    # Smart Turn's block 2 alone: its mean, then its sd; the mean alone
    assert np.array_equal(columns({ST: (2,)}, (ST,)), np.r_[384:768, 3 * 384 + 384:3 * 384 + 768])
    assert np.array_equal(columns({ST: (2,)}, (ST,), mean_only=True), np.arange(384, 768))
    # Whisper base's block 3 (of six, 512 values) beside Smart Turn's block 1: after Smart Turn's whole embedding
    got = columns({WB: (3,), ST: (1,)}, (ST, WB))
    assert np.array_equal(got, np.r_[0:384, 3 * 384:4 * 384, st + 1024:st + 1536, st + 3072 + 1024:st + 3072 + 1536])
