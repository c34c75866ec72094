"""Do the frames' standard deviations over the utterance add to their mean, or do they carry the sentence?

    python -m experiments.pooling_stats --data ../shared/data/ravdess ../shared/data/crema-d

The shipped input pools the encoders' frames into their mean and standard deviation over the utterance. The mean
says how the voice sounds on average; the standard deviation says how much each value moves over the utterance,
which follows its run of sounds, and so its words, as well as its prosody. The shipped recipe's input
(``recipe.ENCODER`` with ``recipe.ENCODER_BLOCKS``, from the feature cache) under the probe's logistic-regression
head trained on both corpora, on the mean and standard deviation, the mean alone and the standard deviation alone;
scored per corpus in speaker-grouped CV (split seeds 0 and 1), on sentences never heard and across corpora both
ways. Prints one line per split seed and variant.

With ``--head mlp`` the recipe's own head instead (the MLP, trained on the clean clips and the recipe's noisy copy,
as ``ser-train`` trains it; the same cuts and embeddings): CV per corpus and each cross-corpus test repeated with
``--head-seeds`` seeds of the head, as ``ser-evaluate`` repeats them.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console

from experiments import probe
from experiments.head_seeds import recipe_args
from ser_live.train import cli, evaluate

#: variant name -> which halves of the pooled embedding (mean first, then standard deviation) the head reads
VARIANTS = {"mean + sd (shipped)": ("mean", "sd"), "mean alone": ("mean",), "sd alone": ("sd",)}


def halves(size: int, parts: tuple[str, ...]) -> np.ndarray:
    """The columns of ``parts`` in a pooled embedding of ``size`` values (the frame mean, then the frame sd)."""
    width = size // 2
    return np.concatenate([np.arange(width) + (0 if p == "mean" else width) for p in parts])


def mlp_scores(args, parts: tuple[str, ...], split_seed: int) -> dict[str, float]:
    """UAR % of the recipe's MLP head on the ``parts`` of the shipped input: CV per corpus, and each cross-corpus test
    as the mean over ``args.head_seeds`` head seeds (each seed's UAR too)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = cli.prepare(recipe_args(args.data, args.cache_dir, ["--seed", str(split_seed), "--jobs", str(args.jobs)],
                                    Path(tmp)), Console(stderr=True, quiet=True))
    d = p.data
    cols = halves(d.X.shape[1], parts)
    X, aug = d.X[:, cols], [A[:, cols] for A in d.augmented]
    cv = evaluate.cross_validate(X, d.y, d.groups, d.corpora, p.hp, folds=5, seed=split_seed, augmented=aug, sn=p.sn)
    out = {f"CV {c}": 100 * m["uar"] for c, m in cv["per_corpus"].items()}
    xc = evaluate.cross_corpus_seeds(X, d.y, d.groups, d.corpora, p.hp, augmented=aug, sn=p.sn,
                                     seeds=evaluate.head_seeds(split_seed, args.head_seeds, p.hp.members))
    for pair, m in xc.items():
        out[f"{pair} (mean)"] = 100 * m["uar_mean"]
        out.update({f"{pair} seed {s}": 100 * u for s, u in m["uar_by_head_seed"].items()})
    return out


def main() -> None:
    parser = probe.parser(__doc__, VARIANTS)
    parser.add_argument("--head", choices=("probe", "mlp"), default="probe")
    parser.add_argument("--head-seeds", type=cli.positive_int, default=3, help="with --head mlp: head seeds per cross-corpus test")
    args = parser.parse_args()
    if args.head == "mlp":
        for seed in args.seeds:
            for name in args.variants:
                scores = mlp_scores(args, VARIANTS[name], seed)
                print(f"split seed {seed}, {name}, MLP: " + "; ".join(f"{k} {v:.1f}" for k, v in scores.items()),
                      flush=True)
        return
    e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs, extractor=probe.recipe_extractor(args.cache_dir))
    for seed in args.seeds:
        for name in args.variants:
            X = e.X[:, halves(e.X.shape[1], VARIANTS[name])]
            probe.report(partial(probe.head_predict, X, e.y), e, seed, name, args.jobs)


if __name__ == "__main__":
    main()
