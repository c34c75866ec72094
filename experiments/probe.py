"""The logistic-regression probe the encoder studies share: the clean clips' embeddings, the head, and its
splits (one head per split, scored on held-out speakers per corpus in CV, in the "sentences never heard" split of
``ser-evaluate``, and across corpora both ways)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import corpus_parser
from ser_live.train import corpora, dataset, evaluate, recipe

#: the encoder the probe studies describe by default, and its blocks in the shipped model
SMART_TURN = "smart-turn-v3.2"
SMART_TURN_BLOCKS = (1, 2, 3)

#: ``fit_predict(training rows, test rows)`` -> the test rows' predicted labels
FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Embeddings:
    """The clean clips' embeddings (float64) and what the probe groups them by."""

    fs: dataset.FeatureSet
    roots: list[Path]
    extractor: object
    X: np.ndarray
    y: np.ndarray
    speakers: np.ndarray
    corpus: np.ndarray
    sentences: list[str | None]


def clean_embeddings(data: Sequence[Path], cache_dir: Path, jobs: int,
                     blocks: tuple[int, ...] | None = None, extractor=None) -> Embeddings:
    """Smart Turn's embeddings (of ``blocks``, by default SMART_TURN_BLOCKS; or what ``extractor`` computes, not
    both) of every clean clip under ``data``, each speaker's clips cut as one source in the arrival order of split
    seed 0, as ``ser-train`` cuts them (from the cache)."""
    from ser_live.train.cli import make_extractor

    if blocks is not None and extractor is not None:
        raise ValueError("clean_embeddings takes Smart Turn's blocks or an extractor, not both")
    roots = [Path(d).resolve() for d in data]
    clips = corpora.discover(roots, corpora.resolve_emotions(None)).clips
    extractor = extractor or make_extractor(SMART_TURN, blocks or SMART_TURN_BLOCKS, False, cache_dir)
    fs = dataset.build_features(clips, roots=roots, cache_dir=cache_dir, jobs=jobs,
                                rank=evaluate.arrival_rank(np.array([c.speaker for c in clips]), 0), extractor=extractor)
    return Embeddings(fs, roots, extractor, fs.X.astype(np.float64), np.array([c.label for c in fs.clips]),
                      np.array([c.speaker for c in fs.clips]), np.array([c.corpus for c in fs.clips]),
                      [corpora.sentence(c) for c in fs.clips])


def recipe_extractor(cache_dir: Path):
    """The shipped recipe's input (``recipe.ENCODER``, ``recipe.ENCODER_BLOCKS``), as ``ser-train`` builds it."""
    from ser_live.train.cli import make_extractor

    return make_extractor(recipe.ENCODER, recipe.ENCODER_BLOCKS, False, Path(cache_dir))


def encoders_embeddings(data: Sequence[Path], cache_dir: Path, jobs: int,
                        encoders: Sequence[tuple[str, tuple[int, ...]]]) -> list[Embeddings]:
    """:func:`clean_embeddings` of each (encoder, blocks) in ``encoders``, in that order, checked to be of the same
    clips in the same order, so that their columns can be put side by side."""
    from ser_live.train.cli import make_extractor

    es = [clean_embeddings(data, cache_dir, jobs, extractor=make_extractor(name, blocks, False, cache_dir))
          for name, blocks in encoders]
    if any(not np.array_equal(e.speakers, es[0].speakers) or not np.array_equal(e.y, es[0].y) for e in es[1:]):
        raise SystemExit("the encoders' embeddings are not of the same clips")
    return es


def classifier() -> LogisticRegression:
    """The probe's classifier: a logistic regression with a strong L2 penalty (C = 0.01), for inputs already
    standardised."""
    return LogisticRegression(C=0.01, max_iter=3000)


def linear_head():
    """The probe's head: standardised inputs under :func:`classifier`."""
    return make_pipeline(StandardScaler(), classifier())


def head_predict(X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray,
                 extra: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Predictions for the rows ``te`` of a standardised logistic-regression head (the probe's head) trained on the
    rows ``tr`` and, with ``extra`` (other versions of ``X``'s rows, e.g. augmented copies), the same rows of each."""
    Xtr = np.concatenate([X[tr]] + [e[tr] for e in extra])
    return linear_head().fit(Xtr, np.tile(y[tr], 1 + len(extra))).predict(X[te])


def score(fit_predict: FitPredict, y: np.ndarray, speakers: np.ndarray, sentences: Sequence[str | None],
          corpus: np.ndarray, seed: int, jobs: int) -> dict[str, float]:
    """UAR % per corpus in speaker-grouped CV (5 folds) and with sentences never heard (``sentences``: each clip's,
    None where unknown); with ``seed`` 0 also across corpora (the same split whatever the seed)."""
    splits = {"CV": evaluate.grouped_splits(y, speakers, 5, seed),
              "sentences never heard": [p for _, by_text in evaluate.new_text_splits(
                  y, speakers, corpus, sentences, folds=5, seed=seed) for p in by_text]}
    pairs = evaluate.corpus_pairs(y, speakers, corpus) if seed == 0 else []
    splits["across"] = [(tr, te) for _, _, _, tr, te in pairs]
    out = {}
    for kind, sp in splits.items():
        done = Parallel(n_jobs=jobs)(delayed(fit_predict)(tr, te) for tr, te in sp)
        if kind == "across":
            out.update({f"{a} -> {b}": 100 * evaluate.uar(y[te], p) for (a, b, *_), (_, te), p in zip(pairs, sp, done)})
            continue
        pred = np.full(len(y), None, dtype=object)
        for (_, te), p in zip(sp, done):
            pred[te] = p
        for c in sorted(set(corpus)):
            m = (corpus == c) & (pred != None)  # noqa: E711 (an object array)
            out[f"{kind} {c}"] = 100 * evaluate.uar(y[m], pred[m].astype(str))
    return out


def parser(doc: str, variants: Sequence[str] = ()):
    """A study's argument parser: the corpora, the cache, the split seeds, ``--jobs`` and, when it has
    ``variants``, ``--variants`` (default: all of them)."""
    p = corpus_parser(doc, seeds=True)
    p.add_argument("--jobs", type=int, default=2)
    if variants:
        p.add_argument("--variants", nargs="+", choices=list(variants), default=list(variants))
    return p


def report(fit_predict: FitPredict, e: Embeddings, seed: int, name: str, jobs: int) -> None:
    """Print one line: the scores of ``fit_predict`` on the splits of ``seed`` (see :func:`score`)."""
    scores = score(fit_predict, e.y, e.speakers, e.sentences, e.corpus, seed, jobs)
    print(f"split seed {seed}, {name}: " + "; ".join(f"{k} {v:.1f}" for k, v in scores.items()), flush=True)
