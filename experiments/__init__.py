"""Experiments behind the recipe's choices (not installed; see experiments/README.md): ``python -m experiments.NAME``."""

import os
from pathlib import Path

#: the corpora folder of the experiments that take none on the command line: $SER_DATA_DIR, else ../shared/data
DATA = Path(os.environ.get("SER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
