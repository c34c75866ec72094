"""Speaker-independent evaluation: grouped cross-validation, cross-corpus tests, metrics, confusion plot."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

from ser_live.speaker_norm import CentroidOffset, SpeakerNorm
from ser_live.train.model import Hyperparameters, fit_model


class EvaluationError(ValueError):
    """The data can't support the requested evaluation (e.g. fewer speakers than folds)."""


def grouped_splits(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """StratifiedGroupKFold splits by speaker; asserts no speaker is on both sides of any split."""
    n_groups = len(np.unique(groups))
    if folds < 2:
        raise EvaluationError("--folds must be at least 2")
    if n_groups < folds:
        raise EvaluationError(f"only {n_groups} speakers for {folds} speaker-independent folds")
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = []
    for train_idx, test_idx in cv.split(np.zeros(len(y)), y, groups):
        overlap = set(groups[train_idx]) & set(groups[test_idx])
        assert not overlap, f"speaker(s) on both sides of a split: {sorted(overlap)[:5]}"
        splits.append((train_idx, test_idx))
    return splits


def metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """accuracy, UAR (macro recall over ``labels``), macro-F1, per-class recall, confusion matrix.

    ``labels`` are the classes scored (those the test data has); the confusion matrix is
    ``labels`` x ``labels`` plus any other predicted class as extra columns (``predicted_labels``)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = [l for l in labels if np.any(y_true == l)]
    extra = sorted(set(np.unique(y_pred)) - set(labels))
    cols = list(labels) + extra
    cm = confusion_matrix(y_true, y_pred, labels=cols)[: len(labels)]
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uar": float(np.mean(recalls)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "recall": {l: float(r) for l, r in zip(labels, recalls)},
        "labels": list(labels),
        "predicted_labels": cols,
        "confusion": cm.astype(int).tolist(),
    }


def uar(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted average recall over ``labels`` (default: the classes ``y_true`` has)."""
    y_true = np.asarray(y_true)
    return metrics(y_true, np.asarray(y_pred).astype(str), sorted(set(y_true)) if labels is None else labels)["uar"]


def uar_by_corpus(y_true: np.ndarray, y_pred: np.ndarray, corpora: np.ndarray) -> dict[str, float]:
    """UAR of each corpus's rows, over the classes that corpus has."""
    return {c: uar(y_true[corpora == c], y_pred[corpora == c]) for c in sorted(set(corpora))}


def arrival_rank(groups: np.ndarray, seed: int) -> np.ndarray:
    """Each clip's position in its speaker's arrival order: a random permutation of the speaker's clips
    seeded by (seed, speaker), so it does not depend on which other speakers are present."""
    rank = np.empty(len(groups), np.int64)
    for s in np.unique(groups):
        idx = np.flatnonzero(groups == s)
        rank[idx] = np.random.default_rng([seed, zlib.crc32(str(s).encode())]).permutation(idx.size)
    return rank


@dataclass(frozen=True)
class SessionNorm:
    """How the trainer applies the runtime's causal speaker normalisation: every speaker's clips form one
    session in arrival order ``rank``, and the training mean comes from the rows a model is trained on,
    never from its test rows. In training, each augmented copy is cut into short sessions (lengths
    drawn from 1..``short_sessions``, seeded by copy and speaker), so that the first utterances of a
    source — a folder of single clips, a new speaker — are as common in training as in use."""

    prior: float
    groups: np.ndarray
    rank: np.ndarray
    short_sessions: int = 10
    memory: float | None = None  # the running mean's memory in clips (None: never forgets)

    def fit(self, X: np.ndarray, idx: np.ndarray, augmented: Sequence[np.ndarray] = ()) -> SpeakerNorm:
        """The normaliser of a model trained on rows ``idx`` (clean and augmented): their mean."""
        rows = np.concatenate([X[idx]] + [a[idx] for a in augmented]).astype(np.float64)
        return SpeakerNorm(rows.mean(axis=0), self.prior, self.memory)

    def apply(self, norm: SpeakerNorm, A: np.ndarray, idx: np.ndarray, split: int = 0) -> np.ndarray:
        """Rows ``idx`` of ``A`` (in that order) normalised, each speaker's rows as one session in arrival
        order, or with ``split`` > 0 as consecutive short sessions (seeded by ``split`` and the speaker)."""
        out = np.empty((len(idx), A.shape[1]), np.float32)
        g, r = self.groups[idx], self.rank[idx]
        for s in np.unique(g):
            pos = np.flatnonzero(g == s)
            pos = pos[np.argsort(r[pos], kind="stable")]
            if split:
                rng = np.random.default_rng([split, zlib.crc32(str(s).encode())])
                cuts = np.cumsum(rng.integers(1, self.short_sessions + 1, size=pos.size))
                sessions = np.split(pos, cuts[cuts < pos.size])
            else:
                sessions = [pos]
            for part in sessions:
                out[part] = norm.sequence(A[idx[part]])
        return out


@dataclass(frozen=True)
class CentroidSessions:
    """How the trainer applies the runtime's centroid offset (``ser_live.speaker_norm.CentroidOffset``):
    the centroids come from the rows a model is trained on (clean and augmented), the adapted head is
    trained on rows with each training speaker's offset removed (per version of the clips: the mean of
    (row - centroid of its true class) over the speaker's rows), and held-out speakers are heard as the
    runtime hears a source: every speaker's clips one session in arrival order ``rank``."""

    shrink: float
    groups: np.ndarray
    rank: np.ndarray
    combine: str = "mean_logits"

    def fit(self, X: np.ndarray, y: np.ndarray, idx: np.ndarray, augmented: Sequence[np.ndarray] = ()) -> CentroidOffset:
        """The centroid offset of a model trained on rows ``idx``: each class's mean over them (classes sorted)."""
        rows = np.concatenate([X[idx]] + [a[idx] for a in augmented]).astype(np.float64)
        labels = np.tile(y[idx], 1 + len(augmented))
        return CentroidOffset(np.stack([rows[labels == c].mean(axis=0) for c in np.unique(labels)]), self.shrink,
                              self.combine)

    def offset_free(self, off: CentroidOffset, A: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of ``A`` minus their speaker's offset, measured with the true labels."""
        classes = np.unique(y[idx])
        out = A[idx].astype(np.float64)
        cls = np.searchsorted(classes, y[idx])
        for s in np.unique(self.groups[idx]):
            m = self.groups[idx] == s
            out[m] -= (out[m] - off.centroids[cls[m]]).mean(axis=0)
        return out.astype(np.float32)


Adaptation = Union[SessionNorm, CentroidSessions]


def fold_rows(X: np.ndarray, y: np.ndarray, idx: np.ndarray, augmented: Sequence[np.ndarray] = (),
              sn: SessionNorm | None = None) -> tuple[np.ndarray, np.ndarray, SpeakerNorm | None]:
    """Training rows of ``idx`` (as :func:`training_rows`), normalised per speaker with a normaliser fitted
    on them when ``sn`` is given; also returns that normaliser (None without ``sn``)."""
    if sn is None:
        return (*training_rows(X, y, idx, augmented), None)
    norm = sn.fit(X, idx, augmented)
    Xt = np.concatenate([sn.apply(norm, X, idx)] + [sn.apply(norm, A, idx, split=k + 1) for k, A in enumerate(augmented)])
    return Xt, np.tile(y[idx], 1 + len(augmented)), norm


def held_out_rows(A: np.ndarray, idx: np.ndarray, sn: SessionNorm | None, norm: SpeakerNorm | None) -> np.ndarray:
    """Held-out rows ``idx`` of ``A`` as the model sees them: normalised per speaker when it was trained so."""
    return A[idx] if sn is None else sn.apply(norm, A, idx)


@dataclass(frozen=True)
class FoldModel:
    """A model fitted on rows ``train`` and meant for rows ``test``, with the speaker adaptation it was trained
    with (``sn``, its fitted ``norm``; with the centroid offset, the ``unadapted`` head as well)."""

    model: Pipeline
    train: np.ndarray
    test: np.ndarray
    sn: Adaptation | None
    norm: SpeakerNorm | CentroidOffset | None
    unadapted: Pipeline | None = None

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def _heads(self) -> tuple[Callable, Callable | None]:
        return self.model.predict_proba, None if self.unadapted is None else self.unadapted.predict_proba

    def session_proba(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities (columns ``classes_``) of the rows of one source in arrival order, as the runtime gives them."""
        if self.norm is None:
            return self.model.predict_proba(rows)
        return self.norm.sequence_proba(rows, *self._heads())

    def alone_proba(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities of each row heard as the first utterance of its own source."""
        if self.norm is None:
            return self.model.predict_proba(rows)
        return self.norm.alone_proba(rows, *self._heads())

    def _by_session(self, A: np.ndarray, idx: np.ndarray | None, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn`` of rows ``idx`` (default: the test rows) of ``A``, each speaker's rows one session in arrival order."""
        idx = self.test if idx is None else idx
        if self.sn is None:
            return fn(A[idx])
        g, r = self.sn.groups[idx], self.sn.rank[idx]
        out = None
        for s in np.unique(g):
            pos = np.flatnonzero(g == s)
            pos = pos[np.argsort(r[pos], kind="stable")]
            part = fn(A[idx[pos]])
            if out is None:
                out = np.empty((len(idx), part.shape[1]), part.dtype)
            out[pos] = part
        return out

    def rows(self, A: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Rows ``idx`` (default: the test rows) of ``A``, a version of the features, as the model's head sees them."""
        if isinstance(self.norm, CentroidOffset):
            return self._by_session(A, idx, lambda r: self.norm.sequence(r, self.unadapted.predict_proba(r)))
        return held_out_rows(A, self.test if idx is None else idx, self.sn, self.norm)

    def proba(self, A: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """The probabilities (columns ``classes_``) of rows ``idx`` (default: the test rows) of ``A``."""
        return self._by_session(A, idx, self.session_proba)

    def predict(self, A: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """The model's labels for rows ``idx`` (default: the test rows) of ``A``."""
        return self.classes_[self.proba(A, idx).argmax(axis=1)]


def fit_fold(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, hp: Hyperparameters, seed: int, *,
             augmented: Sequence[np.ndarray] = (), sn: Adaptation | None = None,
             choose: Callable[[np.ndarray], Hyperparameters] | None = None) -> FoldModel:
    """Fit a model on rows ``train`` (clean and ``augmented``, normalised per speaker with a running mean
    ``sn``, see :func:`fold_rows`) with ``hp``, or with ``choose(train)`` when given (a nested search), for
    rows ``test``. With the centroid offset, two heads: the unadapted one on the rows as they are, the
    adapted one on the rows with each training speaker's offset removed."""
    h = hp if choose is None else choose(train)
    if isinstance(sn, CentroidSessions):
        Xt, yt = training_rows(X, y, train, augmented)
        unadapted = fit_model(Xt, yt, h, seed)
        off = sn.fit(X, y, train, augmented)
        Xa = np.concatenate([sn.offset_free(off, A, y, train) for A in (X, *augmented)])
        return FoldModel(fit_model(Xa, yt, h, seed), train, test, sn, off, unadapted)
    Xt, yt, norm = fold_rows(X, y, train, augmented, sn)
    return FoldModel(fit_model(Xt, yt, h, seed), train, test, sn, norm)


def fit_folds(X: np.ndarray, y: np.ndarray, splits: Iterable[tuple[np.ndarray, np.ndarray]], hp: Hyperparameters,
              seed: int, *, augmented: Sequence[np.ndarray] = (), sn: Adaptation | None = None,
              choose: Callable[[np.ndarray], Hyperparameters] | None = None) -> Iterator[FoldModel]:
    """:func:`fit_fold` for each (train, test) pair of ``splits``, in order, fitted as it is asked for:
    the one fold loop of the speaker-grouped evaluation (CV, cross-corpus, the nested search)."""
    for train, test in splits:
        yield fit_fold(X, y, train, test, hp, seed, augmented=augmented, sn=sn, choose=choose)


class AlphaSearch:
    """The MLP's L2 penalty chosen for a set of training rows by an inner speaker-grouped CV on those rows
    alone (nested: the speakers held out from them never take part). The mean of the per-corpus UARs
    decides, ties to the first candidate; a set of rows asked for again gets the same answer. Call it with
    the rows (indices into ``X``): it returns ``hp`` with the chosen alpha, and records the choice."""

    def __init__(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, corpora: np.ndarray,
                 hp: Hyperparameters, alphas: Sequence[float], *, seed: int, augmented: Sequence[np.ndarray] = (),
                 sn: Adaptation | None = None, inner_folds: int = 3) -> None:
        self.X, self.y, self.groups, self.corpora = X, y, groups, corpora
        self.hp, self.alphas, self.seed, self.inner_folds = hp, list(alphas), seed, inner_folds
        self.augmented, self.sn = augmented, sn
        self.chosen: dict[bytes, float] = {}

    def __call__(self, rows: np.ndarray) -> Hyperparameters:
        key = np.asarray(rows).tobytes()
        if key not in self.chosen:
            self.chosen[key] = self.alphas[0] if len(self.alphas) == 1 else \
                max(self.alphas, key=lambda a: self.score(a, np.asarray(rows)))
        return replace(self.hp, alpha=self.chosen[key])

    def score(self, alpha: float, rows: np.ndarray) -> float:
        """Inner-CV UAR (mean over corpora) of ``alpha`` on ``rows``."""
        pred = np.empty(len(rows), dtype=object)
        inner = grouped_splits(self.y[rows], self.groups[rows], self.inner_folds, self.seed)
        folds = fit_folds(self.X, self.y, [(rows[itr], rows[ite]) for itr, ite in inner], replace(self.hp, alpha=alpha),
                          self.seed, augmented=self.augmented, sn=self.sn)
        for (_, ite), fold in zip(inner, folds):
            pred[ite] = fold.predict(self.X)
        return float(np.mean(list(uar_by_corpus(self.y[rows], pred, self.corpora[rows]).values())))


def new_text_predictions(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    corpora: np.ndarray,
    sentences: Sequence[str | None],
    hp: Hyperparameters,
    *,
    folds: int,
    seed: int,
    augmented: Sequence[np.ndarray] = (),
    sn: Adaptation | None = None,
    choose: Callable[[np.ndarray], Hyperparameters] | None = None,
) -> np.ndarray:
    """Speaker-grouped CV in which no model has heard the held-out clip's sentence either (the corpora
    repeat a few fixed sentences, so the usual CV tests new voices saying known texts). Each corpus's
    sentences are dealt, sorted, into up to three groups; for every fold and group, a model trained on
    the fold's training speakers without that group's sentences predicts the fold's held-out clips of
    that group. Clips without a known sentence are used for training only (None in the result).
    ``choose`` (optional) gives the hyperparameters for a fold from its training rows (a nested search)."""
    pred = np.full(len(y), None, dtype=object)
    for tr, by_text in new_text_splits(y, groups, corpora, sentences, folds=folds, seed=seed):
        h = hp if choose is None else choose(tr)
        for fold in fit_folds(X, y, by_text, h, seed, augmented=augmented, sn=sn):
            pred[fold.test] = fold.predict(X)
    return pred


def new_text_splits(y: np.ndarray, groups: np.ndarray, corpora: np.ndarray, sentences: Sequence[str | None], *,
                    folds: int, seed: int) -> list[tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]:
    """The splits of :func:`new_text_predictions`: for each speaker-grouped fold, its training rows and its
    (training rows without a group of sentences, held-out rows of that group) pairs."""
    sent = np.array(sentences, dtype=object)
    part = np.full(len(y), -1)
    for c in np.unique(corpora):
        known = sorted({s for s in sent[corpora == c] if s is not None})
        for k, s in enumerate(known):
            part[(corpora == c) & (sent == s)] = k % min(3, len(known))
    out = []
    for tr, te in grouped_splits(y, groups, folds, seed):
        by_text = [(tr[part[tr] != g], te[part[te] == g]) for g in range(part.max() + 1)]
        by_text = [(tr_g, te_g) for tr_g, te_g in by_text if te_g.size]
        for tr_g, te_g in by_text:
            assert not set(sent[tr_g]) & set(sent[te_g]) - {None}, "a held-out sentence was trained on"
        out.append((tr, by_text))
    return out


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    corpora: np.ndarray,
    hp: Hyperparameters,
    *,
    folds: int,
    seed: int,
    on_fold: Callable[[int], None] | None = None,
    augmented: Sequence[np.ndarray] = (),
    sn: Adaptation | None = None,
    choose: Callable[[np.ndarray], Hyperparameters] | None = None,
) -> dict:
    """Pooled out-of-fold predictions of speaker-grouped CV, scored overall and per corpus.

    ``augmented``: corrupted copies of ``X`` (same rows); the training side of each fold gets them too,
    the test side is always the clean clips. ``sn``: speaker normalisation, fitted per fold on its
    training side. ``choose`` (optional): the hyperparameters for a fold from its training rows (a nested
    search, e.g. :class:`AlphaSearch`)."""
    labels = sorted(np.unique(y))
    pred = np.empty(len(y), dtype=object)
    proba = np.zeros((len(y), len(labels)))
    fold_acc = []
    splits = grouped_splits(y, groups, folds, seed)
    for k, fold in enumerate(fit_folds(X, y, splits, hp, seed, augmented=augmented, sn=sn, choose=choose)):
        te, p = fold.test, fold.proba(X)
        cols = [labels.index(c) for c in fold.classes_]
        proba[np.ix_(te, cols)] = p
        pred[te] = fold.classes_[p.argmax(axis=1)]
        fold_acc.append(float(np.mean(pred[te] == y[te])))
        if on_fold:
            on_fold(k)
    pred = pred.astype(str)
    out = {
        "folds": folds,
        "seed": seed,
        "grouping": "speaker",
        "fold_accuracy": fold_acc,
        "overall": metrics(y, pred, labels),
        "per_corpus": {},
    }
    y_idx = np.array([labels.index(v) for v in y])
    t = fit_temperature(proba, y_idx)
    out["calibration"] = {
        "ece": expected_calibration_error(proba, y_idx),
        "temperature": t,
        "ece_after_temperature": expected_calibration_error(_soften(proba, t), y_idx),
        "bins": 10,
    }
    for c in sorted(np.unique(corpora)):
        m = corpora == c
        out["per_corpus"][str(c)] = metrics(y[m], pred[m], sorted(np.unique(y[m])))
    return out


def cross_corpus(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    corpora: np.ndarray,
    hp: Hyperparameters,
    *,
    seed: int,
    on_pair: Callable[[str, str], None] | None = None,
    augmented: Sequence[np.ndarray] = (),
    sn: Adaptation | None = None,
    choose: Callable[[np.ndarray], Hyperparameters] | None = None,
) -> dict:
    """Train on one corpus, test on another, on their shared labels; every ordered pair.
    ``augmented``, ``sn`` and ``choose`` as in :func:`cross_validate` (normaliser fitted on the training corpus)."""
    out = {}
    for a, b, shared, tr, te in corpus_pairs(y, groups, corpora):
        fold = fit_fold(X, y, tr, te, hp, seed, augmented=augmented, sn=sn, choose=choose)
        m = metrics(y[te], fold.predict(X), shared)
        m["train"], m["test"], m["train_n"] = str(a), str(b), int(tr.size)
        out[f"{a}->{b}"] = m
        if on_pair:
            on_pair(a, b)
    return out


def head_seeds(seed: int, count: int, members: int) -> list[int]:
    """``count`` seeds of the head from ``seed`` on, spaced by the member count (a head of k members fits seeds
    s, s+1, ..., s+k-1), so that no two heads share a member."""
    return [seed + k * max(1, members) for k in range(count)]


def cross_corpus_seeds(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    corpora: np.ndarray,
    hp: Hyperparameters,
    *,
    seeds: Sequence[int],
    augmented: Sequence[np.ndarray] = (),
    sn: Adaptation | None = None,
    choose: Callable[[np.ndarray], Hyperparameters] | None = None,
) -> dict:
    """:func:`cross_corpus` once per head seed in ``seeds`` (the same rows; only the head's training seed
    differs): each pair's metrics of the first seed, with ``uar_by_head_seed`` (seed -> UAR) and ``uar_mean``."""
    runs = [cross_corpus(X, y, groups, corpora, hp, seed=s, augmented=augmented, sn=sn, choose=choose) for s in seeds]
    out = runs[0]
    for pair, m in out.items():
        m["uar_by_head_seed"] = {str(s): r[pair]["uar"] for s, r in zip(seeds, runs)}
        m["uar_mean"] = float(np.mean(list(m["uar_by_head_seed"].values())))
    return out


def corpus_pairs(y: np.ndarray, groups: np.ndarray, corpora: np.ndarray) -> list[tuple[str, str, list, np.ndarray, np.ndarray]]:
    """Every ordered pair of corpora sharing at least two labels: (training corpus, test corpus, the shared
    labels, training rows, test rows), the rows being those of the shared labels."""
    names = sorted(np.unique(corpora))
    out = []
    for a in names:
        for b in names:
            shared = sorted(set(y[corpora == a]) & set(y[corpora == b]))
            if a == b or len(shared) < 2:
                continue
            tr = np.flatnonzero((corpora == a) & np.isin(y, shared))
            te = np.flatnonzero((corpora == b) & np.isin(y, shared))
            assert not set(groups[tr]) & set(groups[te]), "speaker in both train and test corpus"
            out.append((str(a), str(b), shared, tr, te))
    return out


def plot_confusions(cv: dict, path: Path, title: str = "") -> None:
    """Row-normalised confusion matrices (overall + per corpus) of the pooled CV predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("all corpora", cv["overall"])] + [(k, v) for k, v in cv["per_corpus"].items()]
    if len(cv["per_corpus"]) == 1:
        panels = panels[1:]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.0), squeeze=False)
    for ax, (name, m) in zip(axes[0], panels):
        cm = np.asarray(m["confusion"], dtype=float)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(m["predicted_labels"])), m["predicted_labels"], rotation=45, ha="right")
        ax.set_yticks(range(len(m["labels"])), m["labels"])
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: acc {m['accuracy']:.2f}, UAR {m['uar']:.2f}, F1 {m['macro_f1']:.2f}", fontsize=9)
    fig.suptitle(title or "speaker-independent CV (recall per row)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_rows(X: np.ndarray, y: np.ndarray, idx: np.ndarray,
                  augmented: Sequence[np.ndarray] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of the clean features plus the same rows of every augmented copy."""
    Xt = np.concatenate([X[idx]] + [a[idx] for a in augmented])
    return Xt, np.tile(y[idx], 1 + len(augmented))


def expected_calibration_error(proba: np.ndarray, y_idx: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class confidence: |accuracy - confidence| averaged over equal-width bins, weighted."""
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_idx
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def _soften(proba: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """Temperature T (grid 0.5-4) minimising the log loss of softmax(log p / T) on out-of-fold predictions."""
    grid = np.round(np.arange(0.5, 4.0001, 0.05), 2)
    nll = [-np.mean(np.log(_soften(proba, t)[np.arange(len(y_idx)), y_idx] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])
