"""The classifier: StandardScaler + MLP (a few seeds averaged in one MLP), class-balanced, deterministic for a given seed."""

from __future__ import annotations

import copy
import inspect
from dataclasses import asdict, dataclass, replace

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from ser_live.train import recipe


@dataclass(frozen=True)
class Hyperparameters:
    """The classifier's settings; the defaults are the shipped recipe's (``ser_live.train.recipe``)."""

    hidden: tuple[int, ...] = recipe.HIDDEN
    alpha: float = recipe.ALPHA
    learning_rate_init: float = recipe.LEARNING_RATE_INIT
    batch_size: int = recipe.BATCH_SIZE
    max_iter: int = recipe.MAX_ITER
    early_stopping: bool = recipe.EARLY_STOPPING
    validation_fraction: float = recipe.VALIDATION_FRACTION
    n_iter_no_change: int = recipe.N_ITER_NO_CHANGE
    members: int = recipe.MEMBERS  # MLPs fitted with seeds seed, seed+1, ...; their logits are averaged in one graph

    def asdict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _mlp_takes_sample_weight() -> bool:
    return "sample_weight" in inspect.signature(MLPClassifier.fit).parameters


#: how classes are balanced: MLP sample weights (scikit-learn >= 1.7) or seeded oversampling
BALANCING = "sample_weight" if _mlp_takes_sample_weight() else "oversample"


def make_model(hp: Hyperparameters, seed: int) -> Pipeline:
    mlp = MLPClassifier(
        hidden_layer_sizes=hp.hidden,
        alpha=hp.alpha,
        learning_rate_init=hp.learning_rate_init,
        batch_size=hp.batch_size,
        max_iter=hp.max_iter,
        early_stopping=hp.early_stopping,
        validation_fraction=hp.validation_fraction,
        n_iter_no_change=hp.n_iter_no_change,
        random_state=seed,
    )
    return Pipeline([("scale", StandardScaler()), ("mlp", mlp)])


def oversample(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Repeat minority-class rows (seeded) until every class has as many rows as the largest."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    idx = [np.arange(len(y))]
    for c, n in zip(classes, counts):
        if n < counts.max():
            idx.append(rng.choice(np.flatnonzero(y == c), counts.max() - n, replace=True))
    order = np.concatenate(idx)
    return X[order], y[order]


def _can_hold_out(y: np.ndarray, fraction: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    n_val = int(np.ceil(fraction * len(y)))
    return counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts)


def fit_model(X: np.ndarray, y: np.ndarray, hp: Hyperparameters, seed: int) -> Pipeline:
    """Fit a fresh class-balanced pipeline on (X, y), BLAS on one thread: these matrices are small, and
    on a shared machine a BLAS thread pool waiting for busy cores made the fit up to 15x slower (the
    model bytes are the same either way)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if hp.early_stopping and not _can_hold_out(y, hp.validation_fraction):
        hp = replace(hp, early_stopping=False)  # tiny data: a stratified validation split is impossible
    if hp.batch_size > len(y) // 2:
        hp = replace(hp, batch_size=max(1, len(y) // 2))  # tiny data: sklearn would clip it and warn
    members = []
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(max(1, hp.members)):
            model = make_model(hp, seed + k)
            if BALANCING == "sample_weight":
                model.fit(X, y, mlp__sample_weight=compute_sample_weight("balanced", y))
            else:
                model.fit(*oversample(X, y, seed + k))
            members.append(model)
    return members[0] if len(members) == 1 else merge_members(members)


def merge_members(members: list[Pipeline]) -> Pipeline:
    """One scaler + MLP whose logits are the mean of the members' logits: the members' hidden
    units side by side (block-diagonal between hidden layers), their output weights stacked and
    divided by their number. Each member's own scaling is folded into its first-layer weights, so
    the merged pipeline computes exactly what averaging the members would."""
    from scipy.linalg import block_diag

    scale0 = members[0].named_steps["scale"]
    mlps = [m.named_steps["mlp"] for m in members]
    first_w, first_b = [], []
    for m, mlp in zip(members, mlps):
        s = m.named_steps["scale"]
        w = (scale0.scale_ / s.scale_)[:, None] * mlp.coefs_[0]  # z0 = (x - mean0) / scale0
        first_w.append(w)
        first_b.append(mlp.intercepts_[0] + ((scale0.mean_ - s.mean_) / s.scale_) @ mlp.coefs_[0])
    n_layers = len(mlps[0].coefs_)
    coefs = [np.hstack(first_w)]
    intercepts = [np.concatenate(first_b)]
    for layer in range(1, n_layers - 1):
        coefs.append(block_diag(*[mlp.coefs_[layer] for mlp in mlps]))
        intercepts.append(np.concatenate([mlp.intercepts_[layer] for mlp in mlps]))
    coefs.append(np.vstack([mlp.coefs_[-1] for mlp in mlps]) / len(mlps))
    intercepts.append(np.mean([mlp.intercepts_[-1] for mlp in mlps], axis=0))
    merged = copy.deepcopy(mlps[0])
    merged.coefs_ = [c.astype(mlps[0].coefs_[0].dtype) for c in coefs]
    merged.intercepts_ = [b.astype(mlps[0].intercepts_[0].dtype) for b in intercepts]
    merged.hidden_layer_sizes = tuple(len(mlps) * h for h in np.atleast_1d(mlps[0].hidden_layer_sizes))
    merged.member_epochs_ = [int(mlp.n_iter_) for mlp in mlps]
    return Pipeline([("scale", scale0), ("mlp", merged)])


def apply_temperature(model: Pipeline, temperature: float) -> Pipeline:
    """Divide the MLP's output-layer weights and biases by ``temperature``: the softmax then gives
    softmax(logits / T), exactly temperature scaling, inside the same (exported) graph."""
    if temperature != 1.0:
        mlp = model.named_steps["mlp"]
        mlp.coefs_[-1] = mlp.coefs_[-1] / temperature
        mlp.intercepts_[-1] = mlp.intercepts_[-1] / temperature
    return model
