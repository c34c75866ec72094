"""Experiments behind the recipe's choices (not installed; see experiments/README.md): ``python -m experiments.NAME``."""

#: the corpora folder of the experiments that take none on the command line: the benchmarks' ($SER_DATA_DIR,
#: else ../shared/data beside the repository)
from benchmarks import DATA  # noqa: F401


def corpus_parser(doc: str, seeds: bool = False):
    """An argument parser described by the first paragraph of ``doc``, with ``--data`` (the corpora folders),
    ``--cache-dir`` (the feature cache ser-train uses) and, with ``seeds``, ``--seeds`` (split seeds, 0 and 1)."""
    import argparse
    from pathlib import Path

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--data", nargs="+", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/features"))
    if seeds:
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    return p
