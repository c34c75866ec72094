"""Which encoder block(s), pooling and head size, chosen by nested speaker-grouped cross-validation?

    python -m experiments.encoder_nested --data ../shared/data/ravdess ../shared/data/crema-d [--whisper]

Every choice is made inside the training speakers only, so no test fold ever takes part in one:
- outer: 5 folds grouped by speaker (split seeds 0 and 1), per corpus;
- inner, on the outer fold's training speakers (4 folds grouped by speaker): first the input, scored with a plain
  logistic-regression head, among Smart Turn's blocks 1, 2, 3 alone and joined (mean + sd; block 2 also as the mean
  alone; ``INPUTS``), or with ``--whisper`` among Whisper base's blocks alone and beside Smart Turn's
  (``WHISPER_INPUTS``); then, on that input, the head's hidden units (64, 128, 256), scored with the recipe's MLP
  (one member);
- the chosen input and head (three members, the recipe's other settings) are fitted on the outer training
  speakers and scored on the outer test speakers, beside a fixed reference choice (``REFERENCE``: Smart Turn's
  block 2 alone, 128 units; with ``--whisper``, ``WHISPER_REFERENCE``: Smart Turn's blocks 1+2+3, 128 units)
  fitted the same way.
Clean clips, cut by the runtime's segmenter with each speaker heard as one source; no augmentation (the
question is which input and head, not the final figure). Prints each fold's choice and both UARs and
writes them to ``--out`` (JSON) with a summary table beside it (.md).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from experiments import corpus_parser, encoder_whisper, probe
from ser_live.train import evaluate, model, recipe

ST, WB = probe.SMART_TURN, encoder_whisper.WHISPER
#: the encoders the inputs take blocks of: name -> (the blocks embedded, values per block's frame)
ENCODERS = {ST: (probe.SMART_TURN_BLOCKS, 384), WB: (encoder_whisper.WHISPER_BLOCKS, 512)}
#: input name -> the blocks it takes of each encoder (their frames' mean and sd; a name ending in "mean": the means)
INPUTS = {"1": {ST: (1,)}, "2": {ST: (2,)}, "3": {ST: (3,)}, "1+2": {ST: (1, 2)}, "2+3": {ST: (2, 3)},
          "1+2+3": {ST: (1, 2, 3)}, "2 mean": {ST: (2,)}}
WHISPER_INPUTS = {"smart-turn 1+2+3": {ST: (1, 2, 3)}, "whisper-base 2": {WB: (2,)},
                  "whisper-base 2 + smart-turn 1+2": {WB: (2,), ST: (1, 2)},
                  "whisper-base 2 + smart-turn 1+2+3": {WB: (2,), ST: (1, 2, 3)},
                  "whisper-base 3 + smart-turn 1+2+3": {WB: (3,), ST: (1, 2, 3)},
                  "whisper-base 2+3 + smart-turn 1+2+3": {WB: (2, 3), ST: (1, 2, 3)}}
HIDDEN = (64, 128, 256)
REFERENCE = ("2", 128)
WHISPER_REFERENCE = ("smart-turn 1+2+3", 128)


def columns(take: dict[str, tuple[int, ...]], encoders: tuple[str, ...], mean_only: bool = False) -> np.ndarray:
    """The columns of ``take``'s blocks in the encoders' embeddings side by side, in the order ``encoders``
    (each embedding: the mean of every embedded block's frames side by side, then their sds)."""
    cols, at = [], 0
    for name in encoders:
        embedded, width = ENCODERS[name]
        if name in take:
            picked = encoder_whisper.columns(take[name], width, embedded)
            cols.append(at + (picked[:picked.size // 2] if mean_only else picked))
        at += 2 * width * len(embedded)
    return np.concatenate(cols)


def _uar(fit, X, y, splits) -> float:
    true, pred = [], []
    for tr, te in splits:
        true.append(y[te])
        pred.append(fit(X[tr], y[tr]).predict(X[te]))
    return 100 * evaluate.uar(np.concatenate(true), np.concatenate(pred))


def _linear(X, y):
    return probe.linear_head().fit(X, y)


def _mlp(hidden: int, members: int, seed: int, max_iter: int):
    hp = model.Hyperparameters(hidden=(hidden,), members=members, max_iter=max_iter)
    return lambda X, y: model.fit_model(X, y, hp, seed)


def _outer_fold(X, y, groups, tr, te, seed: int, max_iter: int, cols_of: dict[str, np.ndarray],
                reference: tuple[str, int]) -> dict:
    inner = evaluate.grouped_splits(y[tr], groups[tr], 4, seed)  # positions within the outer training rows
    Xtr, ytr = X[tr], y[tr]
    inputs = {k: _uar(_linear, Xtr[:, c], ytr, inner) for k, c in cols_of.items()}
    best_input = max(inputs, key=inputs.get)
    cols = cols_of[best_input]
    heads = {str(h): _uar(_mlp(h, 1, seed, max_iter), Xtr[:, cols], ytr, inner) for h in HIDDEN}  # str keys, as JSON has them
    best_head = int(max(heads, key=heads.get))
    out = {"inner_inputs": inputs, "inner_heads": heads, "chosen": [best_input, best_head]}
    for tag, (name, hidden) in (("chosen", (best_input, best_head)), ("reference", reference)):
        c = cols_of[name]
        if tag == "reference" and [name, hidden] == out["chosen"]:
            out["reference_pred"] = out["chosen_pred"]
        else:
            out[f"{tag}_pred"] = _mlp(hidden, recipe.MEMBERS, seed, max_iter)(Xtr[:, c], ytr).predict(X[te][:, c]).tolist()
        out[f"{tag}_uar"] = 100 * evaluate.uar(y[te], out[f"{tag}_pred"])
    out["true"] = y[te].tolist()
    return out


def render(results: dict) -> str:
    """The summary table: per corpus and split, the inner folds' mean UAR of each input and of each head size,
    how often each head was chosen, and the outer folds' pooled UAR of the choice and of the reference."""
    names = list(next(iter(results.values()))[0]["inner_inputs"])
    head = ["corpus, split seed", *(f"inner: {k}" for k in names), *(f"inner: {h} units" for h in HIDDEN),
            "chosen (input × folds; units × folds)", "outer: chosen", "outer: reference"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, folds in results.items():
        inputs = [np.mean([f["inner_inputs"][k] for f in folds]) for k in names]
        heads = [np.mean([f["inner_heads"][str(h)] for f in folds]) for h in HIDDEN]
        picks = [tuple(f["chosen"]) for f in folds]
        chosen = ", ".join(f"{k} × {n}" for k, n in sorted(Counter(p[0] for p in picks).items())) + "; " + \
            ", ".join(f"{k} × {n}" for k, n in sorted(Counter(p[1] for p in picks).items()))
        true = sum((f["true"] for f in folds), [])
        outer = [100 * evaluate.uar(true, sum((f[f"{t}_pred"] for f in folds), [])) for t in ("chosen", "reference")]
        lines.append("| " + " | ".join([key, *(f"{v:.1f}" for v in inputs + heads), chosen, *(f"{v:.1f}" for v in outer)]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = corpus_parser(__doc__, seeds=True)
    p.add_argument("--max-iter", type=int, default=recipe.MAX_ITER, help="the MLP's epochs at most (default: the recipe's)")
    p.add_argument("--out", type=Path, default=Path("encoder_nested.json"), help="the results (JSON) and beside it "
                   "their summary table (.md)")
    p.add_argument("--render", action="store_true", help="only write the summary table of an existing --out")
    p.add_argument("--whisper", action="store_true", help="choose among Whisper base's blocks alone and beside "
                   "Smart Turn's (WHISPER_INPUTS) instead of Smart Turn's blocks alone")
    args = p.parse_args()
    if args.render:
        args.out.with_suffix(".md").write_text(render(json.loads(args.out.read_text())))
        return
    t0 = time.time()
    encoders = (ST, WB) if args.whisper else (ST,)
    inputs, reference = (WHISPER_INPUTS, WHISPER_REFERENCE) if args.whisper else (INPUTS, REFERENCE)
    es = probe.encoders_embeddings(args.data, args.cache_dir, 1, [(name, ENCODERS[name][0]) for name in encoders])
    for name, e in zip(encoders, es):
        blocks, width = ENCODERS[name]
        if e.extractor.encoder.width != width * len(blocks):
            raise SystemExit(f"{name}: ENCODERS says {width} values per block's frame; its encoder has "
                             f"{e.extractor.encoder.width // len(blocks)}")
    cols_of = {k: columns(take, encoders, k.endswith("mean")) for k, take in inputs.items()}
    print(f"embeddings of {len(es[0].y)} clips: {time.time() - t0:.0f} s", flush=True)
    e = es[0]
    X, y, groups, corpus = np.hstack([e.X for e in es]).astype(np.float32), e.y, e.speakers, e.corpus
    results: dict = {}
    for c in sorted(set(corpus)):
        idx = np.flatnonzero(corpus == c)
        for seed in args.seeds:
            folds = []
            for k, (tr, te) in enumerate(evaluate.grouped_splits(y[idx], groups[idx], 5, seed)):
                t0 = time.time()
                r = _outer_fold(X[idx], y[idx], groups[idx], tr, te, seed, args.max_iter, cols_of, reference)
                folds.append(r)
                print(f"{c} seed {seed} fold {k}: chose {r['chosen']}, UAR {r['chosen_uar']:.1f} "
                      f"(reference {r['reference_uar']:.1f}); inner inputs "
                      + ", ".join(f"{n} {v:.1f}" for n, v in r["inner_inputs"].items())
                      + "; inner heads " + ", ".join(f"{h} {v:.1f}" for h, v in r["inner_heads"].items())
                      + f" [{time.time() - t0:.0f} s]", flush=True)
            results[f"{c} seed {seed}"] = folds
            true = sum((f["true"] for f in folds), [])
            pooled = {t: 100 * evaluate.uar(true, sum((f[f"{t}_pred"] for f in folds), [])) for t in ("chosen", "reference")}
            print(f"{c} seed {seed}: nested-CV UAR {pooled['chosen']:.1f}, reference {pooled['reference']:.1f} "
                  "(pooled over the outer folds)", flush=True)
            args.out.write_text(json.dumps(results, indent=1))
            args.out.with_suffix(".md").write_text(render(results))


if __name__ == "__main__":
    main()
