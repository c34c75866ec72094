"""Does removing the directions along which speakers (or sentences) differ make the encoder model generalise?

    python -m experiments.nuisance_projection --data ../shared/data/ravdess ../shared/data/crema-d

Nuisance attribute projection, as speaker verification uses it against channels: on the standardised
embeddings of a fold's training rows, each speaker's offset is the mean of its rows minus the centroids of their
classes; the top ``k`` principal directions of those offsets are projected out of every row, training and test,
before the head. Unlike a session mean, the projection is one fixed linear map: it needs no other utterance of
the speaker and cannot be misled by a session where one emotion dominates. The same with the sentences'
offsets targets the words the encoder hears. Embeddings of the clean clips (the shipped encoder recipe, cut by the
runtime's segmenter, from the feature cache); a plain logistic-regression head trained on both corpora, as
``ser-train`` trains; scored per corpus in speaker-grouped CV (5 folds, split seeds 0 and 1), in the "sentences
never heard" split of ``ser-evaluate``, and across corpora both ways. The projection is fitted on each fold's
training rows only. Prints one line per split seed and variant.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.preprocessing import StandardScaler

from experiments import probe

#: variant name -> directions removed: speaker offsets' and sentence offsets' (at most groups - 1 each)
VARIANTS = {"none": (0, 0), "speakers 10": (10, 0), "speakers 30": (30, 0), "sentences": (0, 99),
            "speakers 10 + sentences": (10, 99)}


def nuisance_directions(Z: np.ndarray, y: np.ndarray, nuisance: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` principal directions (rows, orthonormal) of the nuisance groups' mean offsets from their
    rows' class centroids."""
    centroids = {c: Z[y == c].mean(axis=0) for c in np.unique(y)}
    resid = Z - np.stack([centroids[c] for c in y])
    offsets = np.stack([resid[nuisance == g].mean(axis=0) for g in np.unique(nuisance)])
    _, _, vt = np.linalg.svd(offsets - offsets.mean(axis=0), full_matrices=False)
    return vt[: min(k, len(offsets) - 1)]


def project_out(Z: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``Z`` without its components along the rows of ``V`` (orthonormalised first)."""
    Q = np.linalg.qr(V.T)[0]
    return Z - (Z @ Q) @ Q.T


def fit_predict(X, y, speakers, sentences, k_speakers: int, k_sentences: int, tr, te) -> np.ndarray:
    """The predictions for ``te`` of a head trained on ``tr`` with the nuisance directions removed (``sentences``:
    each row's nuisance group of words)."""
    Z = StandardScaler().fit(X[tr]).transform(X)
    V = [nuisance_directions(Z[tr], y[tr], g[tr], k) for g, k in ((speakers, k_speakers), (sentences, k_sentences)) if k]
    if V:
        Z = project_out(Z, np.concatenate(V))
    return probe.classifier().fit(Z[tr], y[tr]).predict(Z[te])


def main() -> None:
    args = probe.parser(__doc__, VARIANTS).parse_args()
    e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs)
    groups = np.array([f"{c}:{s}" for c, s in zip(e.corpus, e.sentences)])  # the sentences' nuisance groups
    for seed in args.seeds:
        for name in args.variants:
            probe.report(partial(fit_predict, e.X, e.y, e.speakers, groups, *VARIANTS[name]), e, seed, name, args.jobs)


if __name__ == "__main__":
    main()
