"""Does fine-tuning Whisper base's block 2 on emotion make the model generalise better than the frozen block?

    pip install torch   # this study only; the product never imports it
    python -m experiments.finetune_block --data ../shared/data/ravdess ../shared/data/crema-d

The shipped model reads Whisper base's block 2 frozen, as it was pretrained. Fine-tuning an encoder's upper blocks
on the task usually raises the scores on the corpora it is tuned on; whether it also carries over to other
corpora and to sentences never heard is the question. The input is the output frames of Whisper base's block 1
(the shipped int8 graph, each clip as the runtime's segmenter cuts it, each speaker heard as one source in
arrival order, as ``ser-train`` cuts them); above it, block 2 rebuilt in PyTorch from the same CTranslate2
weights, the frames' mean and standard deviation, standardised, and a head of the recipe's shape (one hidden
layer of the recipe's width, ReLU, the recipe's L2 penalty, Adam, early stopping on a held-out share of the
training speakers). Two variants, the same rows and seeds:

- ``frozen``: block 2 as pretrained, only the head trained (what the product does with this block);
- ``lp-ft``: that trained head, then block 2 and the head trained together at a small learning rate for the
  block (``--block-lr``): "linear probing, then fine-tuning" (Kumar et al., 2022), the order that keeps most of a
  pretrained encoder's robustness to other data.

Scored across corpora both ways (trained on one corpus, tested on the other, their shared labels), with
``--head-seeds`` seeds, and on sentences never heard (``ser-evaluate``'s split, the speaker folds given by
``--new-text-folds`` of split seed 0, all five by default; each corpus's predictions pooled over its runs).
Writes every run's predictions to ``--out`` (JSON) and the table beside it (.md).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from experiments import corpus_parser
from experiments.attention_pooling import clips_with_frames, early_stopped, length_batches, mean_sd, padded_batch
from ser_live.train import corpora, encoders, evaluate, recipe, whisper_graph
from ser_live.train.cli import make_extractor, positive_int

ENCODER = "whisper-base"
VARIANTS = ("frozen", "lp-ft")


def _block(weights: dict[str, np.ndarray], index: int):
    """Whisper's pre-norm transformer block ``index`` (0-based) as a torch module, from CTranslate2 weights."""
    import torch
    from torch import nn

    heads = int(weights["num_heads"])
    p = f"layer_{index}/"

    def linear(prefix: str) -> nn.Linear:
        w = torch.as_tensor(weights[prefix + "/weight"].astype(np.float32))
        m = nn.Linear(w.shape[1], w.shape[0])
        m.weight.data.copy_(w)
        m.bias.data.copy_(torch.as_tensor(weights[prefix + "/bias"].astype(np.float32)))
        return m

    def norm(prefix: str) -> nn.LayerNorm:
        g = torch.as_tensor(weights[prefix + "/gamma"].astype(np.float32))
        m = nn.LayerNorm(g.numel(), eps=1e-5)
        m.weight.data.copy_(g)
        m.bias.data.copy_(torch.as_tensor(weights[prefix + "/beta"].astype(np.float32)))
        return m

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.qkv = norm(p + "self_attention/layer_norm"), linear(p + "self_attention/linear_0")
            self.proj = linear(p + "self_attention/linear_1")
            self.ln2, self.fc1 = norm(p + "ffn/layer_norm"), linear(p + "ffn/linear_0")
            self.fc2 = linear(p + "ffn/linear_1")

        def forward(self, x, mask):  # x (B, T, W), mask (B, T) true on real frames
            B, T, W = x.shape
            q, k, v = (t.reshape(B, T, heads, W // heads).transpose(1, 2) for t in self.qkv(self.ln1(x)).chunk(3, -1))
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
            x = x + self.proj(a.transpose(1, 2).reshape(B, T, W))
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

    return Block()


def _pool(x, mask):
    """Mean and standard deviation of the real frames, side by side."""
    return mean_sd(x, mask / mask.sum(dim=1, keepdim=True))


def validation_speakers(speakers: np.ndarray, tr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The rows of ``tr`` whose speakers are held out for early stopping: the recipe's share of its speakers (at
    least one), so that the stopping point is judged on voices the block was not tuned on."""
    names = np.unique(speakers[tr])
    held = rng.choice(names, size=max(1, int(round(recipe.VALIDATION_FRACTION * names.size))), replace=False)
    return tr[np.isin(speakers[tr], held)]


def fit_predict(frames, weights, y, speakers, tr, te, seed: int, args) -> dict:
    """Each variant's predicted labels of rows ``te``, trained on rows ``tr``, and (``epochs``) the fine-tuning
    epoch whose weights were kept."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = np.unique(y[tr])
    target = torch.as_tensor(np.searchsorted(classes, y))
    val = validation_speakers(speakers, tr, rng)
    fit = np.setdiff1d(tr, val)
    block = _block(weights, 1)
    block.eval()

    def pooled(idx: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """``idx`` sorted by length, and the frozen block's pooled rows in that order."""
        chunks = length_batches(frames, idx, 128, None)
        with torch.no_grad():
            rows = [_pool(block(*xm), xm[1]) for xm in (padded_batch(frames, b) for b in chunks)]
        return np.concatenate(chunks), torch.cat(rows)

    fit_sorted, P_fit = pooled(fit)
    val_sorted, P_val = pooled(val)
    mu, sd = P_fit.mean(dim=0), P_fit.std(dim=0) + 1e-6
    hidden = recipe.HIDDEN[0]
    head = nn.Sequential(nn.Linear(P_fit.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, classes.size))
    l2 = recipe.ALPHA / (2 * fit.size)  # scikit-learn's MLP penalty: alpha / (2 n) times the squared weights

    def penalty():
        return l2 * sum((m.weight * m.weight).sum() for m in head if isinstance(m, nn.Linear))

    # linear probing: the head on the frozen block's pooled rows (computed once)
    opt = torch.optim.Adam(head.parameters(), lr=recipe.LEARNING_RATE_INIT)

    def probe_step() -> None:
        head.train()
        perm = rng.permutation(fit.size)
        for k in range(0, perm.size, recipe.BATCH_SIZE):
            b = perm[k : k + recipe.BATCH_SIZE]
            loss = nn.functional.cross_entropy(head((P_fit[b] - mu) / sd), target[fit_sorted[b]]) + penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def probe_loss() -> float:
        head.eval()
        with torch.no_grad():
            return float(nn.functional.cross_entropy(head((P_val - mu) / sd), target[val_sorted]))

    early_stopped(probe_step, probe_loss, 200, 10, [head])

    def predict() -> np.ndarray:
        head.eval()
        block.eval()
        out = np.empty(len(y), int)
        with torch.no_grad():
            for b in length_batches(frames, te, 128, None):
                x, mask = padded_batch(frames, b)
                out[b] = head((_pool(block(x, mask), mask) - mu) / sd).argmax(dim=1).numpy()
        return classes[out[te]]

    preds = {"frozen": predict()}
    # fine-tuning: block and head together, the block at a small learning rate
    opt = torch.optim.Adam([{"params": block.parameters(), "lr": args.block_lr},
                            {"params": head.parameters(), "lr": args.head_lr}])

    def tune_step() -> None:
        block.train()
        head.train()
        for b in length_batches(frames, fit, recipe.BATCH_SIZE, rng):
            x, mask = padded_batch(frames, b)
            loss = nn.functional.cross_entropy(head((_pool(block(x, mask), mask) - mu) / sd), target[b]) + penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def tune_loss() -> float:
        block.eval()
        head.eval()
        total = 0.0
        with torch.no_grad():
            for b in length_batches(frames, val, 128, None):
                x, mask = padded_batch(frames, b)
                total += float(nn.functional.cross_entropy(head((_pool(block(x, mask), mask) - mu) / sd), target[b],
                                                           reduction="sum"))
        return total / val.size

    preds["epochs"] = early_stopped(tune_step, tune_loss, args.max_epochs, args.patience, [block, head])
    preds["lp-ft"] = predict()
    return preds


def summary(runs: dict, y: np.ndarray, corpus: np.ndarray) -> dict[str, dict[str, float]]:
    """Each condition's UAR % per variant: each cross-corpus run's, and on sentences never heard each test corpus's
    over every run of that split so far, predictions pooled (as ``ser-evaluate`` pools its folds)."""
    out: dict[str, dict[str, float]] = {}
    pooled: dict[str, dict[str, list]] = {}
    for key, r in runs.items():
        te = np.asarray(r["rows"])
        if not key.startswith("never heard"):
            out[key] = {v: 100 * evaluate.uar(y[te], np.asarray(r[v])) for v in VARIANTS} | {"epochs": r["epochs"]}
            continue
        for c in sorted(set(corpus[te])):
            m = corpus[te] == c
            empty = {"rows": [], "epochs": []} | {v: [] for v in VARIANTS}
            acc = pooled.setdefault(f"sentences never heard, {c}", empty)
            acc["rows"] += te[m].tolist()
            acc["epochs"].append(r["epochs"])
            for v in VARIANTS:
                acc[v] += np.asarray(r[v])[m].tolist()
    for key, acc in pooled.items():
        te = np.asarray(acc["rows"])
        uar = {v: 100 * evaluate.uar(y[te], np.asarray(acc[v])) for v in VARIANTS}
        out[f"{key} ({len(acc['epochs'])} runs)"] = uar | {"epochs": float(np.mean(acc["epochs"]))}
    return out


def render(table: dict[str, dict[str, float]], args) -> str:
    """The summary table: each condition's UAR with each variant, their difference and the epochs kept."""
    lines = ["# Whisper base's block 2 fine-tuned on emotion against the frozen block", "",
             "`python -m experiments.finetune_block --data ../shared/data/ravdess ../shared/data/crema-d "
             f"--block-lr {args.block_lr:g} --head-lr {args.head_lr:g} --max-epochs {args.max_epochs} --patience "
             f"{args.patience}`: Whisper base's block-1 frames of the clean clips, block 2 and the head above them, "
             "frozen or fine-tuned after the head (linear probing, then fine-tuning); UAR %; epochs: the fine-tuning "
             "epoch whose weights were kept (on average).", "",
             "| condition | frozen | lp-ft | lp-ft − frozen | epochs |", "|---|---|---|---|---|"]
    for key, r in table.items():
        lines.append(f"| {key} | {r['frozen']:.1f} | {r['lp-ft']:.1f} | {r['lp-ft'] - r['frozen']:+.1f} | "
                     f"{r['epochs']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = corpus_parser(__doc__)
    p.add_argument("--block-lr", type=float, default=1e-5, help="the block's learning rate while fine-tuning")
    p.add_argument("--head-lr", type=float, default=1e-4, help="the head's learning rate while fine-tuning")
    p.add_argument("--max-epochs", type=int, default=8, help="epochs of fine-tuning at most")
    p.add_argument("--patience", type=int, default=2, help="epochs without a better validation loss before stopping")
    p.add_argument("--head-seeds", type=positive_int, default=2, help="seeds of each cross-corpus run")
    p.add_argument("--new-text-folds", type=int, nargs="*", default=list(range(5)),
                   help="speaker folds of the never-heard split (default: all five)")
    p.add_argument("--frames", type=Path,
                   help="keep Whisper base's block-1 frames in this .npz (read it when it exists)")
    p.add_argument("--out", type=Path, default=Path("finetune_block.json"))
    args = p.parse_args()

    import torch

    torch.set_num_threads(2)
    frames, clips, y, speakers, corpus = clips_with_frames(
        args.data, lambda: make_extractor(ENCODER, (1,), False, args.cache_dir).encoder, args.frames)
    weights = whisper_graph.read_ctranslate2(encoders.obtain(ENCODER, args.cache_dir))

    runs: dict = json.loads(args.out.read_text())["runs"] if args.out.exists() else {}

    def run(key: str, tr: np.ndarray, te: np.ndarray, seed: int) -> None:
        """Train on ``tr`` and keep each variant's predictions of ``te`` under ``key`` (once: a rerun skips it)."""
        if key in runs:
            return
        t = time.time()
        preds = fit_predict(frames, weights, y, speakers, tr, te, seed, args)
        runs[key] = {"rows": te.tolist(), **{v: preds[v].tolist() for v in VARIANTS}, "epochs": preds["epochs"],
                     "seconds": round(time.time() - t)}
        print(f"{key}: " + ", ".join(f"{v} {100 * evaluate.uar(y[te], preds[v]):.1f}" for v in VARIANTS)
              + f" [{preds['epochs']} epochs, {runs[key]['seconds']} s]", flush=True)
        table = summary(runs, y, corpus)
        args.out.write_text(json.dumps({"runs": runs, "table": table}, indent=1))
        args.out.with_suffix(".md").write_text(render(table, args))

    for a, b, _, tr, te in evaluate.corpus_pairs(y, speakers, corpus):
        for seed in evaluate.head_seeds(0, args.head_seeds, 1):
            run(f"{a} → {b}, head seed {seed}", tr, te, seed)
    sentences = [corpora.sentence(c) for c in clips]
    splits = evaluate.new_text_splits(y, speakers, corpus, sentences, folds=5, seed=0)
    for fold in args.new_text_folds:
        for g, (tr, te) in enumerate(splits[fold][1]):
            run(f"never heard, speaker fold {fold}, sentence group {g}", tr, te, 0)


if __name__ == "__main__":
    main()
