"""Does speaker adaptation of the encoder model survive sessions where one emotion dominates?

    python -m experiments.encoder_adaptation --data ../shared/data/ravdess ../shared/data/crema-d

Embeddings of the clean clips (the shipped encoder recipe, cut by the runtime's segmenter, from the feature
cache), a plain logistic-regression head per corpus (5 folds grouped by speaker, split seeds 0 and 1), each
held-out speaker heard causally (only utterances already heard) in a balanced session (all its clips, seeded
order) and in unbalanced sessions (one per emotion: all its clips of that emotion plus a third as many others).
Five ways to adapt:
- none: every utterance alone;
- running mean: the utterance minus the session's running mean including itself, shrunk to the training mean
  with a weight of 3 utterances (the fast model's method);
- centroid offset: the session's mean of (utterance - the training centroid of the class an unadapted head
  predicts for it), shrunk by n / (n + 10), removed before a head trained on speaker-offset-free rows;
- centroid offset, head trained as it is used: the same offset, removed before a head trained on the training
  speakers' rows adapted the same way (causally, with the unadapted head's predicted classes, shrunk) in a
  balanced session and in unbalanced ones of each speaker, so it learns on the partly adapted inputs it meets;
  the unadapted head that predicts those classes was trained on the same speakers, so its predictions are
  nearer the true classes than a new speaker's;
- the same with those predictions cross-fitted: each training speaker's classes predicted by a head trained
  on the other training speakers (4 folds), as the runtime's predictions for a speaker it never heard.
Prints UAR per corpus, split and session kind.
"""

from __future__ import annotations

import numpy as np

from experiments import corpus_parser, probe
from ser_live.train import evaluate


def _head(X: np.ndarray, y: np.ndarray):
    return probe.linear_head().fit(X, y)


def _sessions(groups, y, idx, skewed: bool, rng) -> list[np.ndarray]:
    out = []
    for s in sorted(set(groups[idx])):
        mine = idx[groups[idx] == s]
        if not skewed:
            out.append(rng.permutation(mine))
            continue
        for label in sorted(set(y[mine])):
            dominant, others = mine[y[mine] == label], mine[y[mine] != label]
            extra = rng.choice(others, size=max(1, round(dominant.size / 3)), replace=False)
            out.append(rng.permutation(np.concatenate([dominant, extra])))
    return out


def _score(X, y, groups, idx, seed: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, list]] = {}
    for tr, te in evaluate.grouped_splits(y[idx], groups[idx], 5, seed):
        tr, te = idx[tr], idx[te]
        base = _head(X[tr], y[tr])
        classes = base.classes_
        centroids = np.stack([X[tr][y[tr] == c].mean(axis=0) for c in classes])
        offset_free = X[tr].copy()
        for s in set(groups[tr]):
            m = groups[tr] == s
            offset_free[m] -= (X[tr][m] - centroids[np.searchsorted(classes, y[tr][m])]).mean(axis=0)
        adapted = _head(offset_free, y[tr])

        def offset_removed(x: np.ndarray, cls: np.ndarray) -> np.ndarray:
            """A session's rows minus its causal, shrunk centroid offset, given each row's predicted class index."""
            return x - np.cumsum(x - centroids[cls], axis=0) / (np.arange(1, len(x) + 1)[:, None] + 10)

        def shrink(x: np.ndarray) -> np.ndarray:  # with the unadapted head's predictions
            return offset_removed(x, base.predict_proba(x).argmax(axis=1))

        heard = [s for skewed in (False, True) for s in _sessions(groups, y, tr, skewed, np.random.default_rng(seed + 2))]
        as_used = _head(np.concatenate([shrink(X[s]) for s in heard]), np.concatenate([y[s] for s in heard]))
        # the same, each training speaker's classes predicted by a head that did not hear that speaker
        crossfit = np.zeros(len(y), dtype=int)
        for itr, ite in evaluate.grouped_splits(y[tr], groups[tr], 4, seed):
            crossfit[tr[ite]] = np.searchsorted(classes, _head(X[tr[itr]], y[tr[itr]]).predict(X[tr[ite]]))
        as_used_cf = _head(np.concatenate([offset_removed(X[s], crossfit[s]) for s in heard]),
                           np.concatenate([y[s] for s in heard]))
        mean = X[tr].mean(axis=0)
        centred = X[tr].copy()
        for s in set(groups[tr]):
            m = groups[tr] == s
            centred[m] -= X[tr][m].mean(axis=0) - mean
        running = _head(centred, y[tr])
        for skewed in (False, True):
            kind = "unbalanced" if skewed else "balanced"
            for session in _sessions(groups, y, te, skewed, np.random.default_rng(seed + 1)):
                x = X[session]
                n = np.arange(1, len(session) + 1)[:, None]
                preds = {"none": base.predict(x),
                         "running mean": running.predict(x - (3 * mean + np.cumsum(x, axis=0)) / (3 + n) + mean)}
                xa = shrink(x)
                preds["centroid offset"] = adapted.predict(xa)
                preds["centroid offset, head trained as it is used"] = as_used.predict(xa)
                preds["centroid offset, head trained as it is used, predictions cross-fitted"] = as_used_cf.predict(xa)
                for method, p in preds.items():
                    slot = out.setdefault(f"{method}, {kind}", {"true": [], "pred": []})
                    slot["true"] += list(y[session])
                    slot["pred"] += list(p)
    return {k: 100 * evaluate.uar(np.array(v["true"]), np.array(v["pred"])) for k, v in out.items()}


def main() -> None:
    p = corpus_parser(__doc__)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs)
    X, y, groups, corpus = e.X, e.y, e.speakers, e.corpus
    for c in sorted(set(corpus)):
        for seed in (0, 1):
            scores = _score(X, y, groups, np.flatnonzero(corpus == c), seed)
            print(f"{c}, split seed {seed}: " + "; ".join(f"{k} {v:.1f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
