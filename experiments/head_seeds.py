"""How much of a cross-corpus figure is the head's training seed? The recipe's cross-corpus tests (train on one
corpus, test on the other, on their shared labels), as ``ser-train`` runs them, repeated with several seeds of the
MLP head alone: the same clips, cuts, embeddings and augmented copies; only the members' initial weights, mini-batch
order and early-stopping split differ. A head of k members fits seeds s, s+1, ..., s+k-1, so the seeds tried are
spaced by the member count and no two runs share a member.

Any ``ser-train`` option that sets the recipe (``--encoder``, ``--encoder-blocks``, ``--members``, ``--alpha``,
``--seed`` for the split seed that orders the cuts, ...) may follow ``--data`` and this study's ``--head-seeds`` and
``--out``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from benchmarks.run import machine
from experiments import corpus_parser
from ser_live.train import cli, evaluate


def recipe_args(data: list[Path], cache_dir: Path, options: list[str], tmp: Path):
    """``ser-train``'s parsed arguments for the recipe ``options`` on ``data`` (the model path a placeholder)."""
    return cli.build_parser().parse_args(["--data", *map(str, data), "--cache-dir", str(cache_dir),
                                          "--out", str(tmp / "model.onnx"), *options])


def cross_corpus_by_seed(args, head_seeds: list[int]) -> dict[str, dict[str, float]]:
    """UAR % of every ordered corpus pair (``a->b``) for each head seed, the training data built once, as
    ``ser-train`` builds it (``cli.prepare``)."""
    p = cli.prepare(args, Console(stderr=True, quiet=True))
    data = p.data
    xc = evaluate.cross_corpus_seeds(data.X, data.y, data.groups, data.corpora, p.hp, seeds=head_seeds,
                                     augmented=data.augmented, sn=p.sn, choose=p.search)
    return {str(seed): {pair: round(100 * m["uar_by_head_seed"][str(seed)], 1) for pair, m in xc.items()}
            for seed in head_seeds}


def render(result: dict) -> str:
    """The summary table: each pair's UAR per head seed, their mean, standard deviation and range."""
    by_seed = result["head_seeds"]
    seeds = list(by_seed)
    pairs = list(next(iter(by_seed.values())))
    options = " ".join(result["recipe"]) or "none, the default recipe"
    lines = [f"Cross-corpus UAR % by the head's training seed alone; ser-train options: `{options}`",
             f"(`{' '.join(result['command'])}`, {result['date']}, {result['machine']})",
             "", "| pair | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd | range |",
             "|---|" + "---:|" * (len(seeds) + 3)]
    for pair in pairs:
        v = [by_seed[s][pair] for s in seeds]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        lines.append(f"| {pair} | " + " | ".join(f"{x:.1f}" for x in v)
                     + f" | {statistics.mean(v):.1f} | {sd:.1f} | {max(v) - min(v):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = corpus_parser(__doc__)
    p.add_argument("--head-seeds", type=cli.positive_int, default=5, help="how many head seeds (default 5)")
    p.add_argument("--out", type=Path, default=Path("head_seeds.json"), help="the results (JSON) and beside it "
                   "their summary table (.md)")
    p.add_argument("--render", action="store_true", help="only write the summary table of an existing --out")
    ours, options = p.parse_known_args()
    if ours.render:
        ours.out.with_suffix(".md").write_text(render(json.loads(ours.out.read_text())))
        return
    with tempfile.TemporaryDirectory() as tmp:
        args = recipe_args(ours.data, ours.cache_dir, options, Path(tmp))
        seeds = evaluate.head_seeds(0, ours.head_seeds, int(args.members))
        result = {"command": ["python", "-m", "experiments.head_seeds", *sys.argv[1:]], "recipe": options,
                  "head_seeds": cross_corpus_by_seed(args, seeds),
                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    ours.out.write_text(json.dumps(result, indent=1) + "\n")
    ours.out.with_suffix(".md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
