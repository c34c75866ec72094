"""ser-live's real-time performance benchmarks: ``python -m benchmarks.run [--quick]``."""

import os
from pathlib import Path

#: the corpora folder of every benchmark, test and experiment: $SER_DATA_DIR, else ../shared/data beside the
#: repository
DATA = Path(os.environ.get("SER_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
