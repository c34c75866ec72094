"""Does a learned attention over the encoder's frames describe an utterance better than their plain mean and
standard deviation?

    pip install torch   # this study only; the product never imports it
    python -m experiments.attention_pooling --data ../shared/data/ravdess ../shared/data/crema-d

The frames are the shipped default model's input before pooling: the output frames of the encoder's blocks
1, 2 and 3 side by side (``Encoder.utterance_frames``) of each clip as the runtime's segmenter cuts it, each
speaker heard as one source in arrival order, as ``ser-train`` cuts them. Two poolings feed the same head
(one hidden layer of the recipe's width, ReLU, the recipe's L2 penalty, Adam, early stopping on a held-out
fraction of the training rows), trained the same way:

- ``mean+sd``: the frames' mean and standard deviation (what the product pools);
- ``attention``: attentive statistics pooling (Okabe et al., 2018): a small scorer (a hidden layer of
  ``--scorer`` tanh units) gives each frame a weight, softmax over the utterance, and the weighted mean and
  weighted standard deviation are pooled. Its last layer starts at zero, so training starts from exactly
  the ``mean+sd`` pooling and moves away only where the training rows reward it.

Scored per corpus by 5-fold CV grouped by speaker (split seeds 0 and 1) and across corpora both ways (on their
shared labels), clean clips, no augmentation: the question is the pooling, not the final figure. Writes the
results to ``--out`` (JSON) and a summary table beside it (.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments import corpus_parser, probe
from ser_live.train import corpora, dataset, evaluate, recipe
from ser_live.train.cli import make_extractor

POOLINGS = ("mean+sd", "attention")


class Frames:
    """An extractor-like object for ``dataset.clip_features``: the encoder's frames of the cut, float16."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    def extract(self, audio: np.ndarray) -> np.ndarray:
        return self.encoder.utterance_frames(audio).astype(np.float16)


def clip_frames(clips, encoder, rank: np.ndarray) -> list[np.ndarray | None]:
    """Each clip's frames (None where it failed), each speaker's clips cut as one source in ``rank`` order."""
    config = dataset.segmenter_config()
    extractor = Frames(encoder)
    out: list[np.ndarray | None] = [None] * len(clips)
    by_speaker: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_speaker.setdefault(c.speaker, []).append(i)
    for idx in by_speaker.values():
        memory = None
        for i in sorted(idx, key=lambda i: rank[i]):
            out[i], _, _, memory = dataset.clip_features(str(clips[i].path), config, None, (), memory, extractor)
    return out


def _net(width: int, classes: int, pooling: str, hidden: int, scorer: int, mu, sd):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mu", torch.as_tensor(mu))
            self.register_buffer("sd", torch.as_tensor(sd))
            if pooling == "attention":
                self.score = nn.Sequential(nn.Linear(width, scorer), nn.Tanh(), nn.Linear(scorer, 1))
                nn.init.zeros_(self.score[2].weight)
                nn.init.zeros_(self.score[2].bias)
            self.head = nn.Sequential(nn.Linear(2 * width, hidden), nn.ReLU(), nn.Linear(hidden, classes))

        def weights(self, x, mask):  # x (B, T, W), mask (B, T) true on real frames -> (B, T), each row sums to 1
            if pooling == "attention":
                return torch.softmax(self.score(x).squeeze(-1).masked_fill(~mask, float("-inf")), dim=1)
            return mask / mask.sum(dim=1, keepdim=True)

        def pooled(self, x, mask):
            return mean_sd(x, self.weights(x, mask))

        def forward(self, x, mask):
            return self.head((self.pooled(x, mask) - self.mu) / self.sd)

    return Net()


def mean_sd(x, w):
    """The weighted mean and standard deviation of frames ``x`` (B, T, W) under weights ``w`` (B, T; each row sums
    to 1), side by side: (B, 2W)."""
    import torch

    w = w.unsqueeze(-1)
    m = (w * x).sum(dim=1)
    v = (w * x * x).sum(dim=1) - m * m
    return torch.cat([m, torch.sqrt(v.clamp_min(1e-8))], dim=1)


def padded_batch(frames: list[np.ndarray], idx, frame_mu: np.ndarray | None = None,
                 frame_sd: np.ndarray | None = None):
    """The frames of rows ``idx`` as float32 (len(idx), longest, W), standardised when ``frame_mu`` and
    ``frame_sd`` are given, zero-padded, and the mask (len(idx), longest), true on real frames."""
    import torch

    T = max(frames[i].shape[0] for i in idx)
    x = np.zeros((len(idx), T, frames[idx[0]].shape[1]), np.float32)
    mask = np.zeros((len(idx), T), bool)
    for k, i in enumerate(idx):
        h = frames[i].astype(np.float32)
        x[k, : h.shape[0]] = h if frame_mu is None else (h - frame_mu) / frame_sd
        mask[k, : h.shape[0]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def early_stopped(step: Callable[[], None], loss_of: Callable[[], float], max_epochs: int, patience: int,
                  modules: list) -> int:
    """Run ``step`` (one epoch) until ``loss_of`` (the validation loss) has not fallen for ``patience`` epochs;
    load the best epoch's weights back into ``modules`` and return that epoch's number (1-based)."""
    best, best_state, since, best_epoch = np.inf, None, 0, 0
    for epoch in range(1, max_epochs + 1):
        step()
        v = loss_of()
        if v < best - 1e-4:
            best, since, best_epoch = v, 0, epoch
            best_state = [{k: t.clone() for k, t in m.state_dict().items()} for m in modules]
        else:
            since += 1
            if since >= patience:
                break
    for m, state in zip(modules, best_state):
        m.load_state_dict(state)
    return best_epoch


def clips_with_frames(data, encoder_of: Callable[[], object], path: Path | None):
    """The clean clips under the corpora folders ``data`` whose frames could be computed (:func:`cached_frames`),
    with their frames, labels, speakers and corpora: (frames, clips, y, speakers, corpus)."""
    clips = corpora.discover([Path(d).resolve() for d in data], corpora.resolve_emotions(None)).clips
    t0 = time.time()
    frames = cached_frames(clips, encoder_of, path)
    print(f"frames of {len(clips)} clips: {time.time() - t0:.0f} s", flush=True)
    keep = [i for i, h in enumerate(frames) if h is not None]
    clips = [clips[i] for i in keep]
    return ([frames[i] for i in keep], clips, np.array([c.label for c in clips]), np.array([c.speaker for c in clips]),
            np.array([c.corpus for c in clips]))


def cached_frames(clips, encoder_of: Callable[[], object], path: Path | None) -> list[np.ndarray | None]:
    """Each clip's frames (:func:`clip_frames`, each speaker's clips in the arrival order of split seed 0) from the
    encoder ``encoder_of()`` builds, or from ``path`` (.npz) when it exists; written there when given."""
    if path and path.exists():
        with np.load(path, allow_pickle=False) as z:
            flat, ends, ok = z["flat"], z["ends"], z["ok"]
        starts = np.concatenate([[0], ends[:-1]])
        return [flat[s:e] if good else None for s, e, good in zip(starts, ends, ok)]
    frames = clip_frames(clips, encoder_of(), evaluate.arrival_rank(np.array([c.speaker for c in clips]), 0))
    if path:
        ok = np.array([h is not None for h in frames])
        ends = np.cumsum([h.shape[0] if h is not None else 0 for h in frames])
        np.savez(path, flat=np.concatenate([h for h in frames if h is not None]), ends=ends, ok=ok)
    return frames


def length_batches(frames, idx: np.ndarray, size: int, rng: np.random.Generator | None):
    """``idx`` in batches of similar length (little padding), in random order when ``rng`` is given."""
    idx = np.asarray(sorted(idx, key=lambda i: frames[i].shape[0]))
    chunks = [idx[k : k + size] for k in range(0, idx.size, size)]
    if rng is not None:
        rng.shuffle(chunks)
    return chunks


def fit_predict(frames, y: np.ndarray, tr: np.ndarray, te: np.ndarray, pooling: str, seed: int,
                args) -> tuple[np.ndarray, float]:
    """Fit the head (and the scorer) on rows ``tr``; the predicted labels of rows ``te``, and how evenly the pooling
    weighs their frames: the mean over ``te`` of exp(entropy of the weights) / frames (1: every frame alike)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = np.unique(y[tr])
    target = torch.as_tensor(np.searchsorted(classes, y))
    val = rng.choice(tr, size=int(round(recipe.VALIDATION_FRACTION * tr.size)), replace=False)
    fit = np.setdiff1d(tr, val)
    stack = np.concatenate([frames[i] for i in fit]).astype(np.float32)
    frame_mu, frame_sd = stack.mean(axis=0), stack.std(axis=0) + 1e-6
    del stack
    pooled = []
    for i in fit:  # the plain mean+sd of the standardised frames: the pooled rows' scale for both poolings
        h = (frames[i].astype(np.float32) - frame_mu) / frame_sd
        pooled.append(np.concatenate([h.mean(axis=0), h.std(axis=0)]))
    pooled = np.asarray(pooled)
    net = _net(frame_mu.size, classes.size, pooling, recipe.HIDDEN[0], args.scorer,
               pooled.mean(axis=0), pooled.std(axis=0) + 1e-6)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.LEARNING_RATE_INIT)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    l2 = recipe.ALPHA / (2 * fit.size)  # scikit-learn's MLP penalty: alpha / (2 n) times the squared weights

    def loss_of(idx) -> float:
        net.eval()
        with torch.no_grad():
            total = sum(float(torch.nn.functional.cross_entropy(net(*padded_batch(frames, b, frame_mu, frame_sd)),
                                                                target[b], reduction="sum"))
                        for b in length_batches(frames, idx, 256, None))
        net.train()
        return total / idx.size

    def epoch() -> None:
        for b in length_batches(frames, fit, recipe.BATCH_SIZE, rng):
            x, mask = padded_batch(frames, b, frame_mu, frame_sd)
            loss = torch.nn.functional.cross_entropy(net(x, mask), target[b])
            loss = loss + l2 * sum((w * w).sum() for w in weights)
            opt.zero_grad()
            loss.backward()
            opt.step()

    early_stopped(epoch, lambda: loss_of(val), args.max_epochs, args.patience, [net])
    net.eval()
    pred = np.empty(te.size, int)
    where = {i: k for k, i in enumerate(te)}
    evenness = []
    with torch.no_grad():
        for b in length_batches(frames, te, 256, None):
            x, mask = padded_batch(frames, b, frame_mu, frame_sd)
            pred[[where[i] for i in b]] = net(x, mask).argmax(dim=1).numpy()
            w = net.weights(x, mask)
            entropy = -(w * torch.log(w.clamp_min(1e-30))).sum(dim=1)
            evenness += (torch.exp(entropy) / mask.sum(dim=1)).tolist()
    return classes[pred], float(np.mean(evenness))


def render(results: dict) -> str:
    """The summary table: each condition's UAR with each pooling, their difference, and how evenly the attention
    weighed the frames of the test utterances."""
    lines = ["# Attentive statistics pooling against the frames' mean and sd", "",
             "`python -m experiments.attention_pooling --data ../shared/data/ravdess ../shared/data/crema-d`: the encoder's "
             "blocks 1+2+3 frames of the clean clips, the same head for both poolings (one member), per-corpus CV grouped by "
             "speaker and cross-corpus on the shared labels; UAR %.", "",
             "| condition | " + " | ".join(f"{p} UAR %" for p in POOLINGS)
             + " | attention − mean+sd | attention's evenness (1: every frame alike) |",
             "|---|" + "---|" * (len(POOLINGS) + 2)]
    for key, r in results.items():
        u = [r[p]["uar"] for p in POOLINGS]
        lines.append(f"| {key} | " + " | ".join(f"{v:.1f}" for v in u) + f" | {u[1] - u[0]:+.1f} | "
                     f"{r['attention']['evenness']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = corpus_parser(__doc__, seeds=True)
    p.add_argument("--scorer", type=int, default=32, help="tanh units in the attention's scorer")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=10, help="epochs without a better validation loss before stopping")
    p.add_argument("--frames", type=Path, help="keep the frames in this .npz (read it when it exists)")
    p.add_argument("--out", type=Path, default=Path("attention_pooling.json"))
    args = p.parse_args()

    import torch

    torch.set_num_threads(2)
    frames, _, y, groups, corpus = clips_with_frames(
        args.data, lambda: make_extractor(probe.SMART_TURN, probe.SMART_TURN_BLOCKS, False, args.cache_dir).encoder,
        args.frames)

    results: dict = json.loads(args.out.read_text()) if args.out.exists() else {}

    def record(key: str, true: np.ndarray, preds: dict[str, np.ndarray], seconds: dict[str, float],
               evenness: dict[str, float]) -> None:
        results[key] = {p: {"uar": 100 * evaluate.uar(true, preds[p]), "seconds": round(seconds[p]),
                            "evenness": round(evenness[p], 3)} for p in POOLINGS}
        print(f"{key}: " + ", ".join(f"{p} {results[key][p]['uar']:.1f}" for p in POOLINGS), flush=True)
        args.out.write_text(json.dumps(results, indent=1))
        args.out.with_suffix(".md").write_text(render(results))

    names = sorted(set(corpus))
    for seed in args.seeds:
        for c in names:
            key = f"CV {c}, split seed {seed}"
            if key in results:
                continue
            idx = np.flatnonzero(corpus == c)
            preds = {q: np.empty(idx.size, dtype=y.dtype) for q in POOLINGS}
            seconds, evenness = dict.fromkeys(POOLINGS, 0.0), {q: [] for q in POOLINGS}
            for k, (tr, te) in enumerate(evaluate.grouped_splits(y[idx], groups[idx], 5, seed)):
                for q in POOLINGS:
                    t = time.time()
                    preds[q][te], even = fit_predict(frames, y, idx[tr], idx[te], q, seed, args)
                    seconds[q] += time.time() - t
                    evenness[q].append(even * te.size)
                    print(f"  {key} fold {k} {q}: {100 * evaluate.uar(y[idx[te]], preds[q][te]):.1f} "
                          f"[{time.time() - t:.0f} s]", flush=True)
            record(key, y[idx], preds, seconds, {q: sum(v) / idx.size for q, v in evenness.items()})
    for a in names:
        for b in names:
            key = f"cross-corpus {a} → {b}"
            if a == b or key in results:
                continue
            shared = sorted(set(y[corpus == a]) & set(y[corpus == b]))
            tr = np.flatnonzero((corpus == a) & np.isin(y, shared))
            te = np.flatnonzero((corpus == b) & np.isin(y, shared))
            preds, seconds, evenness = {}, {}, {}
            for q in POOLINGS:
                t = time.time()
                preds[q], evenness[q] = fit_predict(frames, y, tr, te, q, 0, args)
                seconds[q] = time.time() - t
            record(key, y[te], preds, seconds, evenness)


if __name__ == "__main__":
    main()
