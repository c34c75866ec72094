"""The nuisance projection study (experiments/nuisance_projection.py): the projection removes what tells the
training speakers apart and nothing else, and every variant is scored in each of the study's splits."""

from functools import partial

import numpy as np

from experiments.nuisance_projection import VARIANTS, fit_predict, nuisance_directions, project_out
from experiments.probe import score


def _offset_spread(Z, y, speakers) -> float:
    centroids = {c: Z[y == c].mean(axis=0) for c in np.unique(y)}
    resid = Z - np.stack([centroids[c] for c in y])
    offsets = np.stack([resid[speakers == s].mean(axis=0) for s in np.unique(speakers)])
    return float(np.abs(offsets - offsets.mean(axis=0)).max())


def test_the_projection_removes_the_speakers_offsets_and_keeps_the_classes():
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(6), 40)
    y = np.tile(np.arange(4), 60)
    class_means = rng.normal(size=(4, 32)) * 3
    voice = rng.normal(size=(6, 32)) * 5  # each speaker's offset, in any direction
    Z = class_means[y] + voice[speakers] + rng.normal(size=(240, 32)) * 0.1
    V = nuisance_directions(Z, y, speakers, k=10)
    assert V.shape == (5, 32)  # at most one direction fewer than speakers
    P = project_out(Z, V)
    assert _offset_spread(Z, y, speakers) > 1.0 and _offset_spread(P, y, speakers) < 1e-9
    assert np.allclose(project_out(P, V), P)  # a projection
    inside = rng.normal(size=(3, 32))
    inside -= (inside @ np.linalg.qr(V.T)[0]) @ np.linalg.qr(V.T)[0].T  # orthogonal to every removed direction
    assert np.allclose(project_out(inside, V), inside)
    # fewer directions remove less: the first is the one along which the speakers' offsets differ most
    assert _offset_spread(project_out(Z, V[:1]), y, speakers) < _offset_spread(Z, y, speakers)


def test_every_variant_is_scored_in_cv_on_new_sentences_and_across_corpora():
    """Two corpora of speakers who each add an offset to a clear emotion signal: every variant finds the emotions
    in CV, on sentences never heard and from one corpus to the other."""
    rng = np.random.default_rng(1)
    n = 480
    corpus = np.repeat(["a", "b"], n // 2)
    speakers = np.array([f"{c}{k // 24}" for c, k in zip(corpus, np.arange(n))])
    y = np.tile(np.repeat(["angry", "happy", "sad"], 4), n // 12)
    sentences = np.tile(["one", "two", "three", "four"], n // 4)
    X = np.eye(3)[np.searchsorted(["angry", "happy", "sad"], y)] @ rng.normal(size=(3, 24)) * 4
    X += rng.normal(size=(20, 24))[np.arange(n) // 24] + rng.normal(size=(n, 24)) * 0.3
    for variant in VARIANTS.values():
        groups = np.array([f"{c}:{s}" for c, s in zip(corpus, sentences)])
        scores = score(partial(fit_predict, X, y, speakers, groups, *variant), y, speakers, list(sentences), corpus, 0, jobs=1)
        assert sorted(scores) == ["CV a", "CV b", "a -> b", "b -> a", "sentences never heard a", "sentences never heard b"]
        assert min(scores.values()) > 90.0, (variant, scores)
