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

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from experiments import corpus_parser
from ser_live.train import corpora, dataset, evaluate, recipe
from ser_live.train.cli import make_extractor

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


def fit_predict(X, y, speakers, sentences, tr, te, k_speakers: int, k_sentences: int) -> tuple[np.ndarray, np.ndarray]:
    """(test rows, their predictions) of a head trained on ``tr`` with the nuisance directions removed."""
    Z = StandardScaler().fit(X[tr]).transform(X)
    V = [nuisance_directions(Z[tr], y[tr], g[tr], k) for g, k in ((speakers, k_speakers), (sentences, k_sentences)) if k]
    if V:
        Z = project_out(Z, np.concatenate(V))
    return te, LogisticRegression(C=0.01, max_iter=3000).fit(Z[tr], y[tr]).predict(Z[te])


def score(X, y, speakers, sentences, corpus, seed: int, variant: tuple[int, int], jobs: int) -> dict[str, float]:
    """UAR % per corpus in CV and with sentences never heard (``sentences``: each clip's, None where unknown);
    with ``seed`` 0 also across corpora."""
    splits = {"CV": evaluate.grouped_splits(y, speakers, 5, seed),
              "sentences never heard": [p for _, by_text in evaluate.new_text_splits(
                  y, speakers, corpus, sentences, folds=5, seed=seed) for p in by_text]}
    sentences = np.array([f"{c}:{s}" for c, s in zip(corpus, sentences)])  # the nuisance groups
    pairs = evaluate.corpus_pairs(y, speakers, corpus) if seed == 0 else []
    splits["across"] = [(tr, te) for _, _, _, tr, te in pairs]
    out = {}
    for kind, sp in splits.items():
        done = Parallel(n_jobs=jobs)(delayed(fit_predict)(X, y, speakers, sentences, tr, te, *variant) for tr, te in sp)
        if kind == "across":
            out.update({f"{a} -> {b}": 100 * evaluate.uar(y[te], p) for (a, b, *_), (te, p) in zip(pairs, done)})
            continue
        pred = np.full(len(y), None, dtype=object)
        for te, p in done:
            pred[te] = p
        for c in sorted(set(corpus)):
            m = (corpus == c) & (pred != None)  # noqa: E711 (an object array)
            out[f"{kind} {c}"] = 100 * evaluate.uar(y[m], pred[m].astype(str))
    return out


def main() -> None:
    p = corpus_parser(__doc__, seeds=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = p.parse_args()
    roots = [d.resolve() for d in args.data]
    clips = corpora.discover(roots, corpora.resolve_emotions(None)).clips
    extractor = make_extractor(recipe.ENCODER, recipe.ENCODER_BLOCKS, False, args.cache_dir)
    fs = dataset.build_features(clips, roots=roots, cache_dir=args.cache_dir, jobs=args.jobs,
                                rank=evaluate.arrival_rank(np.array([c.speaker for c in clips]), 0), extractor=extractor)
    X = fs.X.astype(np.float64)
    y = np.array([c.label for c in fs.clips])
    speakers = np.array([c.speaker for c in fs.clips])
    corpus = np.array([c.corpus for c in fs.clips])
    sentences = [corpora.sentence(c) for c in fs.clips]
    for seed in args.seeds:
        for name in args.variants:
            scores = score(X, y, speakers, sentences, corpus, seed, VARIANTS[name], args.jobs)
            print(f"split seed {seed}, {name}: " + "; ".join(f"{k} {v:.1f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
