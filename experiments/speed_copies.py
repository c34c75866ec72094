"""Do training copies at another speaking speed (0.9-1.1x: pitch, formants and tempo together, as another talker)
make the encoder model generalise to new voices, sentences and corpora?

    python -m experiments.speed_copies --data ../shared/data/ravdess ../shared/data/crema-d

Kaldi's speed perturbation makes a few speakers look like more. The fast model's study (reports/ablation.md)
found a within-corpus gain on RAVDESS that did not carry to the other corpus; the encoder, pretrained on many
voices, may hear it differently. Embeddings of the shipped encoder recipe (cut by the runtime's segmenter, from
the feature cache); a plain logistic-regression head trained on both corpora, as ``ser-train`` trains, on the clean
clips plus, per variant: the recipe's noisy copy (``augment.training_copies``); that copy with every clip also
played at a speed drawn in 0.9-1.1; the noisy copy plus a clean copy at such a speed. Held-out rows are clean
clips, scored per corpus in speaker-grouped CV (split seeds 0 and 1), on sentences never heard and across corpora
both ways. Prints one line per split seed and variant.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np

from experiments import probe
from ser_live.train import augment, dataset

SPEED = (0.9, 1.1)


def copies(seed: int = 0) -> dict[str, augment.Corruption]:
    """The corruptions the variants draw their training copies from."""
    noisy = augment.training_copies(1, seed)[0]
    return {"noisy": noisy,
            "noisy sped": dataclasses.replace(noisy, speed_p=1.0, speed=SPEED),
            "clean sped": augment.Corruption(name="speed", speed_p=1.0, speed=SPEED, seed=2000 + seed)}


#: variant name -> the training copies beside the clean clips
VARIANTS = {"noisy copy (shipped)": ("noisy",), "noisy copy sped": ("noisy sped",),
            "noisy copy + clean sped copy": ("noisy", "clean sped")}


def main() -> None:
    args = probe.parser(__doc__, VARIANTS).parse_args()
    e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs)
    needed = {name for v in args.variants for name in VARIANTS[v]}
    rows = {}
    for name, corruption in copies().items():
        if name in needed:
            fa = dataset.build_features(e.fs.clips, roots=e.roots, cache_dir=args.cache_dir, jobs=args.jobs,
                                        corruption=corruption, extractor=e.extractor)
            if len(fa.clips) != len(e.fs.clips):
                raise SystemExit(f"{len(e.fs.clips) - len(fa.clips)} clips failed in the copy {name!r}")
            rows[name] = fa.X.astype(np.float64)
    for seed in args.seeds:
        for name in args.variants:
            probe.report(partial(probe.head_predict, e.X, e.y, extra=[rows[k] for k in VARIANTS[name]]), e, seed,
                         name, args.jobs)


if __name__ == "__main__":
    main()
