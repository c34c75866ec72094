"""The speaker-adaptation study (experiments/encoder_adaptation.py): its sessions are the ones it says (balanced:
every clip of a speaker once; unbalanced: one emotion about three quarters of the session, every emotion dominant
once), and every method is scored on each."""

import numpy as np

from experiments.encoder_adaptation import _score, _sessions


def test_balanced_and_unbalanced_sessions():
    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b", "c"], 24)
    y = np.tile(np.repeat(["angry", "happy", "sad"], 8), 3)
    idx = np.arange(len(y))[::-1]  # any subset, in any order
    balanced = _sessions(groups, y, idx, False, rng)
    assert len(balanced) == 3 and sorted(np.concatenate(balanced)) == list(range(len(y)))
    assert all(len(set(groups[s])) == 1 for s in balanced)
    skewed = _sessions(groups, y, idx, True, rng)
    assert len(skewed) == 9  # one per speaker and emotion
    dominant = []
    for s in skewed:
        assert len(set(groups[s])) == 1 and len(set(s)) == len(s)
        labels, counts = np.unique(y[s], return_counts=True)
        top = labels[counts.argmax()]
        assert counts.max() == 8 and len(s) == 8 + round(8 / 3)  # all of that emotion, a third as many others
        dominant.append((groups[s][0], top))
    assert len(set(dominant)) == 9  # every emotion dominant once for every speaker


def test_every_method_scores_every_session_kind():
    """On embeddings where each speaker adds its own offset to a clear emotion signal, every method and session
    kind is scored, and every one finds the emotions."""
    rng = np.random.default_rng(1)
    groups = np.repeat([f"s{k}" for k in range(10)], 30)
    y = np.tile(np.repeat(["angry", "happy", "sad"], 10), 10)
    X = np.eye(3)[np.searchsorted(["angry", "happy", "sad"], y)] @ rng.normal(size=(3, 16)) * 4
    X += rng.normal(size=(10, 16))[np.arange(300) // 30] + rng.normal(size=(300, 16)) * 0.3
    scores = _score(X, y, groups, np.arange(300), 0)
    methods = ["none", "running mean", "centroid offset", "centroid offset, head trained as it is used",
               "centroid offset, head trained as it is used, predictions cross-fitted"]
    assert sorted(scores) == sorted(f"{m}, {k}" for m in methods for k in ("balanced", "unbalanced"))
    assert min(scores.values()) > 90.0, scores
