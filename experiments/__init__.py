"""Experiments behind the recipe's choices (not installed; see experiments/README.md): ``python -m experiments.NAME``."""

#: the corpora folder of the experiments that take none on the command line: the benchmarks' ($SER_DATA_DIR,
#: else ../shared/data beside the repository)
from benchmarks import DATA  # noqa: F401
