"""Does the encoder's last block, joined to the shipped blocks, make the model generalise to new voices,
sentences and corpora?

    python -m experiments.encoder_blocks --data ../shared/data/ravdess ../shared/data/crema-d --blocks 1,2,3 1,2,3,4

The nested study (encoder_nested.py) chose among blocks 1-3; block 4, the one Smart Turn fine-tuned most for
the end of a turn (a prosodic judgement, in 23 languages), costs one more transformer block per utterance. Each
block set's embeddings (mean and sd of its frames, side by side, of the clean clips cut by the runtime's
segmenter, from the feature cache) under a plain logistic-regression head trained on both corpora, as
``ser-train`` trains; scored per corpus in speaker-grouped CV (split seeds 0 and 1), on sentences never heard and
across corpora both ways. Prints one line per split seed and block set.
"""

from __future__ import annotations

from functools import partial

from experiments import probe


def main() -> None:
    p = probe.parser(__doc__)
    p.add_argument("--blocks", nargs="+", default=["1,2,3", "1,2,3,4"],
                   help="block sets, each comma-separated (default: the shipped 1,2,3 and 1,2,3,4)")
    args = p.parse_args()
    for blocks in args.blocks:
        e = probe.clean_embeddings(args.data, args.cache_dir, args.jobs, tuple(int(b) for b in blocks.split(",")))
        for seed in args.seeds:
            probe.report(partial(probe.head_predict, e.X, e.y), e, seed, f"blocks {blocks}", args.jobs)


if __name__ == "__main__":
    main()
